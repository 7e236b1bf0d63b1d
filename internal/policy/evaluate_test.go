package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// evaluateConfig is testConfig with client rules for every role the
// Evaluate tests use.
var evaluateConfig = strings.Replace(testConfig, "clients:\n", `clients:
  - group: tenants
    role: tenant
  - group: auditees
    role: auditee
`, 1)

// fakeDaemon is a Host over a table of objects keyed "kind/ref": what an
// inspect of ref finds. It records every call, so that tests can say
// which lookups a request made and in which order.
type fakeDaemon struct {
	objects map[string]Object
	// fail makes the lookup of "kind/ref" fail with that error.
	fail map[string]error
	// created is what CreateVolume answers; nil: the new volume with the
	// labels asked for.
	created *Object
	// createErr makes CreateVolume fail.
	createErr error
	// links resolves host paths (fakeHost); nil: every path as is.
	links fakeHost
	calls []string
}

func (f *fakeDaemon) Inspect(ctx context.Context, kind ObjectKind, ref string) (Object, error) {
	key := kind.String() + "/" + ref
	f.calls = append(f.calls, "inspect "+key)
	if err := ctx.Err(); err != nil {
		return Object{}, err
	}
	if err := f.fail[key]; err != nil {
		return Object{}, err
	}
	obj, ok := f.objects[key]
	if !ok {
		return Object{}, ErrNotFound
	}
	return obj, nil
}

func (f *fakeDaemon) CreateVolume(_ context.Context, name string, labels map[string]string) (Object, error) {
	f.calls = append(f.calls, fmt.Sprintf("create volume/%s %v", name, labels))
	if f.createErr != nil {
		return Object{}, f.createErr
	}
	if f.created != nil {
		return *f.created, nil
	}
	return Object{ID: name, Labels: labels}, nil
}

func (f *fakeDaemon) ResolvePath(p string) (string, error) {
	f.calls = append(f.calls, "resolve "+p)
	return f.links.resolve(p)
}

func owned(id, cn string) Object {
	return Object{ID: id, Labels: map[string]string{OwnerLabel: cn}}
}

var (
	tenant1 = identity.Identity{CN: "t1", Groups: []string{"tenants"}, Serial: "aa01"}
	auditee = identity.Identity{CN: "t1", Groups: []string{"auditees"}}
	ci7     = identity.Identity{CN: "ci-7", Serial: "c1"}
)

// evaluate sends "METHOD /path?query" with a JSON body through Evaluate.
func evaluate(t *testing.T, id identity.Identity, method, target, body string, host Host) Verdict {
	t.Helper()
	p := mustPolicy(t, evaluateConfig)
	path, query, _ := strings.Cut(target, "?")
	in := Input{Identity: id, Method: method, Path: path, RawQuery: query}
	if body != "" {
		in.ContentType, in.Body = "application/json", strings.NewReader(body)
	}
	return p.Evaluate(context.Background(), in, host)
}

