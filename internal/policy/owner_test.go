package policy

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

func TestOwnerIsolationChecks(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		name, method, path, body string
		want                     []OwnerCheck
	}{
		{"inspect by name", "GET", "/containers/web/json", "", []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "path", Pin: true}}},
		{"stop by ID prefix", "POST", "/v1.47/containers/4f2a/stop", "", []OwnerCheck{{Kind: KindContainer, Ref: "4f2a", Field: "path", Pin: true}}},
		{"delete", "DELETE", "/containers/web", "", []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "path", Pin: true}}},
		{"exec create", "POST", "/containers/web/exec", `{"Cmd":["sh"]}`, []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "path", Pin: true}}},
		{"exec start", "POST", "/exec/e1/start", `{}`, []OwnerCheck{{Kind: KindExec, Ref: "e1", Field: "path", Pin: true}}},
		{"exec inspect", "GET", "/exec/e1/json", "", []OwnerCheck{{Kind: KindExec, Ref: "e1", Field: "path", Pin: true}}},
		{"archive", "GET", "/containers/web/archive?path=/etc", "", []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "path", Pin: true}}},
		{"volume inspect", "GET", "/volumes/data", "", []OwnerCheck{{Kind: KindVolume, Ref: "data", Field: "path", Pin: true}}},
		{"volume delete", "DELETE", "/volumes/data", "", []OwnerCheck{{Kind: KindVolume, Ref: "data", Field: "path", Pin: true}}},
		{"network inspect", "GET", "/networks/n1", "", []OwnerCheck{{Kind: KindNetwork, Ref: "n1", Field: "path", Pin: true}}},
		{"network connect", "POST", "/networks/n1/connect", `{"Container":"web"}`, []OwnerCheck{
			{Kind: KindNetwork, Ref: "n1", Field: "path", Pin: true}, {Kind: KindContainer, Ref: "web", Field: "Container"}}},
		{"network disconnect", "POST", "/networks/n1/disconnect", `{"Container":"web","Force":true}`, []OwnerCheck{
			{Kind: KindNetwork, Ref: "n1", Field: "path", Pin: true}, {Kind: KindContainer, Ref: "web", Field: "Container"}}},
		{"commit", "POST", "/commit?container=web&repo=x", "", []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "query container"}}},
		{"list since before", "GET", "/containers/json?since=a&before=b", "", []OwnerCheck{
			{Kind: KindContainer, Ref: "a", Field: "query since"}, {Kind: KindContainer, Ref: "b", Field: "query before"}}},
		{"list filters since", "GET", `/containers/json?filters={"since":{"c":true}}`, "", []OwnerCheck{{Kind: KindContainer, Ref: "c", Field: "query filters since"}}},
		{"build container network", "POST", "/build?networkmode=container:web", "", []OwnerCheck{{Kind: KindContainer, Ref: "web", Field: "query networkmode"}}},
		{"create references", "POST", "/containers/create",
			`{"Image":"x","HostConfig":{"NetworkMode":"container:victim","PidMode":"container:victim","IpcMode":"container:other","Links":["/db:db"],
			  "Binds":["cache:/cache","/data"],"Mounts":[{"Type":"volume","Source":"store","Target":"/s"},{"Type":"volume","Target":"/anon"}]}}`,
			[]OwnerCheck{
				{Kind: KindContainer, Ref: "victim", Field: "HostConfig.NetworkMode"},
				{Kind: KindContainer, Ref: "other", Field: "HostConfig.IpcMode"},
				{Kind: KindContainer, Ref: "db", Field: "HostConfig.Links[0]"},
				{Kind: KindVolume, Ref: "cache", Field: "HostConfig.Binds[0]", CreateMissing: true},
				{Kind: KindVolume, Ref: "store", Field: "HostConfig.Mounts[0].Source", CreateMissing: true},
			}},
		{"create networks", "POST", "/containers/create",
			`{"Image":"x","HostConfig":{"NetworkMode":"backend"},"NetworkingConfig":{"EndpointsConfig":{"backend":{},"bridge":{},"front":{}}}}`,
			[]OwnerCheck{
				{Kind: KindNetwork, Ref: "backend", Field: "HostConfig.NetworkMode"},
				{Kind: KindNetwork, Ref: "front", Field: "NetworkingConfig.EndpointsConfig"},
			}},
		{"create legacy references", "POST", "/containers/create", `{"Image":"x","PidMode":"container:victim"}`,
			[]OwnerCheck{{Kind: KindContainer, Ref: "victim", Field: "PidMode"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "t1", "tenant", tc.method, tc.path, tc.body)
			if d.Effect != Allow {
				t.Fatalf("effect = %v, want allow: %s", d.Effect, d.message())
			}
			if !reflect.DeepEqual(d.Owner.Checks, tc.want) {
				t.Errorf("checks:\n got %+v\nwant %+v", d.Owner.Checks, tc.want)
			}
		})
	}
}

