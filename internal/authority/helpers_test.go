package authority

import (
	"bytes"
	"context"
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

var ctx = context.Background()

func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testAuthority creates a state directory with an unencrypted CA, which
// keeps tests free of the passphrase's deliberately slow key derivation.
func testAuthority(t *testing.T) *Authority {
	t.Helper()
	st := openStore(t, filepath.Join(t.TempDir(), "state"))
	a, err := Init(st, InitOptions{CN: "test CA"})
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return a
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkBundle checks a bundle directory: modes, key matching certificate,
// certificate chaining to the CA with the right usage, ca.pem being the CA.
func checkBundle(t *testing.T, dir string, ca *x509.Certificate, kind pki.Kind) *x509.Certificate {
	t.Helper()
	caPath, certPath, keyPath := BundlePaths(dir)
	checkMode(t, caPath, 0o644)
	checkMode(t, certPath, 0o644)
	checkMode(t, keyPath, 0o600)
	cert, err := pki.ParseCertPEM(readFile(t, certPath))
	if err != nil {
		t.Fatal(err)
	}
	key, err := pki.ParseKeyPEM(readFile(t, keyPath), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !pki.KeyMatchesCert(key, cert) {
		t.Errorf("%s: key.pem does not match cert.pem", dir)
	}
	if !bytes.Equal(readFile(t, caPath), pki.EncodeCertPEM(ca)) {
		t.Errorf("%s: ca.pem is not the CA certificate", dir)
	}
	usage := x509.ExtKeyUsageClientAuth
	if kind == pki.KindServer {
		usage = x509.ExtKeyUsageServerAuth
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage},
		CurrentTime: cert.NotBefore.Add(time.Hour)}); err != nil {
		t.Errorf("%s: cert.pem does not verify: %v", dir, err)
	}
	return cert
}

// recordFor returns the inventory row of serial.
func recordFor(t *testing.T, st *store.Store, cert *x509.Certificate) store.Cert {
	t.Helper()
	c, err := st.CertBySerial(ctx, pki.SerialHex(cert.SerialNumber))
	if err != nil {
		t.Fatalf("certificate %s not recorded: %v", pki.SerialHex(cert.SerialNumber), err)
	}
	return c
}
