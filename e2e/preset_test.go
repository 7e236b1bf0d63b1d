package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

// presetClient is the CN of the client whose role uses preset name.
func presetClient(name string) string { return "preset-" + name }

// startPresetEnv is a gateway with one role per preset, called after it,
// and a client certificate for each.
func startPresetEnv(t *testing.T) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "audit:\n  path: %s\nroles:\n", filepath.Join(dir, "audit.jsonl"))
	for _, name := range config.Presets {
		fmt.Fprintf(&cfg, "  %s:\n    preset: %s\n", name, name)
	}
	cfg.WriteString("clients:\n")
	for _, name := range config.Presets {
		fmt.Fprintf(&cfg, "  - cn: %s\n    role: %s\n", presetClient(name), name)
	}
	cfg.WriteString("  - group: admins\n    role: admin\n")
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	p := &policyEnv{gatewayEnv: g, auditPath: filepath.Join(dir, "audit.jsonl"),
		certs: map[string]string{"admin": g.certDir}, daemon: newDaemonAPI(g.d.Host())}
	for _, name := range config.Presets {
		certDir := filepath.Join(dir, "certs", name)
		g.cli.run("issue", "client", presetClient(name), "--out", certDir)
		p.certs[presetClient(name)] = certDir
	}
	return p
}

// run creates and starts a `sleep 300` container on the daemon
// itself, removed when t ends, and returns its ID.
func (a *daemonAPI) run(t *testing.T, image, name, network string) string {
	t.Helper()
	body := `{"Image":"` + image + `","Cmd":["sleep","300"],"Env":["DB_PASSWORD=hunter2"],"HostConfig":{"NetworkMode":"` + network + `"}}`
	status, answer := a.do(t, http.MethodPost, "/containers/create?name="+name, []byte(body))
	var c struct {
		ID string `json:"Id"`
	}
	if status != http.StatusCreated || json.Unmarshal(answer, &c) != nil {
		t.Fatalf("daemon create %s: %d %s", name, status, answer)
	}
	t.Cleanup(func() { a.removeContainer(t, c.ID) })
	if status, answer := a.do(t, http.MethodPost, "/containers/"+c.ID+"/start", nil); status != http.StatusNoContent {
		t.Fatalf("daemon start %s: %d %s", name, status, answer)
	}
	return c.ID
}

// startedAt is when the daemon last started a container.
func (a *daemonAPI) startedAt(t *testing.T, ref string) string {
	t.Helper()
	var c struct{ State struct{ StartedAt string } }
	a.getJSON(t, "/containers/"+url.PathEscape(ref)+"/json", &c)
	return c.State.StartedAt
}

func (a *daemonAPI) running(t *testing.T, ref string) bool {
	t.Helper()
	var c struct{ State struct{ Running bool } }
	a.getJSON(t, "/containers/"+url.PathEscape(ref)+"/json", &c)
	return c.State.Running
}

func (a *daemonAPI) execIDs(t *testing.T, ref string) int {
	t.Helper()
	return len(a.mustContainer(t, ref).ExecIDs)
}

// step is one call of a tool's replay: what it sends and the status the
// daemon answers it with through the gateway.
type step struct {
	method, target, body string
	want                 int
}

// replay sends each step through the gateway as client and fails t on
// any other answer. It returns the answers' bodies.
func (p *policyEnv) replay(t *testing.T, client string, steps []step) []string {
	t.Helper()
	var bodies []string
	for _, s := range steps {
		r := p.call(t, client, s.method, s.target, s.body)
		if r.Status != s.want {
			t.Errorf("%s %s as %s: %d %s, want %d", s.method, s.target, client, r.Status, strings.TrimSpace(r.Body), s.want)
		}
		bodies = append(bodies, r.Body)
	}
	return bodies
}

// refused sends one call as client and fails t unless the gateway
// refused it; whether the daemon acted is the caller's to check.
func (p *policyEnv) refused(t *testing.T, client, method, target, body string) {
	t.Helper()
	r := p.call(t, client, method, target, body)
	if r.Status != http.StatusForbidden || !strings.Contains(r.Message, "dockgate: denied") {
		t.Errorf("%s %s as %s: %d %s, want the gateway's 403", method, target, client, r.Status, strings.TrimSpace(r.Body))
	}
}