func TestOwnerIsolationDenials(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		name, cn, method, path, body string
		status                       int
	}{
		{"system df lists everything", "t1", "GET", "/system/df", "", http.StatusForbidden},
		{"services have no owner", "t1", "GET", "/services", "", http.StatusForbidden},
		{"no CN", "", "GET", "/containers/json", "", http.StatusForbidden},
		{"invalid filters", "t1", "GET", "/containers/json?filters=notjson", "", http.StatusBadRequest},
		{"case-variant filters", "t1", "GET", `/containers/json?filters={"label":{"a":true},"Label":{"b":true}}`, "", http.StatusBadRequest},
		{"volumes from needs the setting", "t1", "POST", "/containers/create", create(`{"VolumesFrom":["victim"]}`), http.StatusForbidden},
		{"guardrails still apply", "t1", "POST", "/containers/create", create(`{"Privileged":true}`), http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, tc.cn, "tenant", tc.method, tc.path, tc.body)
			if d.Effect != Deny || d.Status != tc.status {
				t.Errorf("effect %v status %d, want deny %d (%s)", d.Effect, d.Status, tc.status, d.message())
			}
		})
	}
}

func TestOwnerIsolationRewrites(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		name, method, path, body string
		wantFilters              string // the "filters" value after Rewrite, "" when untouched
		wantLabel                bool
	}{
		{"list", "GET", "/containers/json?all=1", "", `{"label":{"dockgate.owner=t1":true}}`, false},
		{"list keeps filters", "GET", `/containers/json?filters={"status":{"running":true},"label":{"app=web":true}}`, "",
			`{"label":{"app=web":true,"dockgate.owner=t1":true},"status":{"running":true}}`, false},
		{"list legacy filters", "GET", `/containers/json?filters={"label":["app=web"]}`, "",
			`{"label":{"app=web":true,"dockgate.owner=t1":true}}`, false},
		{"list spoofed owner", "GET", `/containers/json?filters={"label":{"dockgate.owner=victim":true}}`, "",
			`{"label":{"dockgate.owner=t1":true,"dockgate.owner=victim":true}}`, false},
		{"events", "GET", `/events?since=0&filters={"type":{"container":true}}`, "",
			`{"label":{"dockgate.owner=t1":true},"type":{"container":true}}`, false},
		{"volume list", "GET", "/volumes", "", `{"label":{"dockgate.owner=t1":true}}`, false},
		{"network list", "GET", "/networks", "", `{"label":{"dockgate.owner=t1":true}}`, false},
		{"container prune", "POST", "/containers/prune", "", `{"label":{"dockgate.owner=t1":true}}`, false},
		{"volume prune", "POST", `/volumes/prune?filters={"all":{"true":true}}`, "", `{"all":{"true":true},"label":{"dockgate.owner=t1":true}}`, false},
		{"container create", "POST", "/containers/create", `{"Image":"x","Labels":{"dockgate.owner":"victim","app":"web"}}`, "", true},
		{"volume create", "POST", "/volumes/create", `{"Name":"v","Labels":{"dockgate.owner":"victim"}}`, "", true},
		{"network create", "POST", "/networks/create", `{"Name":"n"}`, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, query, _ := strings.Cut(tc.path, "?")
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			req, err := newRequest(tc.method, path, query, body, 0)
			if err != nil {
				t.Fatal(err)
			}
			d := p.decide(identity.Identity{CN: "t1"}, "tenant", req)
			if d.Effect != Allow {
				t.Fatalf("effect = %v, want allow: %s", d.Effect, d.message())
			}
			if d.Owner.Filter != (tc.wantFilters != "") || d.Owner.Label != tc.wantLabel {
				t.Fatalf("plan = %+v", d.Owner)
			}
			qChanged, bChanged, err := d.rewrite(&req)
			if err != nil {
				t.Fatal(err)
			}
			if qChanged != (tc.wantFilters != "") || bChanged != tc.wantLabel {
				t.Errorf("Rewrite changed query %v body %v", qChanged, bChanged)
			}
			if tc.wantFilters != "" {
				if got := req.Query["filters"]; len(got) != 1 || got[0] != tc.wantFilters {
					t.Errorf("filters = %q, want %q", got, tc.wantFilters)
				}
			}
			if tc.wantLabel {
				assertOwnerLabel(t, req.Body, "t1")
			}
		})
	}
}

