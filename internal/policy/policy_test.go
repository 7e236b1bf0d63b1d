package policy

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// testConfig is the example from docs/POLICY.md, plus roles the tests
// need.
const testConfig = `
roles:
  ci:
    allow: [container.*, exec.*, image.build, image.pull, volume.*, network.*, service.*, grpc.serve, plugin.*, swarm.*, node.*]
    containers:
      bind_mounts: ["/srv/ci"]
      capabilities: [NET_BIND_SERVICE]
  tenant:
    allow: [container.*, exec.*, volume.*, network.*, system.events, system.df, image.build, image.tag, service.list]
    owner_isolation: true
  watcher:
    allow: ["*.list", "*.inspect"]
    mode: audit
  auditee:
    allow: [container.*, volume.*]
    owner_isolation: true
    mode: audit
  loose:
    allow: ["*"]
    admin_operations: true
    containers:
      privileged: true
      capabilities: [ALL]
      bind_mounts: ["/"]
      volume_driver_options: true
      volumes_from: true
      host_namespaces: [network, pid, ipc, uts, userns, cgroupns]
      container_namespaces: true
      devices: true
      device_requests: true
      unconfined: true
      sysctls: ["*"]
      runtimes: [runsc]
      cgroup_parent: true
      annotations: true
    builds:
      host_network: true
      remote_context: true
      remote_sources: true
      buildkit_grpc: true
clients:
  - cn: "ci-*"
    role: ci
  - group: admins
    role: admin
`

func mustPolicy(t testing.TB, yaml string) *Policy {
	t.Helper()
	cfg, err := config.Parse(strings.NewReader(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatalf("Compile() = %v", err)
	}
	return p
}

// decide classifies "METHOD /path?query" with a body and decides it.
func decide(t testing.TB, p *Policy, cn, role, method, target, body string) decision {
	t.Helper()
	path, query, _ := strings.Cut(target, "?")
	var b []byte
	if body != "" {
		b = []byte(body)
	}
	req, err := newRequest(method, path, query, b, 0)
	if err != nil {
		t.Fatalf("newRequest(%s %s) = %v", method, target, err)
	}
	if req.Route.Op == dockerapi.OpImageBuild && req.Query.Get("remote") == "" {
		// A build's body is its context: the body given is its Dockerfile.
		df := body
		if df == "" {
			df = "FROM busybox\n"
		}
		req.Build, _, _ = readBuildInput(bytes.NewReader(contextTar(t, "Dockerfile", df)), req.Query, maxContextPeek)
	}
	return p.decide(identity.Identity{CN: cn}, role, req)
}

func TestBuiltinRoles(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		role, method, path string
		allow              bool
	}{
		{"read-only", "GET", "/_ping", true},
		{"read-only", "HEAD", "/v1.47/_ping", true},
		{"read-only", "GET", "/v1.47/version", true},
		{"read-only", "GET", "/info", true},
		{"read-only", "GET", "/events", true},
		{"read-only", "GET", "/containers/json", true},
		{"read-only", "GET", "/containers/web/json", true},
		{"read-only", "GET", "/images/json", true},
		{"read-only", "GET", "/images/busybox/json", true},
		{"read-only", "GET", "/volumes", true},
		{"read-only", "GET", "/networks/bridge", true},
		{"read-only", "GET", "/containers/web/logs", false},
		{"read-only", "GET", "/containers/web/archive", false},
		{"read-only", "GET", "/containers/web/export", false},
		{"read-only", "POST", "/containers/web/attach", false},
		{"read-only", "POST", "/containers/web/exec", false},
		{"read-only", "GET", "/containers/web/top", false},
		{"read-only", "GET", "/distribution/busybox/json", false},
		{"read-only", "POST", "/containers/web/start", false},
		{"read-only", "GET", "/swarm/unlockkey", false},
		{"operator", "POST", "/containers/web/start", true},
		{"operator", "POST", "/containers/web/stop", true},
		{"operator", "POST", "/containers/web/restart", true},
		{"operator", "POST", "/containers/web/kill", true},
		{"operator", "POST", "/containers/web/pause", true},
		{"operator", "POST", "/containers/web/unpause", true},
		{"operator", "GET", "/containers/web/logs", true},
		{"operator", "DELETE", "/containers/web", false},
		{"operator", "POST", "/containers/web/exec", false},
		{"deployer", "DELETE", "/containers/web", true},
		{"deployer", "POST", "/containers/web/attach", true},
		{"deployer", "POST", "/containers/web/wait", true},
		{"deployer", "POST", "/images/create?fromImage=busybox&tag=latest", true},
		{"deployer", "POST", "/images/create?fromSrc=http://x/y.tar", false},
		{"deployer", "POST", "/images/busybox/tag?repo=x", true},
		{"deployer", "POST", "/images/busybox/push", false},
		{"deployer", "DELETE", "/images/busybox", false},
		{"deployer", "POST", "/build", true},
		{"deployer", "POST", "/grpc", true},
		{"deployer", "DELETE", "/volumes/v", true},
		{"deployer", "POST", "/volumes/prune", false},
		{"deployer", "POST", "/plugins/pull?remote=x", false},
		{"deployer", "POST", "/swarm/init", false},
		{"read-only", "GET", "/swarm", false},
		{"read-only", "GET", "/nodes", true},
		{"admin", "GET", "/swarm", true},
		{"deployer", "PUT", "/containers/web/archive?path=/", false},
		{"admin", "POST", "/plugins/pull?remote=x", true},
		{"admin", "POST", "/swarm/init", true},
		{"admin", "GET", "/debug/pprof/heap", true},
		{"admin", "GET", "/no/such/route", false},
	}
	for _, tc := range cases {
		t.Run(tc.role+" "+tc.method+" "+tc.path, func(t *testing.T) {
			var body string
			if strings.HasSuffix(tc.path, "/init") {
				body = "{}"
			}
			d := decide(t, p, "alice", tc.role, tc.method, tc.path, body)
			if got := d.Effect == Allow; got != tc.allow {
				t.Errorf("effect = %v, want allow %v (%s)", d.Effect, tc.allow, d.message())
			}
			if tc.allow && d.Rule != "built-in role "+tc.role {
				t.Errorf("rule = %q, want the built-in role", d.Rule)
			}
		})
	}
}