// TestEvaluateBeforeThePolicy covers what is refused before any role is
// consulted: an identity no client rule matches, and requests dockerd
// could read differently.
func TestEvaluateBeforeThePolicy(t *testing.T) {
	p := mustPolicy(t, evaluateConfig)
	host := &fakeDaemon{}
	cases := []struct {
		name        string
		in          Input
		status      int
		message     string
		op          dockerapi.Operation
		matchedRole bool
	}{
		{"no client rule", Input{Identity: identity.Identity{CN: "eve", Groups: []string{"x"}, Serial: "e1"}, Method: "POST", Path: "/containers/web/stop"},
			http.StatusForbidden, `dockgate: access denied for CN="eve" groups=[x] (serial e1): no clients: entry matches this identity; add one with cn: or group: in the gateway config`,
			dockerapi.OpContainerStop, false},
		{"form body", Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/x-www-form-urlencoded", Body: strings.NewReader("Image=x")},
			http.StatusBadRequest, "dockgate: form-encoded request bodies are refused; send JSON", dockerapi.OpContainerCreate, true},
		{"slash in a name", Input{Identity: ci7, Method: "GET", Path: "/containers/repo/name/json"},
			http.StatusNotFound, "No such object: /containers/repo/name/json", dockerapi.OpUnknownRoute, true},
		{"encoded slash", Input{Identity: ci7, Method: "GET", Path: "/containers/repo%2Fname/json"},
			http.StatusBadRequest, "dockgate: path refused: encoded slash (%2F) in the path", dockerapi.OpUnknownRoute, true},
		{"path dockerd reads differently", Input{Identity: ci7, Method: "GET", Path: "/v1.41/../containers/json"},
			http.StatusBadRequest, "", dockerapi.OpUnknownRoute, true},
		{"body too large", Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/json",
			Body: strings.NewReader(`{"Image":"` + strings.Repeat("x", dockerapi.DefaultMaxBody) + `"}`)},
			http.StatusRequestEntityTooLarge, "", dockerapi.OpContainerCreate, true},
		{"JSON body with another content type", Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "text/plain", Body: strings.NewReader(`{"Image":"x"}`)},
			http.StatusBadRequest, "", dockerapi.OpContainerCreate, true},
		{"body on a route that takes none", Input{Identity: ci7, Method: "POST", Path: "/containers/web/stop", Body: strings.NewReader("x")},
			http.StatusBadRequest, "dockgate: container.stop takes no request body", dockerapi.OpContainerStop, true},
		{"ambiguous JSON body", Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/json", Body: strings.NewReader(`{"Image":"x","image":"y"}`)},
			http.StatusBadRequest, "", dockerapi.OpContainerCreate, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := p.Evaluate(context.Background(), tc.in, host)
			if v.Effect != Deny || v.Status != tc.status || v.Forward() {
				t.Fatalf("Evaluate = %v %d (%s), want deny %d", v.Effect, v.Status, v.Message, tc.status)
			}
			if tc.message != "" && v.Message != tc.message {
				t.Errorf("message = %q, want %q", v.Message, tc.message)
			}
			if v.Route.Op != tc.op || v.Matched != tc.matchedRole {
				t.Errorf("op, matched = %s, %v; want %s, %v", v.Route.Op, v.Matched, tc.op, tc.matchedRole)
			}
			if v.Reason == "" {
				t.Error("a refusal has no reason for the audit log")
			}
		})
	}
	if len(host.calls) != 0 {
		t.Errorf("refusals before the policy reached the host: %v", host.calls)
	}
}

// TestEvaluateForwardsWhatWasDecided: the body forwarded is the decoded
// body encoded again (so dockerd reads what was decided on), the path
// and query as sent when nothing is rewritten.
func TestEvaluateForwardsWhatWasDecided(t *testing.T) {
	v := evaluate(t, ci7, "POST", "/v1.47/containers/create?name=web", `{"Image":"busybox","image":"busybox"}`, &fakeDaemon{})
	if v.Forward() {
		t.Fatalf("a body with duplicate keys in two cases was forwarded: %s", v.Body)
	}
	v = evaluate(t, ci7, "POST", "/v1.47/containers/create?name=web", `{"Image":"busybox",  "Cmd":["true"]}`, &fakeDaemon{})
	if v.Effect != Allow || v.Path != "/v1.47/containers/create" || v.RawQuery != "name=web" {
		t.Fatalf("Evaluate = %v %s?%s", v.Effect, v.Path, v.RawQuery)
	}
	if strings.Contains(string(v.Body), "  ") || !strings.Contains(string(v.Body), `"Cmd":["true"]`) {
		t.Errorf("body = %s, want the decoded body encoded again", v.Body)
	}
	if v.BytesIn != int64(len(`{"Image":"busybox",  "Cmd":["true"]}`)) {
		t.Errorf("BytesIn = %d", v.BytesIn)
	}
	if v.Rule != "roles.ci.allow[0] container.*" || v.Role != "ci" {
		t.Errorf("rule, role = %q, %q", v.Rule, v.Role)
	}
	v = evaluate(t, ci7, "GET", "/containers/json?all=1", "", &fakeDaemon{})
	if v.Effect != Allow || v.Body != nil || v.RawQuery != "all=1" {
		t.Errorf("a body-less request: %v body %q query %q", v.Effect, v.Body, v.RawQuery)
	}
}

