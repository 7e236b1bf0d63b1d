package pki

import (
	"crypto"
	"crypto/x509"
	"sync"
	"testing"
	"time"
)

// testNow is a fixed issuance time, so validity checks are exact.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var (
	keyCacheMu sync.Mutex
	keyCache   = map[KeyType]crypto.Signer{}
)

// testKey returns a key of type kt, generated once per test binary: RSA-4096
// generation takes seconds and the tests only need distinct key types.
func testKey(t testing.TB, kt KeyType) crypto.Signer {
	t.Helper()
	keyCacheMu.Lock()
	defer keyCacheMu.Unlock()
	if k, ok := keyCache[kt]; ok {
		return k
	}
	k, err := GenerateKey(kt)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", kt, err)
	}
	keyCache[kt] = k
	return k
}

func newTestCA(t testing.TB, kt KeyType) *CA {
	t.Helper()
	ca, err := NewCA("dockgate test CA", testKey(t, kt), 0, testNow)
	if err != nil {
		t.Fatalf("NewCA(%s): %v", kt, err)
	}
	return ca
}

func issueTest(t testing.TB, ca *CA, req LeafRequest) *x509.Certificate {
	t.Helper()
	if req.Now.IsZero() {
		req.Now = testNow
	}
	cert, err := ca.Issue(req)
	if err != nil {
		t.Fatalf("Issue(%s %s): %v", req.Kind, req.Name, err)
	}
	return cert
}
