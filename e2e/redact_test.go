package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// redactConfig: admin, a read-only client (environment values redacted
// by default) and a role of our own that shows them.
const redactConfig = `
roles:
  debug:
    allow: [container.inspect, container.list]
    containers:
      redact_env: false
clients:
  - group: admins
    role: admin
  - group: readers
    role: read-only
  - group: debuggers
    role: debug
`

// redactedEnv is what a redacting role's client reads of the variable.
const redactedEnv = "DB_PASSWORD=<redacted by dockgate>"

// TestInspectRedactsEnvironmentValues: a container created with a secret
// in its environment; through the gateway a read-only client's docker
// inspect shows the variable's name and never its value, while admin and
// a role with redact_env: false read it as the daemon has it.
func TestInspectRedactsEnvironmentValues(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(redactConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	certs := map[string]string{"admin": g.certDir}
	for name, group := range map[string]string{"reader": "readers", "debugger": "debuggers"} {
		certs[name] = filepath.Join(dir, "certs", name)
		g.cli.run("issue", "client", name, "--group", group, "--out", certs[name])
	}
	daemon := newDaemonAPI(g.d.Host())

	name := "redact-" + newMarker()
	id := strings.TrimSpace(g.docker("create", "--network", "none", "--name", name,
		"-e", "DB_PASSWORD=hunter2", "-e", "EMPTY=", g.d.Image(), "sleep", "300"))
	t.Cleanup(func() { daemon.removeContainer(t, id) })

	// The daemon has the secret: what the gateway hides is really there.
	var truth struct{ Config struct{ Env []string } }
	daemon.getJSON(t, "/containers/"+id+"/json", &truth)
	if !slices.Contains(truth.Config.Env, "DB_PASSWORD=hunter2") {
		t.Fatalf("the daemon's Config.Env = %q, want DB_PASSWORD=hunter2 in it", truth.Config.Env)
	}

	docker := func(client string, args ...string) string {
		t.Helper()
		out, errOut, err := g.dockerAs(certs[client], nil, args...)
		if err != nil {
			t.Fatalf("docker %s as %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), client, err, out, errOut)
		}
		return out
	}
	envOf := func(client string) []string {
		t.Helper()
		var env []string
		out := docker(client, "inspect", "--format", "{{json .Config.Env}}", name)
		if err := json.Unmarshal([]byte(out), &env); err != nil {
			t.Fatalf("docker inspect --format as %s: %v\n%s", client, err, out)
		}
		return env
	}

	t.Run("read-only: docker inspect", func(t *testing.T) {
		out := docker("reader", "inspect", name)
		if strings.Contains(out, "hunter2") {
			t.Fatalf("docker inspect shows the value:\n%s", out)
		}
		var inspected []struct {
			ID     string `json:"Id"`
			Config struct{ Env []string }
		}
		if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 1 {
			t.Fatalf("docker inspect output: %v\n%s", err, out)
		}
		env := inspected[0].Config.Env
		if inspected[0].ID != id || !slices.Contains(env, redactedEnv) || !slices.Contains(env, "EMPTY=<redacted by dockgate>") {
			t.Errorf("Config.Env = %q, want %q and EMPTY redacted", env, redactedEnv)
		}
		if len(env) != len(truth.Config.Env) {
			t.Errorf("Config.Env has %d entries, the daemon's %d: %q", len(env), len(truth.Config.Env), env)
		}
	})
	t.Run("read-only: docker inspect --format json .Config.Env", func(t *testing.T) {
		env := envOf("reader")
		if !slices.Contains(env, redactedEnv) || strings.Contains(strings.Join(env, " "), "hunter2") {
			t.Errorf("Config.Env = %q, want %q and no value", env, redactedEnv)
		}
	})
	t.Run("read-only: docker container ls --no-trunc", func(t *testing.T) {
		out := docker("reader", "container", "ls", "--all", "--no-trunc")
		if !strings.Contains(out, id) || strings.Contains(out, "hunter2") {
			t.Errorf("docker container ls --all --no-trunc, want %s listed and no value:\n%s", id, out)
		}
	})
	t.Run("read-only: the answer's length is the redacted body's", func(t *testing.T) {
		p := &policyEnv{gatewayEnv: g, certs: certs}
		r := p.call(t, "reader", http.MethodGet, "/containers/"+name+"/json", "")
		if r.Status != http.StatusOK || r.Header.Get("Content-Length") != strconv.Itoa(len(r.Body)) || !strings.Contains(r.Body, `"`+redactedEnv+`"`) {
			t.Errorf("answer %d, Content-Length %s, body %d bytes:\n%s", r.Status, r.Header.Get("Content-Length"), len(r.Body), r.Body)
		}
	})
	t.Run("read-only: an Upgrade header changes nothing", func(t *testing.T) {
		p := &policyEnv{gatewayEnv: g, certs: certs}
		c := p.gatewayHTTP(t, "reader")
		defer c.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodGet, "https://"+g.addr+"/containers/"+name+"/json", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "tcp")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "hunter2") || !strings.Contains(string(body), redactedEnv) {
			t.Errorf("answer %d:\n%s", resp.StatusCode, body)
		}
	})
	t.Run("admin reads the value", func(t *testing.T) {
		if env := envOf("admin"); !slices.Contains(env, "DB_PASSWORD=hunter2") {
			t.Errorf("Config.Env = %q, want DB_PASSWORD=hunter2", env)
		}
	})
	t.Run("redact_env: false reads the value", func(t *testing.T) {
		if env := envOf("debugger"); !slices.Contains(env, "DB_PASSWORD=hunter2") {
			t.Errorf("Config.Env = %q, want DB_PASSWORD=hunter2", env)
		}
	})
}