// TestEvaluateChecksHostPaths: the bind-source link check runs inside
// Evaluate, so every caller (gateway, explain) gets it.
func TestEvaluateChecksHostPaths(t *testing.T) {
	body := `{"Image":"x","HostConfig":{"Binds":["/srv/ci/cache:/c"]}}`
	host := &fakeDaemon{links: fakeHost{"/srv/ci/cache": "/etc"}}
	v := evaluate(t, ci7, "POST", "/containers/create", body, host)
	if v.Effect != Deny || v.Field != "HostConfig.Binds[0]" || !strings.Contains(v.Reason, `resolves through a symbolic link to "/etc"`) {
		t.Fatalf("Evaluate = %v %q %q, want the link denied", v.Effect, v.Field, v.Reason)
	}
	if v.Rule != "roles.ci.containers.bind_mounts" {
		t.Errorf("rule = %q", v.Rule)
	}
	host = &fakeDaemon{links: fakeHost{"/srv/ci/cache": ""}}
	if v := evaluate(t, ci7, "POST", "/containers/create", body, host); v.Effect != Deny || !strings.Contains(v.Reason, "cannot be resolved") {
		t.Errorf("an unresolvable link: %v %q", v.Effect, v.Reason)
	}
	host = &fakeDaemon{}
	if v := evaluate(t, ci7, "POST", "/containers/create", body, host); v.Effect != Allow {
		t.Errorf("a plain allowed bind: %v %q", v.Effect, v.Reason)
	}
	if !reflect.DeepEqual(host.calls, []string{"resolve /srv/ci/cache"}) {
		t.Errorf("host calls = %v", host.calls)
	}
}