func TestBuiltinOperations(t *testing.T) {
	ro, op, dep := builtinOperations("read-only"), builtinOperations("operator"), builtinOperations("deployer")
	if len(ro) == 0 || len(op) <= len(ro) || len(dep) <= len(op) {
		t.Fatalf("read-only %d, operator %d, deployer %d operations: want each to extend the previous", len(ro), len(op), len(dep))
	}
	in := func(ops []dockerapi.Operation, want dockerapi.Operation) bool {
		for _, o := range ops {
			if o == want {
				return true
			}
		}
		return false
	}
	for _, o := range ro {
		if !in(op, o) || !in(dep, o) {
			t.Errorf("%s is read-only but not operator or deployer", o)
		}
	}
	if got := len(builtinOperations("admin")); got != len(dockerapi.Operations()) {
		t.Errorf("admin has %d operations, want all %d", got, len(dockerapi.Operations()))
	}
	if builtinOperations("ci") != nil {
		t.Error("builtinOperations(ci) is not nil")
	}
}

func TestDecideAllowList(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		method, path string
		allow        bool
		rule         string
	}{
		{"GET", "/v1.47/containers/json", true, "roles.ci.allow[0] container.*"},
		{"POST", "/containers/web/start", true, "roles.ci.allow[0] container.*"},
		{"GET", "/exec/abc/json", true, "roles.ci.allow[1] exec.*"},
		{"POST", "/images/create?fromImage=alpine", true, "roles.ci.allow[3] image.pull"},
		{"POST", "/images/create?fromSrc=-", false, "roles.ci.allow"},
		{"GET", "/images/json", false, "roles.ci.allow"},
		{"GET", "/info", false, "roles.ci.allow"},
		{"POST", "/session", false, "roles.ci.allow"},
		{"GET", "/nope", false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			d := decide(t, p, "ci-7", "ci", tc.method, tc.path, "")
			if got := d.Effect == Allow; got != tc.allow {
				t.Fatalf("effect = %v, want allow %v (%s)", d.Effect, tc.allow, d.message())
			}
			if d.Rule != tc.rule {
				t.Errorf("rule = %q, want %q", d.Rule, tc.rule)
			}
			if !tc.allow && d.Status != http.StatusForbidden {
				t.Errorf("status = %d, want 403", d.Status)
			}
		})
	}
}

