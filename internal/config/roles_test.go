package config

import (
	"errors"
	"strings"
	"testing"
)

const rolesYAML = `
audit:
  path: /var/log/dockgate/audit.jsonl
roles:
  ci:
    allow: [container.*, exec.*, image.build, image.pull, volume.*]
    mode: enforce
    containers:
      bind_mounts: ["/srv/ci"]
      capabilities: [NET_BIND_SERVICE]
  tenant:
    allow: [container.*, exec.*]
    owner_isolation: true
    mode: audit
clients:
  - cn: "ci-*"
    role: ci
  - group: tenants
    role: tenant
  - group: admins
    role: admin
`

func TestParseRoles(t *testing.T) {
	cfg, err := Parse(strings.NewReader(rolesYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	ci, ok := cfg.Roles["ci"]
	if !ok {
		t.Fatalf("roles = %v, want ci", cfg.Roles)
	}
	if got, want := strings.Join(ci.Allow, ","), "container.*,exec.*,image.build,image.pull,volume.*"; got != want {
		t.Errorf("ci.allow = %q, want %q", got, want)
	}
	if got := ci.Containers.BindMounts; len(got) != 1 || got[0] != "/srv/ci" {
		t.Errorf("ci.containers.bind_mounts = %v", got)
	}
	if !cfg.Roles["tenant"].OwnerIsolation || cfg.Roles["tenant"].Mode != ModeAudit {
		t.Errorf("tenant = %+v", cfg.Roles["tenant"])
	}
	if got := cfg.AuditPath("/state"); got != "/var/log/dockgate/audit.jsonl" {
		t.Errorf("AuditPath = %q", got)
	}
	if role, ok := cfg.MatchClient("ci-7", nil); !ok || role != "ci" {
		t.Errorf("MatchClient(ci-7) = %q, %v; want ci", role, ok)
	}
}

func TestParseRejectsUnknownRoleKeys(t *testing.T) {
	_, err := Parse(strings.NewReader("roles:\n  ci:\n    allow: [\"*\"]\n    containers:\n      priviledged: true\n"))
	if err == nil || !strings.Contains(err.Error(), "priviledged") {
		t.Fatalf("got %v, want an error naming the misspelt key", err)
	}
}

func TestParseAudit(t *testing.T) {
	cases := []struct {
		yaml string
		want Audit
	}{
		{"", Audit{OnFull: AuditBlock, Queue: DefaultAuditQueue}},
		{"audit:\n  path: \"-\"\n", Audit{Path: "-", OnFull: AuditBlock, Queue: DefaultAuditQueue}},
		{"audit:\n  on_full: deny\n  queue: 16\n  sync: true\n", Audit{OnFull: AuditDeny, Queue: 16, Sync: true}},
		{"audit:\n  on_full: drop\n", Audit{OnFull: AuditDrop, Queue: DefaultAuditQueue}},
	}
	for _, tc := range cases {
		cfg, err := Parse(strings.NewReader(tc.yaml))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tc.yaml, err)
		}
		if cfg.Audit != tc.want {
			t.Errorf("Parse(%q).Audit = %+v, want %+v", tc.yaml, cfg.Audit, tc.want)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v", tc.yaml, err)
		}
	}
}