// TestEvaluateOwnership covers every branch of the ownership checks
// against a fake daemon: owned, missing, foreign, failed lookups, execs
// through their containers, volumes created for the caller.
func TestEvaluateOwnership(t *testing.T) {
	web := owned("f00dcafe01", "t1")
	cases := []struct {
		name         string
		target, body string
		daemon       fakeDaemon
		effect       Effect
		status       int
		message      string
		path         string   // forwarded path, when allowed
		bodyHas      string   // forwarded body contains, when allowed
		calls        []string // nil: not checked
	}{
		{name: "own container by name: path pinned to its ID", target: "/v1.47/containers/web/stop",
			daemon: fakeDaemon{objects: map[string]Object{"container/web": web}},
			effect: Allow, path: "/v1.47/containers/f00dcafe01/stop", calls: []string{"inspect container/web"}},
		{name: "foreign container", target: "/containers/web/stop",
			daemon: fakeDaemon{objects: map[string]Object{"container/web": owned("f00d", "t2")}},
			effect: Deny, status: 404, message: "No such container: web"},
		{name: "unlabelled container", target: "/containers/web/stop",
			daemon: fakeDaemon{objects: map[string]Object{"container/web": {ID: "f00d"}}},
			effect: Deny, status: 404, message: "No such container: web"},
		{name: "missing container", target: "/containers/web/stop",
			effect: Deny, status: 404, message: "No such container: web"},
		{name: "lookup fails", target: "/containers/web/stop",
			daemon: fakeDaemon{fail: map[string]error{"container/web": errors.New("connection refused")}},
			effect: Deny, status: 502, message: errLookupFailed},
		{name: "own exec through its container", target: "/exec/e1/start", body: `{"Detach":true}`,
			daemon: fakeDaemon{objects: map[string]Object{"exec/e1": {ID: "e1full", ContainerID: "c1"}, "container/c1": owned("c1", "t1")}},
			effect: Allow, path: "/exec/e1full/start", calls: []string{"inspect exec/e1", "inspect container/c1"}},
		{name: "exec of a foreign container", target: "/exec/e1/json",
			daemon: fakeDaemon{objects: map[string]Object{"exec/e1": {ID: "e1", ContainerID: "c1"}, "container/c1": owned("c1", "t2")}},
			effect: Deny, status: 404, message: "No such exec instance: e1"},
		{name: "exec whose container vanished", target: "/exec/e1/json",
			daemon: fakeDaemon{objects: map[string]Object{"exec/e1": {ID: "e1", ContainerID: "c1"}}},
			effect: Deny, status: 404, message: "No such exec instance: e1"},
		{name: "exec without a container", target: "/exec/e1/json",
			daemon: fakeDaemon{objects: map[string]Object{"exec/e1": {ID: "e1"}}},
			effect: Deny, status: 404, message: "No such exec instance: e1"},
		{name: "exec's container lookup fails", target: "/exec/e1/json",
			daemon: fakeDaemon{objects: map[string]Object{"exec/e1": {ID: "e1", ContainerID: "c1"}}, fail: map[string]error{"container/c1": errors.New("EOF")}},
			effect: Deny, status: 502, message: errLookupFailed},
		{name: "missing volume created for the caller", target: "/containers/create", body: `{"Image":"x","HostConfig":{"Binds":["data:/d"]}}`,
			effect: Allow, bodyHas: `"dockgate.owner":"t1"`,
			calls: []string{"inspect volume/data", "create volume/data map[dockgate.owner:t1]"}},
		{name: "volume another client created first", target: "/containers/create", body: `{"Image":"x","HostConfig":{"Binds":["data:/d"]}}`,
			daemon: fakeDaemon{created: &Object{ID: "data", Labels: map[string]string{OwnerLabel: "t2"}}},
			effect: Deny, status: 400, message: "get data: no such volume"},
		{name: "volume create fails", target: "/containers/create", body: `{"Image":"x","HostConfig":{"Binds":["data:/d"]}}`,
			daemon: fakeDaemon{createErr: errors.New("disk full")},
			effect: Deny, status: 502, message: errLookupFailed},
		{name: "volume named in a delete is not created", target: "/volumes/data", body: "",
			effect: Deny, status: 404, message: "get data: no such volume", calls: []string{"inspect volume/data"}},
		{name: "links pinned in the body", target: "/containers/create", body: `{"Image":"x","HostConfig":{"Links":["web:db"]}}`,
			daemon: fakeDaemon{objects: map[string]Object{"container/web": web}},
			effect: Allow, bodyHas: `"Links":["f00dcafe01:db"]`},
		{name: "network connect pins the container", target: "/networks/n1/connect", body: `{"Container":"web"}`,
			daemon: fakeDaemon{objects: map[string]Object{"network/n1": owned("n1full", "t1"), "container/web": web}},
			effect: Allow, path: "/networks/n1full/connect", bodyHas: `"Container":"f00dcafe01"`},
		{name: "first failed check stops the others", target: "/networks/n1/connect", body: `{"Container":"web"}`,
			daemon: fakeDaemon{objects: map[string]Object{"network/n1": owned("n1", "t2"), "container/web": web}},
			effect: Deny, status: 404, message: "network n1 not found", calls: []string{"inspect network/n1"}},
		{name: "list since a foreign container", target: "/containers/json?since=web",
			daemon: fakeDaemon{objects: map[string]Object{"container/web": owned("f00d", "t2")}},
			effect: Deny, status: 404, message: "No such container: web"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.daemon
			method := "POST"
			switch {
			case strings.HasSuffix(tc.target, "/json") || strings.Contains(tc.target, "/json?"):
				method = "GET"
			case tc.target == "/volumes/data":
				method = "DELETE"
			}
			v := evaluate(t, tenant1, method, tc.target, tc.body, &d)
			if v.Effect != tc.effect {
				t.Fatalf("effect = %v (%d %s: %s), want %v", v.Effect, v.Status, v.Message, v.Reason, tc.effect)
			}
			if tc.effect == Deny && (v.Status != tc.status || v.Message != tc.message) {
				t.Errorf("answer = %d %q, want %d %q", v.Status, v.Message, tc.status, tc.message)
			}
			if tc.status == 502 && v.Err == nil {
				t.Error("a failed lookup carries no error for the log")
			}
			if tc.path != "" && v.Path != tc.path {
				t.Errorf("forwarded path = %q, want %q", v.Path, tc.path)
			}
			if tc.bodyHas != "" && !strings.Contains(string(v.Body), tc.bodyHas) {
				t.Errorf("forwarded body = %s, want it to contain %s", v.Body, tc.bodyHas)
			}
			if tc.calls != nil && !reflect.DeepEqual(d.calls, tc.calls) {
				t.Errorf("host calls = %q, want %q", d.calls, tc.calls)
			}
		})
	}
}

