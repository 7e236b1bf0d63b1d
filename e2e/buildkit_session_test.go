package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// sessionConfig gives builders the built-in deployer (no
// builds.remote_sources: the gateway reads the Dockerfile of their
// BuildKit sessions) and fetchers a role that may fetch.
const sessionConfig = `
audit:
  path: @AUDIT@
roles:
  fetcher:
    allow: [image.build, image.inspect, session.start, grpc.serve, system.info]
    builds:
      remote_sources: true
clients:
  - cn: "build-*"
    role: deployer
  - cn: "fetch-*"
    role: fetcher
  - group: admins
    role: admin
`

// TestBuildKitSessionDockerfile builds, with `docker buildx build`, a
// Dockerfile whose ADD fetches from a server on the daemon host's
// loopback, and judges by that server's hits and the daemon's image
// store: without builds.remote_sources the build fails with the policy's
// sentence and nothing is fetched; with it the file is fetched once.
func TestBuildKitSessionDockerfile(t *testing.T) {
	plugin := buildxPlugin(t)
	var hits atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		fmt.Fprintln(w, "fetched")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	auditPath := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(sessionConfig, "@AUDIT@", auditPath, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	if err := os.MkdirAll(filepath.Join(g.cli.dockerCfg, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(plugin, filepath.Join(g.cli.dockerCfg, "cli-plugins", "docker-buildx")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	certs := map[string]string{}
	for _, cn := range []string{"build-1", "fetch-1"} {
		certs[cn] = filepath.Join(dir, "certs", cn)
		g.cli.run("issue", "client", cn, "--out", certs[cn])
	}
	daemon := newDaemonAPI(g.d.Host())

	ctxDir := filepath.Join(dir, "context")
	os.Mkdir(ctxDir, 0o755)
	url := "http://" + ln.Addr().String() + "/file"
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nADD "+url+" /file\n"), 0o644)

	buildx := func(cn, tag string) (string, error) {
		t.Cleanup(func() { daemon.do(t, "DELETE", "/images/"+tag+"?force=1", nil) })
		cmd := exec.Command("docker", "buildx", "build", "--progress", "plain", "--network", "none", "-t", tag, ctxDir)
		cmd.Env = append(cleanEnv(),
			"DOCKER_HOST=tcp://"+g.addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+certs[cn],
			"DOCKER_CONFIG="+g.cli.dockerCfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	imageExists := func(tag string) bool {
		status, _ := daemon.do(t, "GET", "/images/"+tag+"/json", nil)
		return status == 200
	}

	const denied = "dockgate-e2e/session:denied"
	out, err := buildx("build-1", denied)
	if err == nil {
		t.Fatalf("docker buildx build of an ADD %s succeeded without builds.remote_sources:\n%s", url, out)
	}
	if !strings.Contains(out, "dockgate: denied session.start for build-1") || !strings.Contains(out, "builds.remote_sources") {
		t.Errorf("buildx output does not carry the policy's sentence naming builds.remote_sources:\n%s", out)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the daemon fetched %s %d times for a role without builds.remote_sources", url, n)
	}
	if imageExists(denied) {
		t.Errorf("the daemon has image %s after a refused build", denied)
	}
	waitUntil(t, "the audit record of the refused Dockerfile", func() bool {
		b, _ := os.ReadFile(auditPath)
		return strings.Contains(string(b), "Dockerfile(s) of the BuildKit session denied on the stream")
	})

	const allowed = "dockgate-e2e/session:fetched"
	out, err = buildx("fetch-1", allowed)
	if err != nil {
		t.Fatalf("docker buildx build with builds.remote_sources: %v\n%s", err, out)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the daemon fetched %s %d times with builds.remote_sources, want 1", url, n)
	}
	if !imageExists(allowed) {
		t.Errorf("the daemon has no image %s after an allowed build", allowed)
	}
}
