package dockerconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testPKI is a CA with helpers to issue leaves, standing in for the
// certificates `dockgate issue` writes.
type testPKI struct {
	t     *testing.T
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	caPEM []byte
}

// leaf is an issued certificate with its PEM files.
type leaf struct {
	cert            *x509.Certificate
	certPEM, keyPEM []byte
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          newSerial(t),
		Subject:               pkix.Name{CommonName: "dockgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, cert: cert, key: key, caPEM: pemBlock("CERTIFICATE", der)}
}

type leafOpts struct {
	cn        string
	usage     x509.ExtKeyUsage
	dnsNames  []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
}

func (p *testPKI) issue(o leafOpts) leaf {
	p.t.Helper()
	key := newKey(p.t)
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: newSerial(p.t),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{o.usage},
		DNSNames:     o.dnsNames,
		IPAddresses:  o.ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		p.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return leaf{cert: cert, certPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("PRIVATE KEY", keyDER)}
}

func (p *testPKI) client(name string) leaf {
	return p.issue(leafOpts{cn: name, usage: x509.ExtKeyUsageClientAuth})
}

func (p *testPKI) server(name string, dnsNames []string, ips ...string) leaf {
	var parsed []net.IP
	for _, s := range ips {
		parsed = append(parsed, net.ParseIP(s))
	}
	return p.issue(leafOpts{cn: name, usage: x509.ExtKeyUsageServerAuth, dnsNames: dnsNames, ips: parsed})
}

// writeTo lays l out in Docker's layout in dir, as the state directory does.
func (p *testPKI) writeTo(t *testing.T, dir string, l leaf) CertFiles {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	files := FilesIn(dir)
	for path, data := range map[string][]byte{files.CA: p.caPEM, files.Cert: l.certPEM, files.Key: l.keyPEM} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// testContext is a valid context with fresh TLS material.
func testContext(t *testing.T, name string) Context {
	p := newTestPKI(t)
	l := p.client("alice")
	return Context{Name: name, Description: "test", Host: "tcp://127.0.0.1:2376", CA: p.caPEM, Cert: l.certPEM, Key: l.keyPEM}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func newSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(t *testing.T, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}
