package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/pki"
)

// caPassphrase protects the main test CA's key; dockgate reads it from
// DOCKGATE_CA_PASSPHRASE.
const caPassphrase = "correct horse battery staple"

// tlsDaemon is a private dockerd whose TCP listener was configured by
// `dockgate dockerd-config`, and the CA that issued its certificates.
type tlsDaemon struct {
	ca      *dockgateCLI
	daemon  *dockertest.Daemon
	port    int
	host    string // tcp://127.0.0.1:PORT, in the server certificate's SANs
	version string // the daemon's version, as its unix socket reports it
}

// startTLSDaemon does what the README tells a user: init a CA, issue a
// server certificate for the daemon's address and a client certificate,
// and start dockerd with the flags dockerd-config prints. The daemon also
// listens on 127.0.0.2, an address its certificate does not name.
func startTLSDaemon(t *testing.T) *tlsDaemon {
	t.Helper()
	dockertest.SkipUnlessIntegration(t)
	ca := newDockgateCLI(t, dockertest.BuildDockgate(t), "DOCKGATE_CA_PASSPHRASE="+caPassphrase)
	ca.run("init")
	ca.run("issue", "server", "srv", "--san", "127.0.0.1", "--san", "localhost")
	ca.run("issue", "client", "alice")

	port := dockertest.FreeLoopbackPort(t)
	host := fmt.Sprintf("tcp://127.0.0.1:%d", port)
	flags := shellWords(t, ca.run("dockerd-config", "srv", "--listen", host, "--format", "flags"))
	extra := append(flags, "-H", fmt.Sprintf("tcp://127.0.0.2:%d", port))
	d := dockertest.StartForTest(t, dockertest.Options{ExtraArgs: extra})
	version := strings.TrimSpace(d.Docker(t, "version", "--format", "{{.Server.Version}}"))
	if version == "" {
		t.Fatal("the daemon reported no server version over its unix socket")
	}
	return &tlsDaemon{ca: ca, daemon: d, port: port, host: host, version: version}
}