// assertOwnerLabel checks the label in the body the gateway forwards.
func assertOwnerLabel(t *testing.T, body any, cn string) {
	t.Helper()
	encoded, err := dockerapi.Encode(body)
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Labels map[string]string }
	if err := json.Unmarshal(encoded, &v); err != nil {
		t.Fatal(err)
	}
	if got := v.Labels[OwnerLabel]; got != cn {
		t.Errorf("forwarded %s = %q, want %q (body %s)", OwnerLabel, got, cn, encoded)
	}
}

func TestAuditModeKeepsOwnerPlan(t *testing.T) {
	p := mustPolicy(t, testConfig)
	d := decide(t, p, "t1", "auditee", "POST", "/containers/create", create(`{"Privileged":true}`))
	if d.Effect != WouldDeny {
		t.Fatalf("effect = %v, want would_deny", d.Effect)
	}
	if !d.Owner.Label {
		t.Error("a forwarded create in audit mode is not labelled")
	}
	d = decide(t, p, "t1", "auditee", "GET", "/containers/web/json", "")
	if d.Effect != Allow || len(d.Owner.Checks) != 1 {
		t.Errorf("inspect in audit mode: effect %v checks %+v", d.Effect, d.Owner.Checks)
	}
}

func TestAddOwnerFilter(t *testing.T) {
	cases := []struct{ raw, want string }{
		{"", `{"label":{"dockgate.owner=ci-7":true}}`},
		{"{}", `{"label":{"dockgate.owner=ci-7":true}}`},
		{`{"label":{"a=b":true}}`, `{"label":{"a=b":true,"dockgate.owner=ci-7":true}}`},
		{`{"label":["a"],"name":["web"]}`, `{"label":{"a":true,"dockgate.owner=ci-7":true},"name":{"web":true}}`},
	}
	for _, tc := range cases {
		got, err := addOwnerFilter(tc.raw, "ci-7")
		if err != nil || got != tc.want {
			t.Errorf("addOwnerFilter(%q) = %q, %v; want %q", tc.raw, got, err, tc.want)
		}
	}
	for _, bad := range []string{"[]", "{", `{"label":{"a":true},"label":{"b":true}}`, `{"label":"x"}`} {
		if _, err := addOwnerFilter(bad, "ci-7"); err == nil {
			t.Errorf("addOwnerFilter(%q) accepted", bad)
		}
	}
}

