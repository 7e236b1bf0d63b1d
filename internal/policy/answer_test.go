package policy

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// redactConfig gives every role a client: the built-in ones, a role of
// our own with redact_env unset, one with it false, and one in audit mode
// that forwards what it would deny.
const redactConfig = `
roles:
  viewer:
    allow: ["*.inspect", "*.list"]
  debug:
    allow: ["*.inspect", "*.list"]
    containers:
      redact_env: false
  redacting:
    allow: ["*.inspect"]
    containers:
      redact_env: true
  watcher:
    allow: [image.list]
    mode: audit
clients:
  - group: admin
    role: admin
  - group: read-only
    role: read-only
  - group: operator
    role: operator
  - group: deployer
    role: deployer
  - group: viewer
    role: viewer
  - group: debug
    role: debug
  - group: redacting
    role: redacting
  - group: watcher
    role: watcher
`

// TestRedactionDecision: which answers have their environment values
// replaced, for whom.
func TestRedactionDecision(t *testing.T) {
	p := mustPolicy(t, redactConfig)
	container := Redaction{Paths: [][]string{{"Config", "Env"}}}
	tests := []struct {
		group, method, path string
		want                Redaction
	}{
		{"read-only", "GET", "/v1.47/containers/web/json", container},
		{"read-only", "GET", "/containers/web/json?size=1", container},
		{"operator", "GET", "/containers/web/json", container},
		{"deployer", "GET", "/containers/web/json", container},
		{"viewer", "GET", "/containers/web/json", container},
		{"redacting", "GET", "/containers/web/json", container},
		{"watcher", "GET", "/containers/web/json", container}, // would deny, forwarded: redacted all the same
		{"admin", "GET", "/containers/web/json", Redaction{}},
		{"debug", "GET", "/containers/web/json", Redaction{}},

		{"read-only", "GET", "/services", Redaction{List: true, Paths: serviceEnvPaths}},
		{"read-only", "GET", "/services/web", Redaction{Paths: serviceEnvPaths}},
		{"read-only", "GET", "/tasks", Redaction{List: true, Paths: taskSpecEnvPaths}},
		{"read-only", "GET", "/tasks/t1", Redaction{Paths: taskSpecEnvPaths}},
		{"read-only", "GET", "/plugins", Redaction{List: true, Paths: pluginEnvPaths}},
		{"read-only", "GET", "/plugins/p/json", Redaction{Paths: pluginEnvPaths}},

		// Answers without environment values.
		{"read-only", "GET", "/containers/json", Redaction{}},
		{"read-only", "GET", "/exec/e1/json", Redaction{}},
		{"read-only", "GET", "/images/alpine/json", Redaction{}},
		{"read-only", "GET", "/system/df", Redaction{}},
		{"operator", "GET", "/containers/web/logs?stdout=1", Redaction{}},
		// A denied request is answered by the gateway: nothing to redact.
		{"read-only", "POST", "/containers/web/stop", Redaction{}},
	}
	for _, tt := range tests {
		t.Run(tt.group+" "+tt.method+" "+tt.path, func(t *testing.T) {
			path, query, _ := strings.Cut(tt.path, "?")
			in := Input{Identity: identity.Identity{CN: "u", Groups: []string{tt.group}}, Method: tt.method, Path: path, RawQuery: query}
			v := p.Evaluate(context.Background(), in, &fakeDaemon{})
			if v.Redact.List != tt.want.List || !slices.EqualFunc(v.Redact.Paths, tt.want.Paths, slices.Equal) {
				t.Errorf("Redact = %+v, want %+v (verdict %v %s)", v.Redact, tt.want, v.Effect, v.Message)
			}
			if v.Redact.Env() != (len(tt.want.Paths) > 0) {
				t.Errorf("Env() = %v", v.Redact.Env())
			}
		})
	}
}

// Every operation whose answer is redacted is one a read-only client may
// perform, and the table names real paths.
func TestEnvAnswersAreReads(t *testing.T) {
	ro, _ := builtinSet("read-only")
	for op, r := range envAnswers {
		if !ro.Has(op) {
			t.Errorf("%s: redacted but not a read", op)
		}
		if op.Body() != dockerapi.BodyNone || len(r.Paths) == 0 {
			t.Errorf("%s: %+v", op, r)
		}
		for _, path := range r.Paths {
			if !strings.EqualFold(path[len(path)-1], "Env") {
				t.Errorf("%s: path %v does not end at an Env", op, path)
			}
		}
	}
}

// A service spec read redacted and sent back (the docker CLI's service
// update reads, changes and sends the whole spec) would replace every
// secret with the marker: it is refused, whatever the role, but admin,
// who never reads it redacted.
func TestServiceSpecWithTheMarkerIsRefused(t *testing.T) {
	p := mustPolicy(t, testConfig)
	spec := func(env string) string {
		return `{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"x","Env":` + env + `}}}`
	}
	redacted := spec(`["PATH=/bin","TOKEN=` + EnvMarker + `"]`)
	for _, target := range []string{"/services/create", "/services/web/update?version=3"} {
		for _, role := range []string{"ci", "loose"} {
			d := decide(t, p, "ci-7", role, "POST", target, redacted)
			if d.Effect != Deny || d.Status != http.StatusBadRequest || d.Field != "TaskTemplate.ContainerSpec.Env[1]" ||
				!strings.Contains(d.Fix, "containers.redact_env: false") {
				t.Errorf("%s %s: %v %d field %q fix %q, want a 400 on Env[1]", role, target, d.Effect, d.Status, d.Field, d.Fix)
			}
		}
		if d := decide(t, p, "root", "admin", "POST", target, redacted); d.Effect != Allow {
			t.Errorf("admin %s: %v %s", target, d.Effect, d.Reason)
		}
		for _, env := range []string{`["TOKEN=abc"]`, `["TOKEN"]`, `["TOKEN=<redacted>"]`, `null`} {
			if d := decide(t, p, "ci-7", "ci", "POST", target, spec(env)); d.Effect != Allow {
				t.Errorf("ci %s with Env %s: %v %s", target, env, d.Effect, d.Reason)
			}
		}
	}
	plugin := `{"Name":"p","TaskTemplate":{"Runtime":"plugin","PluginSpec":{"name":"p","env":["KEY=` + EnvMarker + `"]}}}`
	if d := decide(t, p, "ci-7", "loose", "POST", "/services/create", plugin); d.Effect != Deny || d.Field != "TaskTemplate.PluginSpec.env[0]" {
		t.Errorf("plugin spec: %v field %q", d.Effect, d.Field)
	}
}
