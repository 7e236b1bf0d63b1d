package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reach tests: what a role without owner isolation (so that it sees
// everybody's objects) may do on and through objects an admin made. Every
// refusal is judged by the daemon's own state and the host's files: no
// exec instance, no file written, no container created, nothing removed.

// reachRefused runs docker as client and checks that it failed, with a
// message containing want unless want is "".
func (p *policyEnv) reachRefused(t *testing.T, client, want string, args ...string) {
	t.Helper()
	out, errOut, err := p.dockerAsClient(client, args...)
	if err == nil {
		t.Errorf("docker %s as %s succeeded (%s), want refused", strings.Join(args, " "), client, out)
		return
	}
	if want != "" && !strings.Contains(errOut, want) {
		t.Errorf("docker %s as %s: %s\nwant the refusal to say %q", strings.Join(args, " "), client, errOut, want)
	}
}

// adminVolume creates a volume as admin through the gateway and removes it
// on the daemon when t ends.
func (p *policyEnv) adminVolume(t *testing.T, name string, args ...string) {
	t.Helper()
	p.mustDockerAs(t, "admin", append(append([]string{"volume", "create"}, args...), name)...)
	t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+name+"?force=1", nil) })
}

// tarOf is a tar archive of one file.
func tarOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content))}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// apiAs sends one request (a tar body or none) through the gateway as client
// and returns the answer.
func (p *policyEnv) apiAs(t *testing.T, client, method, path string, body []byte) (int, string) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: p.tlsConfig(t, client)}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, "https://"+p.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	resp, err := (&http.Client{Transport: tr, Timeout: rawDeadline}).Do(req)
	if err != nil {
		t.Fatalf("%s %s as %s: %v", method, path, client, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}

// hasFile reports whether the daemon finds path in a container.
func (p *policyEnv) hasFile(t *testing.T, container, path string) bool {
	t.Helper()
	status, _ := p.daemon.do(t, http.MethodHead, "/containers/"+container+"/archive?path="+url.QueryEscape(path), nil)
	return status == http.StatusOK
}

// assertNoExec checks that the daemon created no exec instance in a
// container.
func (p *policyEnv) assertNoExec(t *testing.T, ref string) {
	t.Helper()
	if c := p.daemon.mustContainer(t, ref); len(c.ExecIDs) > 0 {
		t.Errorf("THE DAEMON ACTED: container %s has exec instances %v", ref, c.ExecIDs)
	}
}

// assertEmptyDir checks that nothing was written to a host directory.
func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("THE DAEMON ACTED: %s appeared in host directory %s", e.Name(), dir)
	}
}

func (p *policyEnv) assertNoContainer(t *testing.T, name string) {
	t.Helper()
	if c, ok := p.daemon.container(t, name); ok {
		t.Errorf("THE DAEMON ACTED: container %s (%s) was created", name, c.ID)
	}
}

// TestPolicySelfProtection: a container labelled dockgate.self=true (the
// gateway's own, as `docker run --label dockgate.self=true` marks it), the
// volume it mounts, and a container that mounts the socket the gateway
// forwards to are out of every role's reach but admin's, whatever the
// role allows otherwise.
func TestPolicySelfProtection(t *testing.T) {
	p := startPolicyEnv(t)
	m := newMarker()
	state := "state-" + m
	p.adminVolume(t, state)
	self := p.startContainer(t, "admin", "self-"+m, "--label", "dockgate.self=true", "-v", state+":/state")
	sock := p.createContainer(t, "admin", "sock-"+m, "-v", p.upstream+":/var/run/docker.sock")
	const refused = "which only admin may reach"

	for _, client := range []string{ciClient, shareClient} {
		t.Run(client, func(t *testing.T) {
			p.reachRefused(t, client, refused, "container", "inspect", self)
			p.reachRefused(t, client, refused, "exec", self, "true")
			p.reachRefused(t, client, refused, "cp", self+":/etc/hostname", t.TempDir())
			p.reachRefused(t, client, refused, "stop", self)
			p.reachRefused(t, client, refused, "kill", self)
			p.reachRefused(t, client, refused, "rename", self, "x-"+m)
			p.reachRefused(t, client, refused, "update", "--memory", "64m", self)
			p.reachRefused(t, client, refused, "rm", "-f", self)
			p.reachRefused(t, client, refused, "volume", "inspect", state)
			p.reachRefused(t, client, refused, "volume", "rm", "-f", state)
			p.reachRefused(t, client, refused, "create", "--network", "none", "--name", "mount-"+m, "-v", state+":/x", p.d.Image())
			p.reachRefused(t, client, refused, "container", "inspect", sock)
			p.reachRefused(t, client, refused, "rm", "-f", sock)
			p.reachRefused(t, client, refused, "start", sock)
		})
	}
	p.reachRefused(t, shareClient, refused, "create", "--network", "none", "--name", "from-"+m, "--volumes-from", self, p.d.Image())
	p.reachRefused(t, shareClient, refused, "create", "--network", "none", "--name", "pid-"+m, "--pid", "container:"+self, p.d.Image())

	// The daemon: all still there, untouched.
	c := p.daemon.mustContainer(t, self)
	if !c.State.Running || c.Name != "/self-"+m {
		t.Errorf("THE DAEMON ACTED: the gateway's container is %s, named %s", c.State.Status, c.Name)
	}
	p.assertNoExec(t, self)
	if sc := p.daemon.mustContainer(t, sock); sc.State.Status != "created" {
		t.Errorf("THE DAEMON ACTED: the socket container is %s", sc.State.Status)
	}
	if status, body := p.daemon.do(t, http.MethodGet, "/volumes/"+state, nil); status != http.StatusOK {
		t.Errorf("THE DAEMON ACTED: the state volume: %d %s", status, body)
	}
	for _, name := range []string{"mount-", "pid-", "from-"} {
		p.assertNoContainer(t, name+m)
	}
	// admin may.
	p.mustDockerAs(t, "admin", "exec", self, "true")
}