func TestDenialMessage(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		name, role, method, path, body string
		want                           string
	}{
		{"issue example", "ci", "POST", "/v1.47/containers/create", `{"Image":"busybox","HostConfig":{"Privileged":true}}`,
			"dockgate: denied container.create for ci-7 (role ci): HostConfig.Privileged is not allowed; allow it with roles.ci.containers.privileged: true"},
		{"operation", "ci", "GET", "/info", "",
			"dockgate: denied system.info for ci-7 (role ci): system.info is not allowed; allow it by adding system.info to roles.ci.allow"},
		{"capability", "ci", "POST", "/containers/create", `{"Image":"x","HostConfig":{"CapAdd":["sys_admin"]}}`,
			`dockgate: denied container.create for ci-7 (role ci): HostConfig.CapAdd adds "sys_admin" (CAP_SYS_ADMIN), which is not allowed; allow it by adding SYS_ADMIN to roles.ci.containers.capabilities`},
		{"built-in", "deployer", "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"Privileged":true}}`,
			"dockgate: denied container.create for ci-7 (role deployer): HostConfig.Privileged is not allowed; role deployer is built in: give this client a role of your own with containers.privileged: true"},
		{"built-in operation", "read-only", "DELETE", "/containers/web", "",
			"dockgate: denied container.delete for ci-7 (role read-only): container.delete is not allowed; role read-only is built in: give this client a role of your own that allows container.delete"},
		{"unknown route", "admin", "GET", "/v1.47/secret/stuff", "",
			"dockgate: denied unknown_route for ci-7 (role admin): dockerd has no route for /secret/stuff; see docs/OPERATIONS.md for the Engine API routes"},
		{"no role", "", "GET", "/info", "",
			"dockgate: denied system.info for ci-7: no role: no clients: entry matches this identity"},
		{"undefined role", "ghost", "GET", "/info", "",
			"dockgate: denied system.info for ci-7 (role ghost): role ghost is not defined"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "ci-7", tc.role, tc.method, tc.path, tc.body)
			if d.Effect != Deny {
				t.Fatalf("effect = %v, want deny", d.Effect)
			}
			if got := d.message(); got != tc.want {
				t.Errorf("message:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestAuditMode(t *testing.T) {
	p := mustPolicy(t, testConfig)
	d := decide(t, p, "w", "watcher", "DELETE", "/containers/web", "")
	if d.Effect != WouldDeny || !d.forward() {
		t.Fatalf("effect = %v, want would_deny (forwarded)", d.Effect)
	}
	if d.Status != http.StatusForbidden || d.Reason == "" || d.Rule != "roles.watcher.allow" {
		t.Errorf("decision = %+v, want the denial's status, reason and rule", d)
	}
	if got, want := d.message(), "dockgate: would deny container.delete for w (role watcher): container.delete is not allowed; allow it by adding container.delete to roles.watcher.allow"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	if d := decide(t, p, "w", "watcher", "GET", "/containers/json", ""); d.Effect != Allow {
		t.Errorf("allowed request in audit mode: effect %v, want allow", d.Effect)
	}
	if d.Effect.String() != "would_deny" || Allow.String() != "allow" || Deny.String() != "deny" {
		t.Error("Effect.String spells the audit log's words wrong")
	}
}

func TestZeroDecisionDenies(t *testing.T) {
	var d decision
	if d.forward() || d.Effect != Deny {
		t.Error("the zero decision forwards")
	}
}

func TestNeedsBodyAndMissingBody(t *testing.T) {
	p := mustPolicy(t, testConfig)
	for _, op := range dockerapi.Operations() {
		if needsBody(op) && op.Body() != dockerapi.BodyJSON {
			t.Errorf("needsBody(%s) but dockerd reads no JSON body for it", op)
		}
		if !needsBody(op) {
			continue
		}
		d := p.decide(identity.Identity{CN: "x"}, "loose", request{Route: dockerapi.Route{Op: op, Target: "t"}})
		if d.Effect != Deny || d.Status != http.StatusInternalServerError {
			t.Errorf("%s without a body: effect %v status %d, want deny 500", op, d.Effect, d.Status)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	cfg := config.Default()
	cfg.Roles = map[string]config.RoleSpec{
		"a":     {Allow: []string{"nope.*"}},
		"admin": {Allow: []string{"*"}},
		"b":     {Allow: []string{"container.*"}, Containers: config.ContainerKnob{Capabilities: []string{"GODMODE"}, BindMounts: []string{"rel"}}},
	}
	_, err := Compile(&cfg)
	var fe *config.FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("Compile() = %v, want field errors", err)
	}
	for _, field := range []string{"roles.a.allow[0]", "roles.admin", "roles.b.containers.capabilities[0]", "roles.b.containers.bind_mounts[0]"} {
		if !strings.Contains(err.Error(), field+":") {
			t.Errorf("Compile() = %v, want it to name %s", err, field)
		}
	}
}

func TestNewRequestErrors(t *testing.T) {
	cases := []struct {
		name, method, path, query, body string
		want                            error
	}{
		{"dot segment", "GET", "/v1.47/containers/../images/json", "", "", dockerapi.ErrDotSegment},
		{"old version", "POST", "/v1.23/containers/x/start", "", "", dockerapi.ErrVersionTooOld},
		{"semicolon query", "GET", "/containers/json", "a=1;b=2", "", dockerapi.ErrQuery},
		{"duplicate key", "POST", "/containers/create", "", `{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}`, dockerapi.ErrDuplicateKey},
		{"empty create", "POST", "/containers/create", "", "", dockerapi.ErrBodyEmpty},
		{"body on bodiless route", "POST", "/containers/x/start", "", "{}", dockerapi.ErrBody},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			_, err := newRequest(tc.method, tc.path, tc.query, body, 0)
			if !errors.Is(err, tc.want) {
				t.Errorf("newRequest() = %v, want %v", err, tc.want)
			}
		})
	}
}

// newRequest is parseRequest and setBody in one call, for a request whose
// whole body is at hand (tests).
func newRequest(method, escapedPath, rawQuery string, body []byte, maxBody int) (request, error) {
	req, err := parseRequest(method, escapedPath, rawQuery)
	if err != nil {
		return request{}, err
	}
	if err := req.setBody(body, maxBody); err != nil {
		return request{}, err
	}
	return req, nil
}

// TestDiscoveryAllowedByDefault: every declared role may ping and ask
// the version (the docker CLI's first two calls) unless it opts out.
func TestDiscoveryAllowedByDefault(t *testing.T) {
	p := mustPolicy(t, strings.Replace(testConfig, "roles:\n", `roles:
  quiet:
    allow: [container.list]
    discovery: false
`, 1))
	for _, target := range []string{"/_ping", "/v1.47/version"} {
		d := decide(t, p, "ci-7", "ci", "GET", target, "")
		if d.Effect != Allow || d.Rule != "roles.ci.discovery (default: the docker CLI pings and asks the version first)" {
			t.Errorf("ci GET %s = %v %q, want allowed by discovery", target, d.Effect, d.Rule)
		}
		if d := decide(t, p, "q", "quiet", "GET", target, ""); d.Effect != Deny || d.Rule != "roles.quiet.allow" {
			t.Errorf("quiet (discovery: false) GET %s = %v %q, want denied", target, d.Effect, d.Rule)
		}
	}
	if d := decide(t, p, "q", "ci", "GET", "/info", ""); d.Effect != Deny {
		t.Errorf("discovery allowed more than ping and version: GET /info = %v", d.Effect)
	}
}
