package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// Joining a host is one command: host A serves with the CA passphrase on a
// PostgreSQL store; `token create b --host` on A, then `serve --join TOKEN`
// on host B (its own state directory and daemon) gets B a server
// certificate and the CA certificate, never the CA key. A client
// certificate issued on A then works on B's gateway and reaches B's daemon
// (not A's), `dockgate hosts` lists both healthy, `up --join` on a third
// host works the same, and serving B again with the spent token reuses its
// files. A token whose addresses reach no
// gateway that signs fails with a sentence naming the gateways that can.
func TestJoinHostWithToken(t *testing.T) {
	url := storetest.PostgresURL(t)
	dA := dockertest.ForTest(t)
	dB := dockertest.StartForTest(t, dockertest.Options{})
	bin := dockertest.BuildDockgate(t)
	a := newDockgateCLI(t, bin, "DOCKGATE_STORE="+url, "DOCKGATE_CA_PASSPHRASE=join test passphrase")
	a.run("init")
	a.run("issue", "server", "gateway", "--san", "127.0.0.1", "--san", "localhost")
	certDir := filepath.Join(t.TempDir(), "admin")
	a.run("issue", "client", "admin", "--group", "admins", "--out", certDir)
	enrollA := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	gA := serveGateway(t, dA, a, certDir, "--enroll-listen", enrollA, "--host-name", "a")
	waitUntil(t, "A registered with enrollment", func() bool {
		logs := gA.logs.String()
		return strings.Contains(logs, "host registered") && strings.Contains(logs, "enrollment listener ready")
	})

	b := newDockgateCLI(t, bin, "DOCKGATE_STORE="+url)
	t.Run("no gateway that signs answers", func(t *testing.T) {
		dead := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
		bad := strings.TrimSpace(a.run("token", "create", "b", "--host", "--offline", "--address", dead))
		_, errOut, err := b.exec("serve", "--join", bad, "--upstream", dA.Host(), "--listen", "127.0.0.1:0", "--admin-listen", "off")
		if err == nil {
			t.Fatal("serve --join with a token that reaches no gateway succeeded")
		}
		if !strings.Contains(errOut, "the gateways that can sign (given the CA passphrase) are a (") {
			t.Errorf("the refusal does not name gateway a as one that signs:\n%s", errOut)
		}
		if _, err := os.Stat(filepath.Join(b.stateDir, "ca", "ca.pem")); !os.IsNotExist(err) {
			t.Errorf("a failed join left ca.pem (%v)", err)
		}
		a.run("token", "revoke", "b")
	})

	tok := strings.TrimSpace(a.run("token", "create", "b", "--host", "--offline", "--address", enrollA))
	gB := serveGateway(t, dB, b, certDir, "--join", tok)
	if !strings.Contains(gB.logs.String(), `Joined through `+enrollA+`: server certificate "b"`) {
		t.Errorf("B's output does not report the join:\n%s", gB.logs.String())
	}
	if _, err := os.Lstat(filepath.Join(b.stateDir, "ca", "ca-key.pem")); !os.IsNotExist(err) {
		t.Fatalf("B's state directory has the CA key (%v)", err)
	}
	checkPerm(t, filepath.Join(b.stateDir, "servers", "b", "key.pem"), 0o600)
	checkPerm(t, filepath.Join(b.stateDir, "servers", "b"), 0o700)

	for _, args := range [][]string{{"version"}, {"ps"}} {
		if out, errOut, err := gB.dockerAs(certDir, nil, args...); err != nil {
			t.Fatalf("docker %s through B with A's admin certificate: %v\n%s%s", args[0], err, out, errOut)
		}
	}
	if out, errOut, err := gB.dockerAs(certDir, nil, "create", "--name", "made-through-b", "--network", "none", dB.Image(), "true"); err != nil {
		t.Fatalf("create through B: %v\n%s%s", err, out, errOut)
	}
	if names := dB.Docker(t, "ps", "-a", "--format", "{{.Names}}"); !strings.Contains(names, "made-through-b") {
		t.Errorf("B's daemon has %q, want made-through-b", names)
	}
	if names := dA.Docker(t, "ps", "-a", "--format", "{{.Names}}"); strings.Contains(names, "made-through-b") {
		t.Errorf("A's daemon has the container made through B: %q", names)
	}

	waitUntil(t, "B registered", func() bool { return strings.Contains(gB.logs.String(), "host registered") })
	out := a.run("hosts")
	for _, name := range []string{"a", "b"} {
		if !regexp.MustCompile(`(?m)^` + name + ` +healthy `).MatchString(out) {
			t.Errorf("dockgate hosts:\n%s\nwant %s healthy", out, name)
		}
	}

	t.Run("up --join", func(t *testing.T) {
		c := newDockgateCLI(t, bin, "DOCKGATE_STORE="+url)
		tok := strings.TrimSpace(a.run("token", "create", "c", "--host", "--offline", "--address", enrollA))
		gC := upGateway(t, dB, c, certDir, "--join", tok)
		if out, errOut, err := gC.dockerAs(certDir, nil, "ps"); err != nil {
			t.Fatalf("docker ps through C (up --join): %v\n%s%s", err, out, errOut)
		}
		if _, err := os.Lstat(filepath.Join(c.stateDir, "ca", "ca-key.pem")); !os.IsNotExist(err) {
			t.Errorf("C's state directory has the CA key (%v)", err)
		}
		if _, err := os.Lstat(filepath.Join(c.stateDir, "clients")); !os.IsNotExist(err) {
			t.Errorf("up --join issued client certificates on C (%v)", err)
		}
	})

	t.Run("serving again reuses the files", func(t *testing.T) {
		gB.stop()
		again := serveGateway(t, dB, b, certDir, "--join", tok)
		if !strings.Contains(again.logs.String(), "Joined already") {
			t.Errorf("the second run did not reuse the files:\n%s", again.logs.String())
		}
		if out, errOut, err := again.dockerAs(certDir, nil, "ps"); err != nil {
			t.Fatalf("docker ps through B after a restart: %v\n%s%s", err, out, errOut)
		}
	})
}

// upGateway runs `dockgate up` as serveGateway runs serve.
func upGateway(t *testing.T, d *dockertest.Daemon, cli *dockgateCLI, certDir string, extra ...string) *gatewayEnv {
	t.Helper()
	g := &gatewayEnv{
		t: t, d: d, cli: cli, certDir: certDir, upstream: strings.TrimPrefix(d.Host(), "unix://"),
		addr:  fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t)),
		logs:  &syncBuffer{},
	}
	args := append([]string{"up", "--listen", g.addr, "--admin-listen", g.admin, "--upstream", d.Host()}, extra...)
	g.cmd = exec.Command(cli.bin, args...)
	g.cmd.Env = append(cli.env(), "DOCKGATE_LOG_FORMAT=text")
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.stop)
	g.waitReady()
	return g
}

func checkPerm(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}