// TestPolicyBorrowedPrivileges: a restricted role may not exec, copy or
// attach into a container with privileges it could not create, take its
// volumes, or mount a volume that binds a host path it could not bind; it
// still may all of that with what it could create itself.
func TestPolicyBorrowedPrivileges(t *testing.T) {
	p := startPolicyEnv(t)
	m := newMarker()
	hostDir := t.TempDir() // outside the roles' bind paths
	priv := p.createContainer(t, "admin", "priv-"+m, "--privileged")
	bound := p.startContainer(t, "admin", "bound-"+m, "-v", hostDir+":/host")
	hostVol := "hostvol-" + m
	p.adminVolume(t, hostVol, "--opt", "type=none", "--opt", "o=bind", "--opt", "device="+hostDir)
	okVol := "okvol-" + m
	p.adminVolume(t, okVol, "--opt", "type=none", "--opt", "o=bind", "--opt", "device="+p.bindDir)
	volCtr := p.startContainer(t, "admin", "volctr-"+m, "-v", hostVol+":/v")
	file := filepath.Join(t.TempDir(), "planted")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}

	p.reachRefused(t, ciClient, "roles.ci.containers.bind_mounts", "exec", bound, "touch", "/host/exec")
	// docker cp reports a refused stat or upload in its own words; the
	// API's answers name the rule.
	p.reachRefused(t, ciClient, "", "cp", file, bound+":/host/")
	p.reachRefused(t, ciClient, "", "cp", file, priv+":/")
	p.reachRefused(t, ciClient, "roles.ci.containers.bind_mounts", "cp", bound+":/host", t.TempDir())
	for _, put := range []struct{ ctr, dir, rule string }{
		{bound, "/host", "roles.ci.containers.bind_mounts"},
		{priv, "/", "roles.ci.containers.privileged"},
	} {
		status, body := p.apiAs(t, ciClient, http.MethodPut, "/containers/"+put.ctr+"/archive?path="+url.QueryEscape(put.dir), tarOf(t, "planted", "x"))
		if status != http.StatusForbidden || !strings.Contains(body, put.rule) {
			t.Errorf("PUT archive into %s: %d %s, want 403 naming %s", put.dir, status, body, put.rule)
		}
	}
	// The docker CLI will not attach to a container that is not running:
	// ask the API directly.
	if status, body := p.apiAs(t, ciClient, http.MethodPost, "/containers/"+bound+"/attach?stream=1&stdout=1", nil); status != http.StatusForbidden ||
		!strings.Contains(body, "roles.ci.containers.bind_mounts") {
		t.Errorf("attach to a container with a host bind: %d %s, want 403 naming roles.ci.containers.bind_mounts", status, body)
	}
	p.reachRefused(t, ciClient, "roles.ci.containers.bind_mounts", "create", "--network", "none", "--name", "vol-"+m, "-v", hostVol+":/v", p.d.Image())
	p.reachRefused(t, ciClient, "roles.ci.containers.bind_mounts", "create", "--network", "none", "--name", "mnt-"+m,
		"--mount", "type=volume,source="+hostVol+",target=/v", p.d.Image())
	p.reachRefused(t, shareClient, "roles.sharer.containers.bind_mounts", "create", "--network", "none", "--name", "from-"+m, "--volumes-from", bound, p.d.Image())
	p.reachRefused(t, shareClient, "roles.sharer.containers.privileged", "create", "--network", "none", "--name", "frompriv-"+m, "--volumes-from", priv, p.d.Image())
	p.reachRefused(t, ciClient, "roles.ci.containers.bind_mounts", "exec", volCtr, "touch", "/v/exec")
	// A privileged exec body is refused as it was before.
	p.reachRefused(t, ciClient, "Privileged is not allowed", "exec", "--privileged", bound, "true")

	// The daemon and the host: nothing happened.
	assertEmptyDir(t, hostDir)
	p.assertNoExec(t, bound)
	p.assertNoExec(t, volCtr)
	if p.hasFile(t, priv, "/planted") {
		t.Error("THE DAEMON ACTED: the file was copied into the privileged container")
	}
	for _, name := range []string{"vol-", "mnt-", "from-", "frompriv-"} {
		p.assertNoContainer(t, name+m)
	}

	// Controls: what the role could create itself it may reach.
	own := p.startContainer(t, ciClient, "own-"+m, "-v", p.bindDir+":/data")
	p.mustDockerAs(t, ciClient, "exec", own, "touch", "/data/from-exec")
	p.mustDockerAs(t, ciClient, "cp", file, own+":/tmp/")
	if !p.hasFile(t, own, "/tmp/planted") {
		t.Error("docker cp into the role's own container: the daemon has no /tmp/planted")
	}
	if _, err := os.Stat(filepath.Join(p.bindDir, "from-exec")); err != nil {
		t.Errorf("exec into the role's own container: %v", err)
	}
	withVol := p.createContainer(t, ciClient, "okvol-ctr-"+m, "-v", okVol+":/v")
	if c := p.daemon.mustContainer(t, withVol); len(c.HostConfig.Binds) != 1 {
		t.Errorf("a volume that binds an allowed path: binds %v", c.HostConfig.Binds)
	}
	from := p.createContainer(t, shareClient, "from-own-"+m, "--volumes-from", own)
	if c := p.daemon.mustContainer(t, from); c.ID == "" {
		t.Error("VolumesFrom the role's own kind of container was not created")
	}
}
