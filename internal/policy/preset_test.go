package policy

import (
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
)

// presetWant is what each preset must allow, written out apart from the
// preset table: a change to the table that changes what a tool may do
// has to change this too.
var presetWant = map[string][]string{
	"traefik":     {"system.ping", "system.version", "system.events", "container.list", "container.inspect"},
	"watchtower":  {"container.list", "container.inspect", "container.create", "container.start", "container.kill", "container.rename", "container.delete", "image.inspect", "image.pull", "image.delete", "network.connect", "network.disconnect"},
	"dozzle":      {"system.ping", "system.version", "system.info", "system.events", "container.list", "container.inspect", "container.logs", "container.stats"},
	"homepage":    {"container.list", "container.inspect", "container.stats"},
	"uptime-kuma": {"container.list", "container.inspect"},
	"autoheal":    {"container.list", "container.restart"},
	"gitlab-runner": {"system.ping", "system.info", "container.list", "container.create", "container.inspect", "container.logs",
		"container.start", "container.stop", "container.kill", "container.attach", "container.wait", "container.delete", "container.exec",
		"exec.start", "image.pull", "image.import", "image.inspect", "volume.create", "volume.inspect", "volume.delete",
		"network.list", "network.inspect", "network.create", "network.disconnect", "network.delete"},
	"github-actions-runner": {"system.ping", "system.version", "system.auth", "container.list", "container.create", "container.inspect",
		"container.logs", "container.start", "container.attach", "container.wait", "container.delete", "container.exec", "exec.start",
		"exec.inspect", "image.build", "image.pull", "network.create", "network.inspect", "network.delete", "network.prune"},
	"docker-compose": {"system.ping", "system.version", "system.info", "system.events", "container.list", "container.create",
		"container.inspect", "container.top", "container.logs", "container.stats", "container.resize", "container.start",
		"container.stop", "container.restart", "container.kill", "container.rename", "container.pause", "container.unpause",
		"container.attach", "container.wait", "container.delete", "container.archive.head", "container.archive.get",
		"container.archive.put", "container.exec", "exec.start", "exec.resize", "exec.inspect", "image.list", "image.build",
		"image.pull", "image.inspect", "image.delete", "volume.list", "volume.create", "volume.inspect", "volume.delete",
		"network.list", "network.inspect", "network.create", "network.connect", "network.disconnect", "network.delete"},
}

// presetRoleConfig declares one role per preset, called after it, with
// discovery off so that the role allows exactly what the preset does.
func presetRoleConfig(extra string) string {
	var b strings.Builder
	b.WriteString("roles:\n")
	for _, name := range config.Presets {
		b.WriteString("  " + name + ":\n    preset: " + name + "\n    discovery: false\n" + extra)
	}
	return b.String()
}

func opNames(ops []dockerapi.Operation) []string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = op.String()
	}
	slices.Sort(names)
	return names
}

func TestPresetsAreTheConfigs(t *testing.T) {
	var names []string
	for _, p := range presets {
		names = append(names, p.name)
	}
	if !slices.Equal(names, config.Presets) {
		t.Errorf("presets %v, config.Presets %v", names, config.Presets)
	}
	for _, name := range config.Presets {
		if _, ok := presetWant[name]; !ok {
			t.Errorf("preset %s has no want list in this test", name)
		}
	}
}

func TestPresetAllowsExactlyItsOperations(t *testing.T) {
	p := mustPolicy(t, presetRoleConfig(""))
	for name, want := range presetWant {
		t.Run(name, func(t *testing.T) {
			want = slices.Sorted(slices.Values(want))
			if got := opNames(p.Allowed(name)); !slices.Equal(got, want) {
				t.Errorf("Allowed(%s)\n got %v\nwant %v", name, got, want)
			}
			pr, _ := findPreset(name)
			for _, c := range pr.calls {
				if got := callOperation(t, c.call); got != c.op {
					t.Errorf("%s (%s) is %s, the table says %s", c.call, c.from, got, c.op)
				}
			}
		})
	}
}

// callOperation classifies a call as the table writes it ("GET
// /containers/{id}/json", "GET /events?filters={...}") as the gateway will.
func callOperation(t *testing.T, call string) dockerapi.Operation {
	t.Helper()
	method, target, _ := strings.Cut(call, " ")
	target = strings.NewReplacer("{id}", "abc", "{name}", "abc").Replace(target)
	path, rawQuery, _ := strings.Cut(target, "?")
	q := url.Values{}
	for _, kv := range strings.Split(rawQuery, "&") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			q.Set(k, v)
		}
	}
	req, err := parseRequest(method, path, q.Encode())
	if err != nil {
		t.Fatalf("%s: %v", call, err)
	}
	return req.Route.Op
}

func TestPresetWithAllowAndSettings(t *testing.T) {
	p := mustPolicy(t, `
roles:
  proxy:
    preset: traefik
  runner:
    preset: gitlab-runner
    allow: [image.build]
    owner_isolation: true
    containers:
      privileged: true
clients:
  - cn: proxy
    role: proxy
`)
	cases := []struct {
		name, role, method, target, body string
		allow                            bool
		rule                             string
	}{
		{"preset call", "proxy", "GET", "/v1.47/containers/json", "", true, "roles.proxy.preset traefik"},
		{"discovery", "proxy", "HEAD", "/_ping", "", true, "roles.proxy.preset traefik"},
		{"outside the preset", "proxy", "POST", "/containers/create", `{"Image":"x"}`, false, "roles.proxy.allow"},
		{"exec outside", "proxy", "POST", "/containers/web/exec", `{"Cmd":["sh"]}`, false, "roles.proxy.allow"},
		{"allow adds", "runner", "POST", "/build", "", true, "roles.runner.allow[0] image.build"},
		{"role settings apply", "runner", "POST", "/containers/create", `{"Image":"x","HostConfig":{"Privileged":true}}`, true, "roles.runner.preset gitlab-runner"},
		{"guardrails stay", "runner", "POST", "/containers/create", `{"Image":"x","HostConfig":{"CapAdd":["SYS_ADMIN"]}}`, false, "roles.runner.containers.capabilities"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "proxy", tc.role, tc.method, tc.target, tc.body)
			if got := d.Effect == Allow; got != tc.allow {
				t.Fatalf("allowed = %v, want %v (%s: %s)", got, tc.allow, d.Rule, d.Reason)
			}
			if d.Rule != tc.rule {
				t.Errorf("rule = %q, want %q", d.Rule, tc.rule)
			}
		})
	}
	d := decide(t, p, "proxy", "proxy", "POST", "/containers/create", `{"Image":"x"}`)
	want := "dockgate: denied container.create for proxy (role proxy): container.create is not allowed; allow it by adding container.create to roles.proxy.allow"
	if got := d.message(); got != want {
		t.Errorf("message:\n got %s\nwant %s", got, want)
	}
}

func TestPresetReadOnlyRedactsEnv(t *testing.T) {
	p := mustPolicy(t, presetRoleConfig(""))
	for _, name := range config.Presets {
		if !p.roles[name].redactEnv {
			t.Errorf("role %s with preset %s shows environment values", name, name)
		}
	}
}
