package doctor

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// testCA is a throwaway CA for tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t testing.TB, cn string) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
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
	return &testCA{cert: cert, key: key}
}

func (ca *testCA) pem() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// leafOpts shapes a server certificate; the zero value is a valid one for
// 127.0.0.1.
type leafOpts struct {
	dnsNames  []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	extUsage  []x509.ExtKeyUsage
}

func (ca *testCA) issue(t testing.TB, o leafOpts) tls.Certificate {
	t.Helper()
	if o.ips == nil && o.dnsNames == nil {
		o.ips = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	if o.extUsage == nil {
		o.extUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: "test server"},
		DNSNames:     o.dnsNames,
		IPAddresses:  o.ips,
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  o.extUsage,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func randomSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// bundleOf concatenates the PEM of CAs, like a distribution bundle.
func bundleOf(cas ...*testCA) []byte {
	var b []byte
	for _, ca := range cas {
		b = append(b, ca.pem()...)
	}
	return b
}

// tarEntry is one entry of a synthetic tar archive.
type tarEntry struct {
	name     string
	typeflag byte // 0: a regular file
	mode     int64
	body     []byte
	linkname string
}

func makeTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: e.mode, Linkname: e.linkname}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dir(name string) tarEntry { return tarEntry{name: name, typeflag: tar.TypeDir} }
func file(name string, body []byte) tarEntry {
	return tarEntry{name: name, body: body}
}
func exe(name string, body []byte) tarEntry {
	return tarEntry{name: name, body: body, mode: 0o755}
}
func symlink(name, target string) tarEntry {
	return tarEntry{name: name, typeflag: tar.TypeSymlink, linkname: target}
}

// testBinaries are the httpsget test client built static, with and without
// the embedded fallback roots, kept in memory.
var testBinaries struct {
	once     sync.Once
	err      error
	out      []byte
	plain    []byte
	fallback []byte
}

// httpsgetBinaries builds testdata/httpsget once per test binary.
func httpsgetBinaries(t testing.TB) (plain, withFallback []byte) {
	t.Helper()
	b := &testBinaries
	b.once.Do(func() {
		var dir string
		if dir, b.err = os.MkdirTemp("", "doctor-bin-"); b.err != nil {
			return
		}
		defer os.RemoveAll(dir)
		for _, v := range []struct {
			name, tags string
			dst        *[]byte
		}{{"plain", "", &b.plain}, {"fallback", "fallback", &b.fallback}} {
			out := filepath.Join(dir, v.name)
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-tags", v.tags, "-o", out, "./testdata/httpsget")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b.out, b.err = cmd.CombinedOutput(); b.err != nil {
				return
			}
			if *v.dst, b.err = os.ReadFile(out); b.err != nil {
				return
			}
		}
	})
	if b.err != nil {
		t.Fatalf("failed to build testdata/httpsget: %v\n%s", b.err, b.out)
	}
	return b.plain, b.fallback
}

// TestMain shares one test dockerd among the integration tests.
func TestMain(m *testing.M) { dockertest.Main(m) }
