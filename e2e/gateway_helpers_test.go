package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// gatewayEnv is a CA, a server certificate, an admin client and a running
// `dockgate serve` in front of the private test daemon.
type gatewayEnv struct {
	t        *testing.T
	d        *dockertest.Daemon
	cli      *dockgateCLI
	addr     string // 127.0.0.1:PORT of the gateway
	admin    string // 127.0.0.1:PORT of /metrics etc.
	certDir  string // the admin client's DOCKER_CERT_PATH
	upstream string // unix socket the gateway forwards to (a symlink we can pull)
	cmd      *exec.Cmd
	logs     *syncBuffer
}

func startGatewayEnv(t *testing.T, extraServeArgs ...string) *gatewayEnv {
	t.Helper()
	return startGatewayEnvOn(t, dockertest.ForTest(t), extraServeArgs...)
}

// startGatewayEnvOn is startGatewayEnv in front of daemon d.
func startGatewayEnvOn(t *testing.T, d *dockertest.Daemon, extraServeArgs ...string) *gatewayEnv {
	t.Helper()
	bin := dockertest.BuildDockgate(t)
	cli := newDockgateCLI(t, bin)
	cli.run("init", "--insecure-no-passphrase")
	cli.run("issue", "server", "gateway", "--san", "127.0.0.1", "--san", "localhost")
	certDir := filepath.Join(t.TempDir(), "admin")
	cli.run("issue", "client", "admin", "--group", "admins", "--out", certDir)
	return serveGateway(t, d, cli, certDir, extraServeArgs...)
}

// serveGateway runs `dockgate serve` from cli's state directory (a CA and
// the server certificate "gateway") in front of daemon d; certDir holds
// the admin client's certificate.
func serveGateway(t *testing.T, d *dockertest.Daemon, cli *dockgateCLI, certDir string, extraServeArgs ...string) *gatewayEnv {
	t.Helper()
	// The gateway reaches the daemon through a symlink, so a test can take
	// the daemon "away" and bring it back without touching the daemon.
	link := filepath.Join(t.TempDir(), "docker.sock")
	if err := os.Symlink(strings.TrimPrefix(d.Host(), "unix://"), link); err != nil {
		t.Fatal(err)
	}
	g := &gatewayEnv{
		t: t, d: d, cli: cli, certDir: certDir, upstream: link,
		addr:  fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t)),
		logs:  &syncBuffer{},
	}
	args := append([]string{"serve", "--listen", g.addr, "--admin-listen", g.admin,
		"--upstream", "unix://" + link}, extraServeArgs...)
	g.cmd = exec.Command(cli.bin, args...)
	g.cmd.Env = append(cli.env(), "DOCKGATE_LOG_FORMAT=text")
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	// The gateway dies with the test binary, even one killed by -timeout.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	g.waitReady()
	return g
}

func (g *gatewayEnv) waitReady() {
	g.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + g.admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("gateway not ready; logs:\n%s", g.logs.String())
}

// stop sends SIGTERM and waits for the drain: the gateway must exit
// cleanly within its shutdown timeout (30 s) and a margin.
func (g *gatewayEnv) stop() {
	if g.cmd.Process == nil || g.cmd.ProcessState != nil {
		return
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			g.t.Errorf("dockgate serve after SIGTERM: %v", err)
		}
	case <-time.After(40 * time.Second):
		g.cmd.Process.Kill()
		<-done
		g.t.Errorf("dockgate serve did not drain and exit within 40 s of SIGTERM")
	}
	if g.t.Failed() {
		g.t.Logf("gateway logs:\n%s", g.logs.String())
	}
}

// dockerEnv is the environment the docker CLI needs to use the gateway
// with the given certificate directory.
func (g *gatewayEnv) dockerEnv(certDir string) []string {
	return append(cleanEnv(),
		"DOCKER_HOST=tcp://"+g.addr,
		"DOCKER_TLS_VERIFY=1",
		"DOCKER_CERT_PATH="+certDir,
		"DOCKER_CONFIG="+g.cli.dockerCfg,
		"DOCKER_BUILDKIT=0",
	)
}

// docker runs the docker CLI through the gateway as the admin client.
func (g *gatewayEnv) docker(args ...string) string {
	g.t.Helper()
	out, errOut, err := g.dockerAs(g.certDir, nil, args...)
	if err != nil {
		g.t.Fatalf("docker %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (g *gatewayEnv) dockerAs(certDir string, stdin []byte, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = g.dockerEnv(certDir)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// dockerCmd prepares a long-running docker command through the gateway.
func (g *gatewayEnv) dockerCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = g.dockerEnv(g.certDir)
	return cmd
}

// runDetached starts `sleep`-style container and removes it at cleanup.
func (g *gatewayEnv) runDetached(args ...string) string {
	g.t.Helper()
	id := strings.TrimSpace(g.docker(append([]string{"run", "-d", "--network", "none"}, args...)...))
	g.t.Cleanup(func() { g.dockerAs(g.certDir, nil, "rm", "-f", id) })
	return id
}

// syncBuffer is a bytes.Buffer safe for a child process and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