// checkDockerWorks runs version, ps and run --rm through one way of
// reaching the TLS listener.
func checkDockerWorks(t *testing.T, td *tlsDaemon, docker func(args ...string) (string, string, error)) {
	t.Helper()
	mustRun := func(args ...string) string {
		t.Helper()
		stdout, stderr, err := docker(args...)
		if err != nil {
			t.Fatalf("docker %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
		}
		return stdout
	}
	if got := strings.TrimSpace(mustRun("version", "--format", "{{.Server.Version}}")); got != td.version {
		t.Errorf("docker version over TLS: server version %q, want %q", got, td.version)
	}
	if got := mustRun("ps"); !strings.HasPrefix(got, "CONTAINER ID") {
		t.Errorf("docker ps over TLS printed %q, want the container table header", got)
	}
	img := td.daemon.Image()
	if got := mustRun("run", "--rm", "--network", "none", img, "echo", "hi"); got != "hi\n" {
		t.Errorf("docker run over TLS printed %q, want %q", got, "hi\n")
	}
}

// TestDockerdNativeTLS checks dockerd configured by dockerd-config with
// certificates from init and issue: the docker CLI gets in with `dockgate
// env` or a context from `dockgate context create`, and everything else is
// refused.
func TestDockerdNativeTLS(t *testing.T) {
	td := startTLSDaemon(t)

	t.Run("env", func(t *testing.T) {
		exports := td.ca.run("env", "alice", "--host", td.host, "--shell", "sh")
		cfg := t.TempDir()
		checkDockerWorks(t, td, func(args ...string) (string, string, error) {
			return dockerAfterEval(t, exports, cfg, args...)
		})
	})

	t.Run("context", func(t *testing.T) {
		td.ca.run("context", "create", "c1", "--client", "alice", "--host", td.host)
		env := []string{"DOCKER_CONFIG=" + td.ca.dockerCfg}
		checkDockerWorks(t, td, func(args ...string) (string, string, error) {
			return dockertest.RunDocker(t.Context(), env, append([]string{"--context", "c1"}, args...)...)
		})
	})

	t.Run("context --use", func(t *testing.T) {
		td.ca.run("context", "create", "c2", "--client", "alice", "--host", td.host, "--use")
		env := []string{"DOCKER_CONFIG=" + td.ca.dockerCfg}
		stdout, stderr, err := dockertest.RunDocker(t.Context(), env, "context", "show")
		if err != nil || strings.TrimSpace(stdout) != "c2" {
			t.Fatalf("docker context show = %q, %v (stderr %s), want c2", stdout, err, stderr)
		}
		checkDockerWorks(t, td, func(args ...string) (string, string, error) {
			return dockertest.RunDocker(t.Context(), env, args...)
		})
	})

	t.Run("DNS SAN", func(t *testing.T) {
		exports := td.ca.run("env", "alice", "--host", fmt.Sprintf("tcp://localhost:%d", td.port), "--shell", "sh")
		stdout, stderr, err := dockerAfterEval(t, exports, t.TempDir(), "version", "--format", "{{.Server.Version}}")
		if err != nil || strings.TrimSpace(stdout) != td.version {
			t.Errorf("docker version via localhost (a DNS SAN) = %q, %v\nstderr: %s", stdout, err, stderr)
		}
	})

	t.Run("address not in SANs", func(t *testing.T) {
		exports := td.ca.run("env", "alice", "--host", fmt.Sprintf("tcp://127.0.0.2:%d", td.port), "--shell", "sh")
		_, stderr, err := dockerAfterEval(t, exports, t.TempDir(), "version")
		want := "x509: certificate is valid for 127.0.0.1, not 127.0.0.2"
		if err == nil || !strings.Contains(stderr, want) {
			t.Errorf("docker version via 127.0.0.2: err %v, stderr %q; want it refused with %q", err, stderr, want)
		}
	})

	t.Run("client certificates", func(t *testing.T) {
		testClientCertificates(t, td)
	})
}

// testClientCertificates presents client certificates to the TLS listener:
// only a current clientAuth certificate from the daemon's CA gets in.
//
// Each certificate goes twice. First with the docker CLI, whose error text
// users see; the daemon refuses with a TLS alert. The docker CLI withholds a
// certificate whose issuer the daemon did not ask for, so for a foreign CA
// the daemon sees no certificate at all. Then with a TLS client that
// presents the certificate regardless, so that dockerd's log names the
// reason it refused that very certificate.
func testClientCertificates(t *testing.T, td *tlsDaemon) {
	caPEM := readFile(t, filepath.Join(td.ca.stateDir, "ca", "ca.pem"))
	ca := loadCA(t, td.ca.stateDir, []byte(caPassphrase))

	other := newDockgateCLI(t, td.ca.bin)
	other.run("init", "--insecure-no-passphrase", "--cn", "some other CA")
	other.run("issue", "client", "mallory")
	otherDir := filepath.Join(other.stateDir, "clients", "mallory")
	serverDir := filepath.Join(td.ca.stateDir, "servers", "srv")

	now := time.Now()
	currentCert, currentKey := issueClient(t, ca, "bob", now, time.Hour)
	// Issued three days ago for one day: expired for two days.
	expiredCert, expiredKey := issueClient(t, ca, "carol", now.Add(-72*time.Hour), 24*time.Hour)

	// With TLS 1.3 the client finishes its side of the handshake first, so
	// the server's refusal reaches the CLI either as the alert or, when its
	// first write races the close, as a reset. dockerd's log says why.
	const refused = "remote error: tls: bad certificate"
	const resetByPeer = "connection reset by peer"
	tests := []struct {
		name      string
		cert, key []byte
		wantCLI   string // in the docker CLI's stderr; "" means it must succeed
		wantLog   string // in dockerd's log after the forced presentation
	}{
		// The control for the expired case: same route, only the dates differ.
		{"current, issued with pki", currentCert, currentKey, "", ""},
		{"from another CA", readFile(t, filepath.Join(otherDir, "cert.pem")), readFile(t, filepath.Join(otherDir, "key.pem")),
			refused, "x509: certificate signed by unknown authority"},
		{"server certificate as client", readFile(t, filepath.Join(serverDir, "cert.pem")), readFile(t, filepath.Join(serverDir, "key.pem")),
			refused, "x509: certificate specifies an incompatible key usage"},
		{"expired", expiredCert, expiredKey,
			refused, "x509: certificate has expired or is not yet valid"},
	}
	addr := strings.TrimPrefix(td.host, "tcp://")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certDir := writeCertDir(t, caPEM, tt.cert, tt.key)
			env := []string{
				"DOCKER_HOST=" + td.host,
				"DOCKER_TLS_VERIFY=1",
				"DOCKER_CERT_PATH=" + certDir,
				"DOCKER_CONFIG=" + t.TempDir(),
			}
			stdout, stderr, err := dockertest.RunDocker(t.Context(), env, "version", "--format", "{{.Server.Version}}")
			switch {
			case tt.wantCLI == "" && (err != nil || strings.TrimSpace(stdout) != td.version):
				t.Errorf("docker version = %q, %v, want %q\nstderr: %s", stdout, err, td.version, stderr)
			case tt.wantCLI != "" && err == nil:
				t.Errorf("docker version succeeded (%q), want it refused", stdout)
			case tt.wantCLI != "" && !strings.Contains(stderr, tt.wantCLI) && !strings.Contains(stderr, resetByPeer):
				t.Errorf("docker version stderr = %q, want it to contain %q", stderr, tt.wantCLI)
			}

			err = pingPresenting(addr, caPEM, tt.cert, tt.key)
			if tt.wantLog == "" {
				if err != nil {
					t.Errorf("GET /_ping presenting the certificate: %v, want 200", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "remote error: tls: ") {
				t.Errorf("GET /_ping presenting the certificate: %v, want a TLS alert from the daemon", err)
			}
			if !waitForLog(td.daemon, tt.wantLog) {
				t.Errorf("dockerd's log does not say %q; it ends:\n%s", tt.wantLog, lastLines(td.daemon.Logs(), 10))
			}
		})
	}
}