// boundedEvents is an events query that ends: the last minute.
func boundedEvents(filters string) string {
	now := time.Now().Unix()
	q := url.Values{"since": {strconv.FormatInt(now-60, 10)}, "until": {strconv.FormatInt(now, 10)}}
	if filters != "" {
		q.Set("filters", filters)
	}
	return "/events?" + q.Encode()
}

func esc(s string) string { return url.QueryEscape(s) }

// TestPresetsReplayTheirToolsCalls sends each preset's calls, as its
// tool sends them, through the gateway with a certificate whose role
// uses the preset, and a few calls the tool does not make, which must be
// refused: judged by the daemon's own state where the call would have
// changed something.
func TestPresetsReplayTheirToolsCalls(t *testing.T) {
	p := startPresetEnv(t)
	a := p.daemon
	web := a.run(t, p.d.Image(), "preset-web", "none")
	marker := newMarker()
	createMarked := createBody(p.d.Image(), marker, `,"HostConfig":{"NetworkMode":"none"}`)

	for _, name := range []string{"traefik", "dozzle", "homepage", "uptime-kuma"} {
		t.Run(name+" reads", func(t *testing.T) {
			c := presetClient(name)
			steps := map[string][]step{
				"traefik": {{"HEAD", "/_ping", "", 200}, {"GET", "/v1.41/version", "", 200}, {"GET", "/v1.41/containers/json", "", 200},
					{"GET", "/v1.41/containers/" + web + "/json", "", 200}, {"GET", boundedEvents(`{"type":["container"]}`), "", 200}},
				"dozzle": {{"GET", "/_ping", "", 200}, {"GET", "/info", "", 200}, {"GET", "/version", "", 200}, {"GET", "/containers/json?all=1", "", 200},
					{"GET", "/containers/" + web + "/json", "", 200}, {"GET", "/containers/" + web + "/logs?stdout=1&stderr=1&timestamps=1", "", 200},
					{"GET", "/containers/" + web + "/stats?stream=0", "", 200}, {"GET", boundedEvents(""), "", 200}},
				"homepage": {{"GET", "/containers/json?all=1&filters=" + esc(`{"name":["preset-web"]}`), "", 200},
					{"GET", "/containers/preset-web/json", "", 200}, {"GET", "/containers/preset-web/stats?stream=false", "", 200}},
				"uptime-kuma": {{"GET", "/containers/json?all=true", "", 200}, {"GET", "/containers/preset-web/json", "", 200}},
			}[name]
			bodies := p.replay(t, c, steps)
			for i, s := range steps {
				if s.target == "/containers/preset-web/json" || strings.HasSuffix(s.target, web+"/json") {
					if !strings.Contains(bodies[i], "<redacted by dockgate>") {
						t.Errorf("%s as %s: the environment values are not redacted", s.target, c)
					}
				}
			}

			started := a.startedAt(t, web)
			p.refused(t, c, "POST", "/containers/create", createMarked)
			p.refused(t, c, "POST", "/containers/"+web+"/exec", `{"Cmd":["true"]}`)
			p.refused(t, c, "POST", "/containers/"+web+"/restart?t=0", "")
			p.refused(t, c, "DELETE", "/containers/"+web+"?force=1", "")
			if got := a.containersLabelled(t, markerLabel+"="+marker); len(got) != 0 {
				t.Errorf("THE DAEMON ACTED: %d containers of the refused create", len(got))
			}
			if n := a.execIDs(t, web); n != 0 {
				t.Errorf("THE DAEMON ACTED: %d execs in %s", n, web)
			}
			if got := a.startedAt(t, web); got != started || !a.running(t, web) {
				t.Errorf("THE DAEMON ACTED: %s started at %s (was %s), running %v", web, got, started, a.running(t, web))
			}
		})
	}

	t.Run("autoheal", func(t *testing.T) {
		c := presetClient("autoheal")
		sick := a.run(t, p.d.Image(), "preset-sick", "none")
		before := a.startedAt(t, sick)
		p.replay(t, c, []step{
			{"GET", "/containers/json?filters=" + esc(`{"health":["unhealthy"]}`), "", 200},
			{"POST", "/containers/" + sick + "/restart?t=0", "", 204},
		})
		if a.startedAt(t, sick) == before {
			t.Errorf("the allowed restart did not restart %s", sick)
		}
		p.refused(t, c, "POST", "/containers/"+web+"/stop?t=0", "")
		p.refused(t, c, "POST", "/containers/"+web+"/exec", `{"Cmd":["true"]}`)
		if !a.running(t, web) || a.execIDs(t, web) != 0 {
			t.Errorf("THE DAEMON ACTED on %s", web)
		}
	})

	t.Run("watchtower", func(t *testing.T) {
		c := presetClient("watchtower")
		net := "preset-wt-" + marker
		if status, body := a.do(t, "POST", "/networks/create", []byte(`{"Name":"`+net+`","Internal":true}`)); status != http.StatusCreated {
			t.Fatalf("daemon network create: %d %s", status, body)
		}
		t.Cleanup(func() { a.do(t, "DELETE", "/networks/"+net, nil) })
		old := a.run(t, p.d.Image(), "preset-wt-app", net)
		tag := "preset-wt-old:" + marker
		repo, version, _ := strings.Cut(tag, ":")
		if status, body := a.do(t, "POST", "/images/"+p.d.Image()+"/tag?repo="+repo+"&tag="+version, nil); status != http.StatusCreated {
			t.Fatalf("daemon tag: %d %s", status, body)
		}
		v := "/v1.25"
		p.replay(t, c, []step{
			{"GET", v + "/containers/json?filters=" + esc(`{"status":["running"]}`), "", 200},
			{"GET", v + "/containers/" + old + "/json", "", 200},
			{"GET", v + "/images/" + p.d.Image() + "/json", "", 200},
			{"POST", v + "/containers/" + old + "/kill?signal=SIGTERM", "", 204},
			{"DELETE", v + "/containers/" + old + "?force=1", "", 204},
			{"POST", v + "/containers/create?name=preset-wt-app", `{"Image":"` + p.d.Image() + `","Cmd":["sleep","300"],"Labels":{"` + markerLabel + `":"` + marker + `"},"HostConfig":{"NetworkMode":"` + net + `"}}`, 201},
		})
		fresh := a.mustContainer(t, "preset-wt-app")
		t.Cleanup(func() { a.removeContainer(t, fresh.ID) })
		p.replay(t, c, []step{
			{"POST", v + "/networks/" + net + "/disconnect", `{"Container":"` + fresh.ID + `","Force":true}`, 200},
			{"POST", v + "/networks/" + net + "/connect", `{"Container":"` + fresh.ID + `"}`, 200},
			{"POST", v + "/containers/" + fresh.ID + "/start", "", 204},
			{"POST", v + "/containers/" + fresh.ID + "/rename?name=preset-wt-app-" + marker, "", 204},
			{"DELETE", v + "/images/" + tag, "", 200},
		})
		if !a.running(t, fresh.ID) {
			t.Errorf("the replayed update did not leave %s running", fresh.ID)
		}
		if status, _ := a.do(t, "GET", "/images/"+tag+"/json", nil); status != http.StatusNotFound {
			t.Errorf("the replayed cleanup left %s: %d", tag, status)
		}
		priv := newMarker()
		p.refused(t, c, "POST", v+"/containers/create", createBody(p.d.Image(), priv, `,"HostConfig":{"NetworkMode":"none","Privileged":true}`))
		p.refused(t, c, "POST", v+"/containers/"+fresh.ID+"/exec", `{"Cmd":["true"]}`)
		if len(a.containersLabelled(t, markerLabel+"="+priv)) != 0 || a.execIDs(t, fresh.ID) != 0 {
			t.Errorf("THE DAEMON ACTED on a refused call")
		}
	})

	t.Run("gitlab-runner", func(t *testing.T) {
		c := presetClient("gitlab-runner")
		vol, net, name := "preset-gl-cache-"+marker, "preset-gl-"+marker, "preset-gl-build-"+marker
		p.replay(t, c, []step{
			{"GET", "/_ping", "", 200},
			{"GET", "/info", "", 200},
			{"GET", "/images/" + p.d.Image() + "/json", "", 200},
			{"POST", "/volumes/create", `{"Name":"` + vol + `"}`, 201},
			{"GET", "/volumes/" + vol, "", 200},
			{"POST", "/networks/create", `{"Name":"` + net + `","Internal":true}`, 201},
			{"GET", "/networks?filters=" + esc(`{"name":["`+net+`"]}`), "", 200},
			{"GET", "/networks/" + net, "", 200},
			{"POST", "/containers/create?name=" + name, `{"Image":"` + p.d.Image() + `","Cmd":["sleep","300"],"HostConfig":{"NetworkMode":"` + net + `","Binds":["` + vol + `:/cache"]}}`, 201},
		})
		t.Cleanup(func() {
			a.removeContainer(t, name)
			a.do(t, "DELETE", "/volumes/"+vol, nil)
			a.do(t, "DELETE", "/networks/"+net, nil)
		})
		bodies := p.replay(t, c, []step{
			{"POST", "/containers/" + name + "/start", "", 204},
			{"GET", "/containers/json?filters=" + esc(`{"name":["`+name+`"]}`), "", 200},
			{"GET", "/containers/" + name + "/json", "", 200},
			{"POST", "/containers/" + name + "/exec", `{"Cmd":["true"]}`, 201},
		})
		var exec struct {
			ID string `json:"Id"`
		}
		if err := json.Unmarshal([]byte(bodies[len(bodies)-1]), &exec); err != nil {
			t.Fatalf("exec create answer %q: %v", bodies[len(bodies)-1], err)
		}
		p.replay(t, c, []step{
			{"POST", "/exec/" + exec.ID + "/start", `{"Detach":true}`, 200},
			{"GET", "/containers/" + name + "/logs?stdout=1&stderr=1", "", 200},
			{"POST", "/containers/" + name + "/stop?t=0", "", 204},
			{"POST", "/containers/" + name + "/wait", "", 200},
			{"POST", "/networks/" + net + "/disconnect", `{"Container":"` + name + `","Force":true}`, 200},
			{"DELETE", "/containers/" + name + "?v=1&force=1", "", 204},
			{"DELETE", "/networks/" + net, "", 204},
			{"DELETE", "/volumes/" + vol, "", 204},
		})
		if _, ok := a.container(t, name); ok {
			t.Errorf("the replayed job left %s", name)
		}
		priv := newMarker()
		p.refused(t, c, "POST", "/containers/create", createBody(p.d.Image(), priv, `,"HostConfig":{"NetworkMode":"none","Privileged":true}`))
		p.refused(t, c, "POST", "/images/"+p.d.Image()+"/tag?repo=preset-gl-tag&tag="+priv, "")
		if len(a.containersLabelled(t, markerLabel+"="+priv)) != 0 {
			t.Errorf("THE DAEMON ACTED: a privileged container exists")
		}
		if status, _ := a.do(t, "GET", "/images/preset-gl-tag:"+priv+"/json", nil); status != http.StatusNotFound {
			t.Errorf("THE DAEMON ACTED: the refused tag exists (%d)", status)
		}
	})

	t.Run("docker-compose", func(t *testing.T) {
		c := presetClient("docker-compose")
		project := "preset-" + marker
		label := `"com.docker.compose.project":"` + project + `"`
		vol, net, name := project+"_data", project+"_default", project+"-app-1"
		var tarball bytes.Buffer
		tw := tar.NewWriter(&tarball)
		tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2})
		tw.Write([]byte("hi"))
		tw.Close()
		p.replay(t, c, []step{
			{"HEAD", "/_ping", "", 200},
			{"GET", "/info", "", 200},
			{"GET", "/containers/json?all=1&filters=" + esc(`{"label":["com.docker.compose.project=`+project+`"]}`), "", 200},
			{"GET", "/networks?filters=" + esc(`{"label":["com.docker.compose.project=`+project+`"]}`), "", 200},
			{"GET", "/volumes?filters=" + esc(`{"label":["com.docker.compose.project=`+project+`"]}`), "", 200},
			{"GET", "/images/json", "", 200},
			{"GET", "/images/" + p.d.Image() + "/json", "", 200},
			{"POST", "/networks/create", `{"Name":"` + net + `","Internal":true,"Labels":{` + label + `}}`, 201},
			{"GET", "/networks/" + net, "", 200},
			{"POST", "/volumes/create", `{"Name":"` + vol + `","Labels":{` + label + `}}`, 201},
			{"GET", "/volumes/" + vol, "", 200},
			{"POST", "/containers/create?name=" + name, `{"Image":"` + p.d.Image() + `","Cmd":["sleep","300"],"Labels":{` + label + `},"HostConfig":{"NetworkMode":"` + net + `","Binds":["` + vol + `:/data"]}}`, 201},
		})
		t.Cleanup(func() {
			a.removeContainer(t, name)
			a.do(t, "DELETE", "/volumes/"+vol, nil)
			a.do(t, "DELETE", "/networks/"+net, nil)
		})
		p.replay(t, c, []step{
			{"POST", "/containers/" + name + "/start", "", 204},
			{"GET", "/containers/" + name + "/json", "", 200},
			{"GET", "/containers/" + name + "/logs?stdout=1", "", 200},
			{"GET", "/containers/" + name + "/top", "", 200},
			{"GET", "/containers/" + name + "/stats?stream=0", "", 200},
			{"PUT", "/containers/" + name + "/archive?path=/tmp", tarball.String(), 200},
			{"HEAD", "/containers/" + name + "/archive?path=/tmp/hello.txt", "", 200},
			{"GET", "/containers/" + name + "/archive?path=/tmp/hello.txt", "", 200},
			{"POST", "/containers/" + name + "/pause", "", 204},
			{"POST", "/containers/" + name + "/unpause", "", 204},
			{"POST", "/containers/" + name + "/restart?t=0", "", 204},
			{"POST", "/containers/" + name + "/kill", "", 204},
			{"POST", "/containers/" + name + "/wait", "", 200},
			{"GET", boundedEvents(`{"label":["com.docker.compose.project=` + project + `"]}`), "", 200},
		})
		p.refused(t, c, "POST", "/commit?container="+name+"&repo=preset-commit&tag="+marker, "")
		p.refused(t, c, "POST", "/containers/create", createBody(p.d.Image(), marker+"c", `,"HostConfig":{"NetworkMode":"none","Privileged":true}`))
		if status, _ := a.do(t, "GET", "/images/preset-commit:"+marker+"/json", nil); status != http.StatusNotFound {
			t.Errorf("THE DAEMON ACTED: the refused commit made an image (%d)", status)
		}
		if len(a.containersLabelled(t, markerLabel+"="+marker+"c")) != 0 {
			t.Errorf("THE DAEMON ACTED: a privileged container exists")
		}
		p.replay(t, c, []step{
			{"DELETE", "/containers/" + name + "?v=1", "", 204},
			{"DELETE", "/networks/" + net, "", 204},
			{"DELETE", "/volumes/" + vol, "", 204},
		})
		if _, ok := a.container(t, name); ok {
			t.Errorf("the replayed down left %s", name)
		}
	})
}