func TestParseNamesAuditKeyPath(t *testing.T) {
	cfg, err := Parse(strings.NewReader("audit:\n  on_full: wait\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "audit.on_full") {
		t.Errorf("Validate() = %v, want an error naming audit.on_full", err)
	}
}

func TestAuditPath(t *testing.T) {
	cases := []struct{ path, want string }{
		{"", "/state/audit.jsonl"},
		{"-", "-"},
		{"off", ""},
		{"/var/log/a.jsonl", "/var/log/a.jsonl"},
	}
	for _, tc := range cases {
		cfg := Default()
		cfg.Audit.Path = tc.path
		if got := cfg.AuditPath("/state"); got != tc.want {
			t.Errorf("AuditPath with path %q = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestKnownRole(t *testing.T) {
	cfg := Default()
	cfg.Roles = map[string]RoleSpec{"ci": {Allow: []string{"container.*"}}}
	for _, name := range []string{"admin", "read-only", "operator", "deployer", "ci"} {
		if !cfg.KnownRole(name) {
			t.Errorf("KnownRole(%q) = false, want true", name)
		}
	}
	for _, name := range []string{"", "root", "Admin", "CI"} {
		if cfg.KnownRole(name) {
			t.Errorf("KnownRole(%q) = true, want false", name)
		}
	}
	if got, want := strings.Join(cfg.RoleNames(), ","), "admin,read-only,operator,deployer,ci"; got != want {
		t.Errorf("RoleNames() = %q, want %q", got, want)
	}
}

func TestValidateRoles(t *testing.T) {
	ci := func(edit func(*RoleSpec)) func(*Config) {
		return func(c *Config) {
			r := RoleSpec{Allow: []string{"container.*"}}
			edit(&r)
			c.Roles = map[string]RoleSpec{"ci": r}
		}
	}
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
		msg   string
	}{
		{"glob typo", ci(func(r *RoleSpec) { r.Allow = []string{"container.*", "contianer.*"} }), "roles.ci.allow[1]", `"contianer.*" matches no operation`},
		{"glob syntax", ci(func(r *RoleSpec) { r.Allow = []string{"Container.Create"} }), "roles.ci.allow[0]", `has 'C'`},
		{"unknown_route", ci(func(r *RoleSpec) { r.Allow = []string{"unknown_route"} }), "roles.ci.allow[0]", "cannot be allowed"},
		{"empty allow", ci(func(r *RoleSpec) { r.Allow = nil }), "roles.ci.allow", "allows nothing"},
		{"bad mode", ci(func(r *RoleSpec) { r.Mode = "permissive" }), "roles.ci.mode", `"permissive" is not a mode`},
		{"unknown preset", ci(func(r *RoleSpec) { r.Preset = "treafik" }), "roles.ci.preset", `"treafik" is not a preset`},
		{"portainer preset", ci(func(r *RoleSpec) { r.Preset = "portainer" }), "roles.ci.preset", "could not be narrower than admin"},
		{"empty allow, no preset", ci(func(r *RoleSpec) { r.Allow, r.Preset = nil, "" }), "roles.ci.allow", "allows nothing"},
		{"relative bind", ci(func(r *RoleSpec) { r.Containers.BindMounts = []string{"srv/ci"} }), "roles.ci.containers.bind_mounts[0]", "not an absolute path"},
		{"dotdot bind", ci(func(r *RoleSpec) { r.Containers.BindMounts = []string{"/srv/../etc"} }), "roles.ci.containers.bind_mounts[0]", "'..'"},
		{"colon bind", ci(func(r *RoleSpec) { r.Containers.BindMounts = []string{"/srv:/x"} }), "roles.ci.containers.bind_mounts[0]", "cannot hold"},
		{"empty bind", ci(func(r *RoleSpec) { r.Containers.BindMounts = []string{""} }), "roles.ci.containers.bind_mounts[0]", "is empty"},
		{"unknown capability", ci(func(r *RoleSpec) { r.Containers.Capabilities = []string{"NET_BIND_SERVICE", "SYS_GOD"} }), "roles.ci.containers.capabilities[1]", `"SYS_GOD" is not a Linux capability`},
		{"unknown namespace", ci(func(r *RoleSpec) { r.Containers.HostNamespaces = []string{"net"} }), "roles.ci.containers.host_namespaces[0]", `"net" is not a namespace`},
		{"unknown entitlement", ci(func(r *RoleSpec) { r.Builds.Entitlements = []string{"network.none"} }), "roles.ci.builds.entitlements[0]", `"network.none" is not a BuildKit entitlement`},
		{"unknown cache backend", ci(func(r *RoleSpec) { r.Builds.CacheBackends = []string{"registry"} }), "roles.ci.builds.cache_backends[0]", `"registry" is not a cache backend that needs allowing`},
		{"bad sysctl", ci(func(r *RoleSpec) { r.Containers.Sysctls = []string{"net.core.somaxconn=1"} }), "roles.ci.containers.sysctls[0]", "not a sysctl name"},
		{"empty runtime", ci(func(r *RoleSpec) { r.Containers.Runtimes = []string{""} }), "roles.ci.containers.runtimes[0]", "is empty"},
		{"builtin redefined", func(c *Config) { c.Roles = map[string]RoleSpec{"admin": {Allow: []string{"system.ping"}}} }, "roles.admin", "built-in role"},
		{"bad role name", func(c *Config) { c.Roles = map[string]RoleSpec{"c i": {Allow: []string{"system.ping"}}} }, "roles.c i", "not a valid role name"},
		{"client names undeclared role", func(c *Config) { c.Clients = []ClientRule{{CN: "x", Role: "ci"}} }, "clients[0].role", `role "ci" is not defined`},
		{"relative audit path", func(c *Config) { c.Audit.Path = "audit.jsonl" }, "audit.path", "not an absolute path"},
		{"audit directory", func(c *Config) { c.Audit.Path = "/var/log/" }, "audit.path", "names a directory"},
		{"unknown on_full", func(c *Config) { c.Audit.OnFull = "wait" }, "audit.on_full", `"wait" is not block, drop or deny`},
		{"empty on_full", func(c *Config) { c.Audit.OnFull = "" }, "audit.on_full", `"" is not block, drop or deny`},
		{"negative queue", func(c *Config) { c.Audit.Queue = -1 }, "audit.queue", "out of range"},
		{"huge queue", func(c *Config) { c.Audit.Queue = MaxAuditQueue + 1 }, "audit.queue", "out of range"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (error: %v)", fe.Field, tc.field, err)
			}
			if !strings.Contains(fe.Msg, tc.msg) {
				t.Errorf("message = %q, want it to contain %q", fe.Msg, tc.msg)
			}
			if fe.Hint == "" {
				t.Errorf("no hint in %v", fe)
			}
		})
	}
}

func TestValidateRolesReportsEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Roles = map[string]RoleSpec{
		"a": {Allow: []string{"nope.*"}, Mode: "x"},
		"b": {Allow: []string{"container.*"}, Containers: ContainerKnob{BindMounts: []string{"rel"}}},
	}
	err := cfg.Validate()
	for _, field := range []string{"roles.a.allow[0]", "roles.a.mode", "roles.b.containers.bind_mounts[0]"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("Validate() = %v, want it to name %s", err, field)
		}
	}
}

