package e2e

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
)

// mintWithCAKey signs an admin client certificate with the CA key directly,
// as someone who copied the key would, never through dockgate: it is not in
// the inventory. eku nil leaves the extended key usage out altogether.
func mintWithCAKey(t *testing.T, g *gatewayEnv, cn string, eku []x509.ExtKeyUsage) string {
	t.Helper()
	ca := loadCA(t, g.cli.stateDir, nil)
	key, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := pki.NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"admins"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return writeCertDir(t, readFile(t, filepath.Join(g.certDir, "ca.pem")),
		pki.EncodeCertPEM(&x509.Certificate{Raw: der}), keyPEM)
}

// refusedAtHandshake runs docker version as the client in dir and fails
// the test unless the gateway refused it at the TLS handshake.
func refusedAtHandshake(t *testing.T, g *gatewayEnv, dir string) {
	t.Helper()
	_, errOut, err := g.dockerAs(dir, nil, "version", "--format", "{{.Server.Version}}")
	if err == nil {
		t.Fatal("docker version succeeded")
	}
	if !strings.Contains(errOut, "remote error: tls: ") && !strings.Contains(errOut, "connection reset by peer") &&
		!strings.Contains(errOut, "broken pipe") {
		t.Fatalf("error is not a refusal at the TLS handshake: %s", errOut)
	}
}

// metric reads one line of the gateway's /metrics.
func (g *gatewayEnv) metric(t *testing.T, series string) string {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, series+" ") {
			return strings.TrimPrefix(line, series+" ")
		}
	}
	return ""
}

func TestGatewayRefusesCertificatesOutsideTheInventory(t *testing.T) {
	g := startGatewayEnv(t)
	minted := mintWithCAKey(t, g, "mallory", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	noUsage := mintWithCAKey(t, g, "mallory2", nil)

	t.Run("signed with the CA key outside dockgate", func(t *testing.T) {
		refusedAtHandshake(t, g, minted)
		if !strings.Contains(g.logs.String(), "reason=unknown_serial") {
			t.Errorf("no log line names the reason:\n%s", g.logs.String())
		}
		if got := g.metric(t, `dockgate_handshake_failures_total{reason="unknown_serial"}`); got == "" || got == "0" {
			t.Errorf("handshake_failures_total{reason=unknown_serial} = %q, want at least 1", got)
		}
	})
	t.Run("no extended key usage", func(t *testing.T) {
		refusedAtHandshake(t, g, noUsage)
		if !strings.Contains(g.logs.String(), "does not carry the clientAuth extended key usage") {
			t.Errorf("no log line names the reason:\n%s", g.logs.String())
		}
	})
	t.Run("the admin issued by dockgate still works", func(t *testing.T) {
		g.docker("version")
	})
}

// eventually retries check until it returns true or the deadline passes.
func eventually(t *testing.T, within time.Duration, check func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if check() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGatewayRefusesTheCertificateARenewalReplaced(t *testing.T) {
	g := startGatewayEnv(t)
	opsOld := filepath.Join(t.TempDir(), "ops-old")
	g.cli.run("issue", "client", "ops", "--group", "admins", "--out", opsOld)
	devOld := filepath.Join(t.TempDir(), "dev-old")
	g.cli.run("issue", "client", "dev", "--group", "admins", "--out", devOld)
	for _, dir := range []string{opsOld, devOld} {
		if _, errOut, err := g.dockerAs(dir, nil, "ps"); err != nil {
			t.Fatalf("before renewal: %v: %s", err, errOut)
		}
	}

	g.cli.run("renew", "ops")
	g.cli.run("renew", "dev", "--keep-old", "1h")
	works := func(dir string) bool { _, _, err := g.dockerAs(dir, nil, "ps"); return err == nil }
	if !eventually(t, 5*time.Second, func() bool { return !works(opsOld) }) {
		t.Fatal("the certificate renew replaced is still accepted 5 s later")
	}
	// The handshake completes; the docker CLI prints the gateway's answer.
	_, errOut, _ := g.dockerAs(opsOld, nil, "ps")
	for _, want := range []string{`Error response from daemon: dockgate: certificate "ops" (serial `, ") was replaced by a renewal at ",
		"use the renewed certificate", "dockgate token create ops"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("the docker CLI's error lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(g.logs.String(), "reason=superseded") {
		t.Errorf("no log line says the certificate was superseded:\n%s", g.logs.String())
	}
	opsNew := filepath.Join(g.cli.stateDir, "clients", "ops")
	if _, errOut, err := g.dockerAs(opsNew, nil, "ps"); err != nil {
		t.Errorf("the renewed certificate: %v: %s", err, errOut)
	}
	if _, errOut, err := g.dockerAs(devOld, nil, "ps"); err != nil {
		t.Errorf("renewed with --keep-old 1h, the previous certificate is refused: %v: %s", err, errOut)
	}
}