// TestPresetGitHubActionsRunnerDockerCLI runs the docker commands the
// GitHub Actions runner runs for a container job with a service and a
// container action (src/Runner.Worker/Container/DockerCommandManager.cs),
// with the docker CLI, as a client whose role has the preset.
func TestPresetGitHubActionsRunnerDockerCLI(t *testing.T) {
	p := startPresetEnv(t)
	a := p.daemon
	c := presetClient("github-actions-runner")
	marker := newMarker()
	label := "dockgate.e2e.runner=" + marker
	net, job := "github_network_"+marker, "job-"+marker
	must := func(args ...string) string {
		t.Helper()
		return p.mustDockerAs(t, c, args...)
	}
	if v := must("version", "--format", "{{.Server.APIVersion}}"); v == "" {
		t.Error("docker version gave no server API version")
	}
	must("network", "create", "--internal", "--label", label, net)
	t.Cleanup(func() { a.do(t, "DELETE", "/networks/"+net, nil) })
	id := must("create", "--name", job, "--label", label, "--network", net, "-e", "GITHUB_ACTIONS=true", p.d.Image(), "sleep", "300")
	t.Cleanup(func() { a.removeContainer(t, id) })
	must("start", id)
	if out := must("ps", "--all", "--filter", "id="+id, "--filter", "status=running", "--no-trunc", "--format", "{{.ID}} {{.Status}}"); !strings.HasPrefix(out, id) {
		t.Errorf("docker ps = %q, want the job container", out)
	}
	must("port", id)
	if env := must("inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", id); !strings.Contains(env, "GITHUB_ACTIONS=<redacted by dockgate>") {
		t.Errorf("docker inspect's environment = %q, want it redacted", env)
	}
	must("exec", "-i", id, "sh", "-c", "true")
	must("logs", "--details", id)
	must("run", "--rm", "--network", "none", "--label", label, p.d.Image(), "true")
	must("rm", "--force", id)
	must("network", "rm", net)
	must("network", "prune", "--force", "--filter", "label="+label)
	if _, ok := a.container(t, id); ok {
		t.Errorf("docker rm --force left %s", id)
	}

	// The docker CLI tolerates some refused calls (network rm inspects the
	// network first): the audit log says whether the preset refused any.
	p.waitQuietAudit(t)
	for _, l := range p.auditLines(t) {
		if l.Decision != "allow" {
			t.Errorf("the runner's commands made a call the preset refuses: %s", l)
		}
	}
	other := a.run(t, p.d.Image(), "preset-gh-other-"+marker, "none")
	if _, stderr, err := p.dockerAsClient(c, "kill", other); err == nil || !strings.Contains(stderr, "dockgate: denied container.kill") {
		t.Errorf("docker kill as %s: %v %s, want the gateway's denial", c, err, stderr)
	}
	if _, stderr, err := p.dockerAsClient(c, "run", "--rm", "--privileged", "--network", "none", "--label", markerLabel+"="+marker, p.d.Image(), "true"); err == nil || !strings.Contains(stderr, "Privileged is not allowed") {
		t.Errorf("docker run --privileged as %s: %v %s, want the gateway's denial", c, err, stderr)
	}
	if !a.running(t, other) {
		t.Errorf("THE DAEMON ACTED: %s was killed", other)
	}
	if got := a.containersLabelled(t, markerLabel+"="+marker); len(got) != 0 {
		t.Errorf("THE DAEMON ACTED: %d privileged containers", len(got))
	}
}