func TestStampOwner(t *testing.T) {
	c, err := dockerapi.DecodeContainerCreate([]byte(`{"Image":"x","Labels":{"dockgate.owner":"victim","app":"kept"}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	v := &volume.CreateRequest{Name: "v"}
	n := &network.CreateRequest{Labels: map[string]string{OwnerLabel: "victim"}}
	for _, body := range []any{c, v, n} {
		if !stampOwner(body, "ci-7") {
			t.Fatalf("stampOwner(%T) = false", body)
		}
		assertOwnerLabel(t, body, "ci-7")
	}
	if c.Config.Labels["app"] != "kept" {
		t.Error("a label with another key was changed")
	}
	if stampOwner(&struct{}{}, "ci-7") {
		t.Error("StampOwner accepted a body without labels")
	}
}

func TestPinnedPath(t *testing.T) {
	const id = "4f2a9c0e1b7d"
	cases := []struct {
		method, path string
		want         string
		ok           bool
	}{
		{"GET", "/v1.47/containers/web/json", "/v1.47/containers/" + id + "/json", true},
		{"POST", "/containers/web/start", "/containers/" + id + "/start", true},
		{"DELETE", "/containers/web", "/containers/" + id, true},
		{"DELETE", "/containers/web/checkpoints/cp1", "/containers/" + id + "/checkpoints/cp1", true},
		{"POST", "/exec/e1/start", "/exec/" + id + "/start", true},
		{"GET", "/volumes/data", "/volumes/" + id, true},
		{"POST", "/networks/n1/connect", "/networks/" + id + "/connect", true},
		{"GET", "/v1.41/containers/my%2Dapp/json", "/v1.41/containers/" + id + "/json", true},
		{"GET", "/containers/json", "", false},
		{"GET", "/images/busybox/json", "", false},
	}
	for _, tc := range cases {
		r, err := dockerapi.Classify(tc.method, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := pinnedPath(r, id)
		if got != tc.want || ok != tc.ok {
			t.Errorf("pinnedPath(%s %s) = %q, %v; want %q, %v", tc.method, tc.path, got, ok, tc.want, tc.ok)
		}
	}
	r, _ := dockerapi.Classify("GET", "/containers/web/json")
	if _, ok := pinnedPath(r, "../x"); ok {
		t.Error("PinnedPath accepted an ID with '/'")
	}
}

func TestOwnedByEmptyCN(t *testing.T) {
	if ownedBy(map[string]string{}, "") || ownedBy(nil, "") || ownedBy(map[string]string{OwnerLabel: ""}, "") {
		t.Error("an empty CN owns an object")
	}
}

func TestOwnerCheckMessages(t *testing.T) {
	cases := []struct {
		c      OwnerCheck
		notFnd string
	}{
		{OwnerCheck{Kind: KindContainer, Ref: "web"}, "No such container: web"},
		{OwnerCheck{Kind: KindExec, Ref: "e1"}, "No such exec instance: e1"},
		{OwnerCheck{Kind: KindVolume, Ref: "data"}, "get data: no such volume"},
		{OwnerCheck{Kind: KindNetwork, Ref: "n 1"}, "network n 1 not found"},
	}
	for _, tc := range cases {
		if got := tc.c.NotFound(); got != tc.notFnd {
			t.Errorf("%s NotFound = %q, want %q", tc.c.Kind, got, tc.notFnd)
		}
	}
}

func TestDenyOwnership(t *testing.T) {
	p := mustPolicy(t, testConfig)
	check := OwnerCheck{Kind: KindContainer, Ref: "web", Field: "path", Pin: true}

	d := decide(t, p, "t1", "tenant", "GET", "/containers/web/json", "")
	d.denyOwnership(check)
	if d.forward() || d.Status != http.StatusNotFound {
		t.Fatalf("effect %v status %d, want deny 404", d.Effect, d.Status)
	}
	if got := d.message(); got != "No such container: web" {
		t.Errorf("message = %q, want dockerd's not-found message", got)
	}
	if d.Reason != `container "web" (path) is missing or not the caller's` || d.Rule != "roles.tenant.owner_isolation" {
		t.Errorf("reason %q rule %q", d.Reason, d.Rule)
	}

	d = decide(t, p, "t1", "auditee", "GET", "/containers/web/json", "")
	d.denyOwnership(check)
	if d.Effect != WouldDeny || !d.forward() {
		t.Fatalf("audit mode: effect %v, want would_deny", d.Effect)
	}
	if got := d.message(); !strings.HasPrefix(got, "dockgate: would deny container.inspect for t1 (role auditee): container \"web\"") {
		t.Errorf("audit mode message = %q", got)
	}

	// dockerd answers 400 for a missing container a create names; a 404
	// would make the docker CLI pull the image and try again.
	d = decide(t, p, "t1", "tenant", "POST", "/containers/create", create(`{"PidMode":"container:web"}`))
	if len(d.Owner.Checks) != 1 {
		t.Fatalf("checks = %+v, want the PidMode container", d.Owner.Checks)
	}
	d.denyOwnership(d.Owner.Checks[0])
	if d.forward() || d.Status != http.StatusBadRequest || d.message() != "No such container: web" {
		t.Errorf("create naming another's container: effect %v status %d message %q, want deny 400 %q",
			d.Effect, d.Status, d.message(), "No such container: web")
	}

	d = decide(t, p, "t1", "auditee", "POST", "/containers/create", create(`{"Privileged":true}`))
	reason := d.Reason
	d.denyOwnership(OwnerCheck{Kind: KindVolume, Ref: "v", Field: "HostConfig.Binds[0]"})
	if d.Reason != reason {
		t.Errorf("a would_deny lost its first reason: %q", d.Reason)
	}
}

func TestParseRequestThenSetBody(t *testing.T) {
	req, err := parseRequest("POST", "/v1.47/containers/create", "name=web")
	if err != nil {
		t.Fatal(err)
	}
	if req.Route.Op != dockerapi.OpContainerCreate || req.Query.Get("name") != "web" || req.Body != nil {
		t.Fatalf("ParseRequest = %+v", req)
	}
	if err := req.setBody([]byte(`{"Image":"x"}`), 0); err != nil {
		t.Fatal(err)
	}
	if _, ok := req.Body.(*dockerapi.ContainerCreate); !ok {
		t.Errorf("body = %T, want *dockerapi.ContainerCreate", req.Body)
	}
	if err := req.setBody(make([]byte, 100), 10); !errors.Is(err, dockerapi.ErrBodyTooLarge) {
		t.Errorf("SetBody over the limit = %v, want ErrBodyTooLarge", err)
	}
	raw, _ := parseRequest("PUT", "/containers/web/archive", "path=/")
	if err := raw.setBody([]byte("tar bytes"), 0); err != nil || raw.Body != nil {
		t.Errorf("SetBody on a raw body = %v, body %v; want it left to the stream", err, raw.Body)
	}
}
