package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// onboardingEnv is a gateway with its enrollment listener on loopback, and
// its CLI on the server side.
type onboardingEnv struct {
	*gatewayEnv
	enroll string // 127.0.0.1:PORT of the enrollment listener
}

func startOnboardingEnv(t *testing.T) *onboardingEnv {
	t.Helper()
	enroll := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	g := startGatewayEnv(t, "--enroll-listen", enroll)
	e := &onboardingEnv{gatewayEnv: g, enroll: enroll}
	e.waitEnrollReady()
	// token create reads the enrollment port from the config, like serve.
	g.cli.extraEnv = append(g.cli.extraEnv, "DOCKGATE_ENROLL_LISTEN="+enroll)
	return e
}

func (e *onboardingEnv) waitEnrollReady() {
	e.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(e.logs.String(), "enrollment listener ready") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.t.Fatalf("no enrollment listener; logs:\n%s", e.logs.String())
}

// token creates a token on the gateway and returns it.
func (e *onboardingEnv) token(args ...string) string {
	e.t.Helper()
	return strings.TrimSpace(e.cli.run(append([]string{"token", "create"}, args...)...))
}

// newClient is another machine: its own docker configuration and state.
func (e *onboardingEnv) newClient() *dockgateCLI {
	return newDockgateCLI(e.t, e.cli.bin)
}

// dockerWith runs the docker CLI with a client machine's configuration.
func dockerWith(t *testing.T, c *dockgateCLI, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return dockertest.RunDocker(ctx, []string{"DOCKER_CONFIG=" + c.dockerCfg}, args...)
}