// TestEvaluateOwnershipLookupTimeout: a lookup cut short by the request's
// deadline fails closed.
func TestEvaluateOwnershipLookupTimeout(t *testing.T) {
	p := mustPolicy(t, evaluateConfig)
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel()
	v := p.Evaluate(ctx, Input{Identity: tenant1, Method: "POST", Path: "/containers/web/stop"}, &fakeDaemon{})
	if v.Effect != Deny || v.Status != http.StatusBadGateway || !errors.Is(v.Err, context.DeadlineExceeded) {
		t.Fatalf("Evaluate = %v %d %v, want 502 with the deadline", v.Effect, v.Status, v.Err)
	}
}

// TestEvaluateOwnershipAuditMode: in audit mode a failed check forwards
// the request as would_deny and the later checks still pin.
func TestEvaluateOwnershipAuditMode(t *testing.T) {
	d := &fakeDaemon{objects: map[string]Object{
		"container/web": owned("f00d", "t2"),
		"container/db":  owned("dbfull", "t1"),
	}}
	v := evaluate(t, auditee, "POST", "/containers/create", `{"Image":"x","HostConfig":{"Links":["web","db"]}}`, d)
	if v.Effect != WouldDeny || !v.Forward() || v.Rule != "roles.auditee.owner_isolation" {
		t.Fatalf("Evaluate = %v %q, want would_deny by owner isolation", v.Effect, v.Rule)
	}
	if !strings.Contains(v.Message, "would deny") {
		t.Errorf("message = %q", v.Message)
	}
	if !strings.Contains(string(v.Body), `"Links":["web","dbfull:db"]`) {
		t.Errorf("body = %s, want the owned container pinned and the foreign one as sent", v.Body)
	}
}

// TestEvaluateOwnerFilter: lists are forwarded with the owner filter.
func TestEvaluateOwnerFilter(t *testing.T) {
	v := evaluate(t, tenant1, "GET", "/containers/json?all=1", "", &fakeDaemon{})
	if v.Effect != Allow || v.RawQuery != "all=1&filters=%7B%22label%22%3A%7B%22dockgate.owner%3Dt1%22%3Atrue%7D%7D" {
		t.Fatalf("Evaluate = %v %q", v.Effect, v.RawQuery)
	}
	if !v.Owner.Filter || v.Owner.Label {
		t.Errorf("owner plan = %+v", v.Owner)
	}
}

// TestResolvedPolicyKeepsClientsAndLimits: the policy a gateway loads
// (allowed bind paths resolved) still matches clients and bounds bodies.
func TestResolvedPolicyKeepsClientsAndLimits(t *testing.T) {
	p := mustPolicy(t, evaluateConfig).WithResolvedBindPaths(func(s string) (string, error) { return s, nil })
	if role, ok := p.RoleOf(tenant1); !ok || role != "tenant" {
		t.Errorf("RoleOf = %q, %v after WithResolvedBindPaths", role, ok)
	}
	v := p.Evaluate(context.Background(), Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/json",
		Body: strings.NewReader(`{"Image":"` + strings.Repeat("x", dockerapi.DefaultMaxBody) + `"}`)}, &fakeDaemon{})
	if v.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("status = %d, want 413 after WithResolvedBindPaths", v.Status)
	}
}