func TestValidateAcceptsDeclaredRoleAndBuiltins(t *testing.T) {
	cfg := Default()
	cfg.Roles = map[string]RoleSpec{"ci": {Allow: []string{"*"}, Containers: ContainerKnob{
		Capabilities:   []string{"cap_net_admin", "ALL"},
		BindMounts:     []string{"/", "/srv/ci/"},
		HostNamespaces: HostNamespaceNames,
		Sysctls:        []string{"*", "net.core.somaxconn"},
	}}}
	cfg.Clients = []ClientRule{
		{CN: "ci-*", Role: "ci"}, {Group: "a", Role: "admin"}, {Group: "r", Role: "read-only"},
		{Group: "o", Role: "operator"}, {Group: "d", Role: "deployer"},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestMatchRule(t *testing.T) {
	cfg := Default()
	cfg.Clients = []ClientRule{{CN: "ci-*", Role: "admin"}, {Group: "ops", Role: "operator"}}
	cases := []struct {
		cn     string
		groups []string
		index  int
		ok     bool
	}{
		{"ci-1", []string{"ops"}, 0, true},
		{"bob", []string{"ops"}, 1, true},
		{"bob", nil, -1, false},
	}
	for _, tc := range cases {
		i, ok := cfg.MatchRule(tc.cn, tc.groups)
		if i != tc.index || ok != tc.ok {
			t.Errorf("MatchRule(%q, %v) = %d, %v; want %d, %v", tc.cn, tc.groups, i, ok, tc.index, tc.ok)
		}
	}
	if got := cfg.Clients[0].String(); got != `cn "ci-*" -> admin` {
		t.Errorf("String() = %q", got)
	}
	if got := cfg.Clients[1].String(); got != `group "ops" -> operator` {
		t.Errorf("String() = %q", got)
	}
}

func TestRelaxed(t *testing.T) {
	r := RoleSpec{
		Allow:           []string{"*"},
		OwnerIsolation:  true,
		AdminOperations: true,
		Containers:      ContainerKnob{Privileged: true, BindMounts: []string{"/srv/ci"}, HostNamespaces: []string{"pid"}},
		Builds:          BuildKnob{RemoteContext: true},
	}
	got := strings.Join(r.Relaxed(), "; ")
	want := "admin_operations; containers.privileged; containers.bind_mounts [/srv/ci]; containers.host_namespaces [pid]; builds.remote_context"
	if got != want {
		t.Errorf("Relaxed() = %q, want %q", got, want)
	}
	if got := (&RoleSpec{Allow: []string{"*"}}).Relaxed(); len(got) != 0 {
		t.Errorf("Relaxed() of a default role = %v", got)
	}
	redact, show := true, false
	if got := (&RoleSpec{Containers: ContainerKnob{RedactEnv: &redact}}).Relaxed(); len(got) != 0 {
		t.Errorf("Relaxed() with redact_env: true = %v", got)
	}
	if got := (&RoleSpec{Containers: ContainerKnob{RedactEnv: &show}}).Relaxed(); strings.Join(got, "; ") != "containers.redact_env false" {
		t.Errorf("Relaxed() with redact_env: false = %v", got)
	}
}

// redact_env is secure by default: unset redacts, only an explicit false
// shows the values.
func TestRedactEnvSetting(t *testing.T) {
	tests := []struct {
		yaml string
		want bool
	}{
		{"", true},
		{"\n    containers: {redact_env: true}", true},
		{"\n    containers: {redact_env: false}", false},
		{"\n    containers: {privileged: true}", true},
	}
	for _, tt := range tests {
		cfg, err := Parse(strings.NewReader("roles:\n  r:\n    allow: [container.inspect]" + tt.yaml + "\n"))
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tt.yaml, err)
		}
		spec := cfg.Roles["r"]
		if got := spec.Containers.RedactsEnv(); got != tt.want {
			t.Errorf("%q: RedactsEnv() = %v, want %v", tt.yaml, got, tt.want)
		}
	}
	if _, err := Parse(strings.NewReader("roles:\n  r:\n    allow: [container.inspect]\n    containers: {redact_env: maybe}\n")); err == nil {
		t.Error("redact_env: maybe parsed")
	}
}

func TestPresetNeedsNoAllow(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
roles:
  proxy:
    preset: traefik
  runner:
    preset: gitlab-runner
    allow: [image.build]
clients:
  - unix_group: proxy
    role: proxy
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
	if got := cfg.Roles["proxy"].Preset; got != "traefik" {
		t.Errorf("preset = %q, want traefik", got)
	}
	proxy := cfg.Roles["proxy"]
	if got := proxy.Relaxed(); got != nil {
		t.Errorf("a preset relaxes %v, want nothing", got)
	}
}