// TestPresetTraefikOnTheLocalSocket is docs/PRESETS.md's Traefik setup: a
// local socket, a unix_group: rule giving the socket's group a role with
// the traefik preset, and a user of that group (as Traefik's container
// user would be) running what Traefik's provider asks and what it may not.
func TestPresetTraefikOnTheLocalSocket(t *testing.T) {
	suffix := randomSuffix(t)
	group := "dgproxy" + suffix
	addGroup(t, group)
	base, err := os.MkdirTemp("", "dockgate-preset-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &unixEnv{socket: filepath.Join(base, "run", "docker.sock"), group: group}
	traefik := addUser(t, base, "dgtraefik"+suffix, group)
	cfg := fmt.Sprintf(`listen_unix: %s
listen_unix_group: %s
roles:
  proxy:
    preset: traefik
clients:
  - unix_group: %s
    role: proxy
  - group: admins
    role: admin
`, u.socket, group, group)
	cfgPath := filepath.Join(t.TempDir(), "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	u.gatewayEnv = startGatewayEnv(t, "--config", cfgPath)
	a := newDaemonAPI(u.d.Host())
	web := a.run(t, u.d.Image(), "preset-local-web", "none")

	if out := u.mustDockerAsUser(t, traefik, nil, "ps", "--no-trunc", "--format", "{{.ID}}"); !strings.Contains(out, web) {
		t.Errorf("docker ps as %s = %q, want %s", traefik.name, out, web)
	}
	if env := u.mustDockerAsUser(t, traefik, nil, "inspect", "--format", "{{json .Config.Env}}", web); !strings.Contains(env, "DB_PASSWORD=<redacted by dockgate>") {
		t.Errorf("docker inspect as %s shows %s, want the values redacted", traefik.name, env)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	u.mustDockerAsUser(t, traefik, nil, "events", "--since", "0", "--until", now, "--filter", "type=container")

	marker := newMarker()
	for _, args := range [][]string{
		{"run", "-d", "--network", "none", "--label", markerLabel + "=" + marker, u.d.Image(), "sleep", "300"},
		{"exec", web, "true"},
		{"stop", "-t", "0", web},
	} {
		_, stderr, err := u.dockerAsUser(traefik, nil, args...)
		if err == nil || !strings.Contains(stderr, "dockgate: denied") || !strings.Contains(stderr, "(role proxy)") {
			t.Errorf("docker %s as %s: %v %s, want the gateway's denial", strings.Join(args, " "), traefik.name, err, stderr)
		}
	}
	if got := a.containersLabelled(t, markerLabel+"="+marker); len(got) != 0 {
		t.Errorf("THE DAEMON ACTED: %d containers of the refused run", len(got))
	}
	if !a.running(t, web) || a.execIDs(t, web) != 0 {
		t.Errorf("THE DAEMON ACTED on %s", web)
	}
}