func TestOnboardingTokenLoginRun(t *testing.T) {
	e := startOnboardingEnv(t)
	tok := e.token("alice", "--group", "admins")
	if !strings.HasPrefix(tok, "dgt1.") || strings.ContainsAny(tok, " \n") {
		t.Fatalf("token create printed %q, want the token alone", tok)
	}
	client := e.newClient()
	out := client.run("login", tok, "--context", "alice")
	_, port, _ := net.SplitHostPort(e.addr)
	// The token's default addresses are the server certificate's SANs
	// (localhost, 127.0.0.1) with the enrollment port; the context gets
	// the gateway's port on the host that answered.
	loggedIn := regexp.MustCompile(`Logged in as "alice" \(groups admins\) at tcp://(localhost|127\.0\.0\.1):` + port + `\n`)
	// No context was chosen on this machine, so alice's becomes current.
	if !loggedIn.MatchString(out) || !strings.Contains(out, "Next:  docker ps") {
		t.Errorf("login output:\n%s", out)
	}
	t.Run("docker run through the new context", func(t *testing.T) {
		stdout, stderr, err := dockerWith(t, client, "--context", "alice", "run", "--rm", "--network", "none", e.d.Image(), "echo", "hi")
		if err != nil || strings.TrimSpace(stdout) != "hi" {
			t.Fatalf("docker run: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
	})
	t.Run("the private key never left the client", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(e.cli.stateDir, "clients", "alice")); !os.IsNotExist(err) {
			t.Errorf("the gateway's state directory has a bundle for alice (%v)", err)
		}
		c, err := dockerconf.ReadContext(client.dockerCfg, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(e.logs.String(), string(c.Key)) || strings.Contains(e.logs.String(), tok[5:25]) {
			t.Error("the gateway log holds the key or the token")
		}
	})
	t.Run("docker gate status and login through the CLI plugin", func(t *testing.T) {
		client.run("install-plugin")
		stdout, stderr, err := dockerWith(t, client, "--context", "alice", "gate", "status")
		if err != nil || !strings.Contains(stdout, "CN=alice groups=[admins]") || !strings.Contains(stdout, "reachable; role admin") {
			t.Fatalf("docker gate status: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		tok2 := e.token("bob", "--group", "admins")
		stdout, stderr, err = dockerWith(t, client, "gate", "login", tok2, "--context", "bob", "--use")
		if err != nil || !strings.Contains(stdout, `Logged in as "bob"`) {
			t.Fatalf("docker gate login: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
		if stdout, stderr, err = dockerWith(t, client, "ps", "--format", "{{.ID}}"); err != nil {
			t.Fatalf("docker ps with the context in use: %v\n%s%s", err, stdout, stderr)
		}
		stdout, _, _ = dockerWith(t, client, "gate", "docker-cli-plugin-metadata")
		if !strings.Contains(stdout, `"SchemaVersion":"0.1.0"`) {
			t.Errorf("plugin metadata %q", stdout)
		}
	})
	t.Run("doctor passes every check", func(t *testing.T) {
		stdout, stderr, err := client.exec("doctor", "--context", "alice")
		if err != nil || !strings.Contains(stdout, "all checks passed") || strings.Contains(stdout, "✗") {
			t.Fatalf("doctor: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
		}
	})
}

func TestOnboardingEnrollPortServesNoDockerAPI(t *testing.T) {
	e := startOnboardingEnv(t)
	insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	for _, path := range []string{"/_ping", "/version", "/v1.41/containers/json", "/v1.41/info", "/containers/json", "/images/json", "/dockgate/v1/whoami"} {
		resp, err := insecure.Get("https://" + e.enroll + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Api-Version") != "" {
			t.Errorf("GET %s on the enrollment port: %d %s", path, resp.StatusCode, body)
		}
	}
	// The docker CLI itself finds no daemon there.
	stdout, stderr, err := dockertest.RunDocker(context.Background(), []string{"DOCKER_CONFIG=" + t.TempDir(),
		"DOCKER_HOST=tcp://" + e.enroll, "DOCKER_TLS_VERIFY="}, "--tls", "version", "--format", "{{.Server.Version}}")
	if err == nil || strings.TrimSpace(stdout) != "" {
		t.Errorf("docker version against the enrollment port succeeded: %q %q", stdout, stderr)
	}
	// And the gateway port still refuses a client without a certificate.
	_, err = insecure.Get("https://" + e.addr + "/_ping")
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("GET /_ping on the gateway port without a certificate: %v, want a refusal", err)
	}
}

func TestOnboardingRefusals(t *testing.T) {
	e := startOnboardingEnv(t)
	// Each login is a fresh machine, so the context name never clashes.
	login := func(tok string, ctxName string) (string, error) {
		_, stderr, err := e.newClient().exec("login", tok, "--context", ctxName)
		return stderr, err
	}
	t.Run("reuse", func(t *testing.T) {
		tok := e.token("reuse")
		if _, err := login(tok, "ctx-a"); err != nil {
			t.Fatal(err)
		}
		stderr, err := login(tok, "ctx-b")
		if err == nil || !strings.Contains(stderr, "already been used") {
			t.Fatalf("second login: %v %s", err, stderr)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		tok := e.token("late", "--ttl", "1s")
		time.Sleep(1500 * time.Millisecond) // the token's 1 s lifetime must pass: the behaviour under test
		stderr, err := login(tok, "ctx-a")
		if err == nil || !strings.Contains(stderr, "has expired") {
			t.Fatalf("login with an expired token: %v %s", err, stderr)
		}
	})
	t.Run("revocation", func(t *testing.T) {
		tok := e.token("withdrawn")
		e.cli.run("token", "revoke", "withdrawn")
		stderr, err := login(tok, "ctx-a")
		if err == nil || !strings.Contains(stderr, "has been revoked") {
			t.Fatalf("login with a revoked token: %v %s", err, stderr)
		}
	})
	t.Run("exactly one of parallel logins wins", func(t *testing.T) {
		tok := e.token("race")
		const n = 6
		var wg sync.WaitGroup
		errs, stderrs := make([]error, n), make([]string, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); stderrs[i], errs[i] = login(tok, "ctx-race") }()
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !strings.Contains(stderrs[i], "already been used"):
				t.Errorf("login %d: %v %s", i, err, stderrs[i])
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d parallel logins won, want exactly 1", won, n)
		}
	})
	t.Run("a gateway with another CA at the token's address", func(t *testing.T) {
		impostor := startOnboardingEnv(t)
		tok := e.token("victim", "--address", impostor.enroll)
		stderr, err := login(tok, "ctx-a")
		for _, want := range []string{"wrong token", "intercepting", "nothing was sent"} {
			if err == nil || !strings.Contains(stderr, want) {
				t.Errorf("login at an impostor: %v; stderr lacks %q:\n%s", err, want, stderr)
			}
		}
		if strings.Contains(impostor.logs.String(), "event=enroll") {
			t.Error("the impostor received an enrollment request")
		}
	})
}

var serialChange = regexp.MustCompile(`serial ([0-9a-f]+) -> ([0-9a-f]+)`)

func TestOnboardingRenewal(t *testing.T) {
	e := startOnboardingEnv(t)
	client := e.newClient()
	client.run("login", e.token("carol", "--group", "admins"), "--context", "carol")
	out := client.run("renew", "--context", "carol")
	m := serialChange.FindStringSubmatch(out)
	if m == nil || m[1] == m[2] {
		t.Fatalf("renew output %q: want a changed serial", out)
	}
	stdout, stderr, err := dockerWith(t, client, "--context", "carol", "version", "--format", "{{.Server.APIVersion}}")
	if err != nil || strings.TrimSpace(stdout) == "" {
		t.Fatalf("docker with the renewed context: %v %s %s", err, stdout, stderr)
	}
	c, err := dockerconf.ReadContext(client.dockerCfg, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if cert, _ := pki.ParseCertPEM(c.Cert); cert == nil || pki.SerialHex(cert.SerialNumber) != m[2] {
		t.Errorf("the context does not hold the renewed certificate %s", m[2])
	}

	t.Run("after revocation", func(t *testing.T) {
		e.cli.run("revoke", "carol")
		// The gateway reads revocations on a poll: wait until doctor, which
		// changes nothing, hears that the certificate is revoked.
		if !eventually(t, 15*time.Second, func() bool {
			stdout, _, err := client.exec("doctor", "--context", "carol")
			return err != nil && strings.Contains(stdout, "certificate revoked")
		}) {
			t.Fatal("the gateway does not report the certificate as revoked")
		}
		_, stderr, err := client.exec("renew", "--context", "carol")
		if err == nil || !strings.Contains(stderr, "revoked") || !strings.Contains(stderr, "enroll again") {
			t.Fatalf("renew after revocation: %v\n%s", err, stderr)
		}
		_, stderr, err = dockerWith(t, client, "--context", "carol", "ps")
		if err == nil || !strings.Contains(stderr, `Error response from daemon: dockgate: certificate "carol" (serial `) ||
			!strings.Contains(stderr, "was revoked at") || !strings.Contains(stderr, "dockgate token create carol") {
			t.Errorf("docker ps after revocation: %v\n%s", err, stderr)
		}
		stdout, _, err := client.exec("doctor", "--context", "carol")
		if err == nil || !strings.Contains(stdout, "certificate revoked: the gateway completes the TLS handshake and answers every request 403") ||
			!strings.Contains(stdout, "dockgate token create carol") {
			t.Errorf("doctor after revocation: %v\n%s", err, stdout)
		}
		// On the gateway's machine doctor says the same.
		serverSide := *client
		serverSide.stateDir = e.cli.stateDir
		stdout, _, _ = serverSide.exec("doctor", "--context", "carol")
		if !strings.Contains(stdout, "certificate revoked") {
			t.Errorf("doctor on the gateway's machine:\n%s", stdout)
		}
	})
	t.Run("watch renews at two thirds of the lifetime", func(t *testing.T) {
		// 90 s of validity, issued 80 s ago: past two thirds already.
		old := contextIssuedAt(t, e, client, "erin", time.Now().Add(-80*time.Second), 90*time.Second)
		cmd := exec.Command(client.bin, "renew", "--context", "erin", "--watch")
		cmd.Env = client.env()
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var renewed *x509.Certificate
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			c, err := dockerconf.ReadContext(client.dockerCfg, "erin")
			if err != nil {
				continue // mid-rewrite is atomic, but be patient
			}
			if cert, _ := pki.ParseCertPEM(c.Cert); cert != nil && cert.SerialNumber.Cmp(old.SerialNumber) != 0 {
				renewed = cert
				break
			}
		}
		if renewed == nil {
			cmd.Process.Kill()
			<-done
			t.Fatalf("renew --watch did not renew the context within 30 s:\n%s", stderr.String())
		}
		// A renewal keeps the lifetime: 90 s from now.
		if !renewed.NotAfter.After(old.NotAfter) {
			t.Errorf("renewed certificate valid until %s, want later than the old one's %s", renewed.NotAfter, old.NotAfter)
		}
		if stdout, errOut, err := dockerWith(t, client, "--context", "erin", "version", "--format", "{{.Server.APIVersion}}"); err != nil {
			t.Errorf("docker with the watched context: %v %s %s", err, stdout, errOut)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("renew --watch after SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Errorf("renew --watch did not stop on SIGTERM:\n%s", stderr.String())
		}
	})
	t.Run("after expiry", func(t *testing.T) {
		expiredContext(t, e, client, "dave")
		_, stderr, err := client.exec("renew", "--context", "dave")
		if err == nil || !strings.Contains(stderr, "has expired") || !strings.Contains(stderr, "enroll again") {
			t.Fatalf("renew after expiry: %v\n%s", err, stderr)
		}
	})
}

// expiredContext writes a context whose client certificate, signed by the
// gateway's CA, expired an hour ago.
func expiredContext(t *testing.T, e *onboardingEnv, client *dockgateCLI, name string) {
	t.Helper()
	contextIssuedAt(t, e, client, name, time.Now().Add(-2*time.Hour), time.Hour)
}

// contextIssuedAt writes a context for name whose client certificate, signed
// by the gateway's CA, was issued at now for validity, and returns it.
func contextIssuedAt(t *testing.T, e *onboardingEnv, client *dockgateCLI, name string, now time.Time, validity time.Duration) *x509.Certificate {
	t.Helper()
	st, err := store.Open(e.cli.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	auth, err := authority.Load(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, csrPEM, err := enroll.NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	csr, err := pki.ParseCSRPEM(csrPEM)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := auth.SignCSR(context.Background(), csr, authority.Request{Kind: pki.KindClient, Name: name,
		Groups: []string{"admins"}, Validity: validity, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = dockerconf.WriteContext(client.dockerCfg, dockerconf.Context{Name: name, Host: "tcp://" + e.addr,
		CA: pki.EncodeCertPEM(auth.Cert()), Cert: pki.EncodeCertPEM(cert), Key: keyPEM}, false)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestOnboardingReEnrollSameName: a client whose certificate was revoked
// enrolls again under the same name, with a new token of that name, and
// its context is replaced (no bob-2, no second context). A first login
// on a machine where nobody chose a context makes the new one current.
func TestOnboardingReEnrollSameName(t *testing.T) {
	e := startOnboardingEnv(t)
	client := e.newClient()
	out := client.run("login", e.token("bob", "--group", "admins"))
	if !strings.Contains(out, `docker context "bob" written, now the current context`) {
		t.Errorf("first login output:\n%s", out)
	}
	if cur, err := dockerconf.CurrentContext(client.dockerCfg); err != nil || cur != "bob" {
		t.Fatalf("current context = %q, %v; want bob", cur, err)
	}
	if stdout, stderr, err := dockerWith(t, client, "ps", "--format", "{{.ID}}"); err != nil {
		t.Fatalf("docker ps without --context: %v\n%s%s", err, stdout, stderr)
	}

	e.cli.run("revoke", "bob")
	out = client.run("login", e.token("bob", "--group", "admins"))
	if !strings.Contains(out, `docker context "bob" replaced`) {
		t.Errorf("second login output:\n%s", out)
	}
	c, err := dockerconf.ReadContext(client.dockerCfg, "bob")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ParseCertPEM(c.Cert)
	if err != nil || cert.Subject.CommonName != "bob" {
		t.Fatalf("the context's certificate is %v (%v), want CN bob", cert.Subject, err)
	}
	if exists, _ := dockerconf.ContextExists(client.dockerCfg, "bob-2"); exists {
		t.Error("re-enrolling made a second context bob-2")
	}
	if stdout, stderr, err := dockerWith(t, client, "ps", "--format", "{{.ID}}"); err != nil {
		t.Fatalf("docker ps with the new certificate: %v\n%s%s", err, stdout, stderr)
	}
}