// pingPresenting sends GET /_ping over TLS to addr, trusting caPEM and
// presenting the certificate whether or not the server asked for its
// issuer. It returns nil on a 200 answer.
func pingPresenting(addr string, caPEM, certPEM, keyPEM []byte) error {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("load key pair: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{
		RootCAs:    roots,
		ServerName: "127.0.0.1",
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &pair, nil
		},
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: conf}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	// With TLS 1.3 the server judges the client certificate after the
	// client's handshake is done, so a refusal arrives on the first read.
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// waitForLog waits briefly for text in the daemon's log: dockerd logs a
// failed handshake just after it sends the alert.
func waitForLog(d *dockertest.Daemon, text string) bool {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if strings.Contains(d.Logs(), text) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadCA reads the CA certificate and key dockgate init wrote.
func loadCA(t *testing.T, stateDir string, passphrase []byte) *pki.CA {
	t.Helper()
	cert, err := pki.ParseCertPEM(readFile(t, filepath.Join(stateDir, "ca", "ca.pem")))
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	key, err := pki.ParseKeyPEM(readFile(t, filepath.Join(stateDir, "ca", "ca-key.pem")), passphrase)
	if err != nil {
		t.Fatalf("parse CA key: %v", err)
	}
	return &pki.CA{Cert: cert, Key: key}
}

// issueClient issues a client certificate as if at time now, valid for
// validity, and returns it and its key as PEM.
func issueClient(t *testing.T, ca *pki.CA, name string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue(pki.LeafRequest{
		Kind: pki.KindClient, Name: name, PublicKey: key.Public(), Validity: validity, Now: now,
	})
	if err != nil {
		t.Fatalf("issue %s: %v", name, err)
	}
	keyPEM, err = pki.MarshalKeyPEM(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCertPEM(cert), keyPEM
}
