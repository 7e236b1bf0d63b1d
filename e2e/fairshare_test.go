package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fairShareConfig gives clients "ci-*" a role whose clients may hold 6
// connections and 6 requests each: small, so that a test reaches them.
const fairShareConfig = `
limits:
  max_connections: 64
roles:
  ci:
    allow: [container.*, system.ping, system.version]
    limits: {connections: 6, requests: 6}
clients:
  - cn: "ci-*"
    role: ci
  - group: admins
    role: admin
`

// One client holding its cap of long-poll waits, and trying for more,
// does not keep another client of the same role from working.
func TestClientAtItsCapDoesNotStarveAnother(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(fairShareConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &policyEnv{gatewayEnv: startGatewayEnv(t, "--config", cfgPath), certs: map[string]string{}}
	p.daemon = newDaemonAPI(p.d.Host())
	for _, name := range []string{"ci-a", "ci-b"} {
		p.certs[name] = filepath.Join(dir, "certs", name)
		p.cli.run("issue", "client", name, "--group", "ci", "--out", p.certs[name])
	}
	id := p.runDetached(p.d.Image(), "sleep", "300")

	// Client a: its cap of waits on the running container, each answered
	// with its head once dockerd has registered the wait...
	wait := httpRequest("POST", "/v1.41/containers/"+id+"/wait", "")
	var held []*rawConn
	for i := range 6 {
		c := p.dialRaw(t, "ci-a")
		c.write(wait)
		c.conn.SetReadDeadline(time.Now().Add(rawDeadline))
		resp, err := http.ReadResponse(c.br, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("wait %d of client a: %v %v", i, resp, err)
		}
		held = append(held, c)
	}
	// ...and two more, answered 429 naming the key to raise.
	for i := range 2 {
		c := p.dialRaw(t, "ci-a")
		c.write(wait)
		r, err := c.read()
		if err != nil {
			t.Fatalf("extra wait %d: %v", i, err)
		}
		if r.Status != http.StatusTooManyRequests || !r.says("roles.ci.limits.connections") {
			t.Errorf("extra wait %d of client a: %s, want 429 naming roles.ci.limits.connections", i, r)
		}
	}
	// What the docker CLI shows client a at its cap.
	_, errOut, err := p.dockerWithin(t, time.Minute, "ci-a", "ps")
	if err == nil || !strings.Contains(errOut, "roles.ci.limits.connections") {
		t.Errorf("docker ps as client a at its cap: err=%v, stderr %q; want a failure naming roles.ci.limits.connections", err, errOut)
	}
	t.Logf("docker ps as a client at its cap: %s", strings.TrimSpace(errOut))

	// Client b: docker ps and docker run work.
	if out := p.mustDockerAs(t, "ci-b", "ps", "-q", "--no-trunc"); !strings.Contains(out, id) {
		t.Errorf("docker ps as client b does not list %s:\n%s", id, out)
	}
	if out := p.mustDockerAs(t, "ci-b", "run", "--rm", "--network", "none", p.d.Image(), "echo", "fair share"); out != "fair share" {
		t.Errorf("docker run as client b printed %q, want %q", out, "fair share")
	}
	// The daemon still runs the container a waits on: nothing was cut.
	if c := p.daemon.mustContainer(t, id); !c.State.Running {
		t.Errorf("container %s is not running any more: %+v", id, c.State)
	}
	resp, err := http.Get("http://" + p.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`dockgate_client_limited_total{limit="connections",role="ci"}`, `dockgate_client_in_use{limit="requests",role="ci"} 6`} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Client a lets go: it may connect again.
	for _, c := range held {
		c.conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, errOut, err := p.dockerWithin(t, time.Minute, "ci-a", "ps")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client a still refused after closing its waits: %s", errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
