package enroll

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// bodyEnv is a CA in a state directory and an enrollment server without
// listeners: the handler is called directly.
type bodyEnv struct {
	st      *store.Store
	auth    *authority.Authority
	handler http.Handler
}

func newBodyEnv(t testing.TB) *bodyEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth, err := authority.Init(st, authority.InitOptions{CN: "enroll body test CA"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Authority: auth, GatewayPort: "2376"}
	return &bodyEnv{st: st, auth: auth, handler: s.EnrollHandler()}
}

func (e *bodyEnv) token(t testing.TB, name string, uses int) Token {
	t.Helper()
	tok, err := CreateToken(ctx, e.st, TokenSpec{Name: name, TTL: time.Hour, Uses: uses, CertDays: 7,
		Addresses: []string{"127.0.0.1:1"}, CA: e.auth.Cert()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (e *bodyEnv) usesLeft(t testing.TB, name string) int {
	t.Helper()
	toks, err := e.st.Tokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Name == name {
			return tk.UsesLeft
		}
	}
	t.Fatalf("no token %q", name)
	return 0
}

func (e *bodyEnv) post(body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, EnrollPath, bytes.NewReader(body))
	req.RemoteAddr = "192.0.2.1:40000"
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return rec
}

// testCSR is a PEM CSR signed by a fresh key.
func testCSR(t testing.TB) []byte {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pki.EncodeCSRPEM(der)
}

// badSignatureCSR is testCSR with the last byte of its signature flipped:
// well formed, but not signed by the key it names.
func badSignatureCSR(t testing.TB) []byte {
	t.Helper()
	csr, err := pki.ParseCSRPEM(testCSR(t))
	if err != nil {
		t.Fatal(err)
	}
	der := bytes.Clone(csr.Raw)
	der[len(der)-1] ^= 0x01
	return pki.EncodeCSRPEM(der)
}

func enrollBody(t testing.TB, secret string, csr []byte) []byte {
	t.Helper()
	b, err := json.Marshal(enrollRequest{Secret: secret, CSR: string(csr)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEnrollRefusesBadCSRSignature: a CSR not signed by the key it names is
// refused before the token is looked up, so the token is not spent.
func TestEnrollRefusesBadCSRSignature(t *testing.T) {
	env := newBodyEnv(t)
	tok := env.token(t, "sig", 1)
	secret := base64.RawURLEncoding.EncodeToString(tok.Secret[:])
	rec := env.post(enrollBody(t, secret, badSignatureCSR(t)))
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "bad signature") {
		t.Fatalf("bad CSR signature: got %d %s, want 400 naming the bad signature", rec.Code, rec.Body)
	}
	if n := env.usesLeft(t, "sig"); n != 1 {
		t.Fatalf("the token has %d uses left after a refused CSR, want 1", n)
	}
	// The same token with a good CSR enrolls: the refusal was the CSR's.
	if rec := env.post(enrollBody(t, secret, testCSR(t))); rec.Code != http.StatusOK {
		t.Fatalf("good CSR: got %d %s", rec.Code, rec.Body)
	}
}

// FuzzEnrollBody feeds the enrollment endpoint arbitrary request bodies.
// It must answer every one (no panic), with 200 only for a body that names
// a live token's secret and a CSR whose signature checks, and otherwise with
// a client error that leaves the token's uses as they were. The token has
// more uses than the fuzzer can spend in one input, and each 200 is counted.
func FuzzEnrollBody(f *testing.F) {
	env := newBodyEnv(f)
	tok := env.token(f, "fuzz", 1_000_000)
	secret := base64.RawURLEncoding.EncodeToString(tok.Secret[:])
	good := testCSR(f)
	f.Add(enrollBody(f, secret, good))
	f.Add(enrollBody(f, secret, badSignatureCSR(f)))
	f.Add(enrollBody(f, "AAAA", good))
	f.Add(enrollBody(f, secret, []byte("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")))
	f.Add([]byte(`{"secret":"` + secret + `","csr":"x","extra":1}`))
	f.Add([]byte(`{"secret":"` + secret + `"}{"csr":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Add([]byte(`{"secret":null,"csr":null}`))
	f.Add([]byte(`{"Secret":"` + secret + `","CSR":"` + strings.ReplaceAll(string(good), "\n", `\n`) + `"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		before := env.usesLeft(t, "fuzz")
		rec := env.post(body)
		after := env.usesLeft(t, "fuzz")
		switch rec.Code {
		case http.StatusOK:
			var req enrollRequest
			if err := json.Unmarshal(body, &req); err != nil {
				t.Fatalf("200 for a body that is not JSON: %v", err)
			}
			if req.Secret != secret {
				t.Fatalf("200 for secret %q, not the token's", req.Secret)
			}
			csr, err := pki.ParseCSRPEM([]byte(req.CSR))
			if err != nil || csr.CheckSignature() != nil {
				t.Fatalf("200 for a CSR that does not parse or check: %v", err)
			}
			if after != before-1 {
				t.Fatalf("an enrollment took %d uses of the token, want 1", before-after)
			}
		case http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusRequestEntityTooLarge:
			if after != before {
				t.Fatalf("a refused body (%d) spent the token: %d -> %d uses", rec.Code, before, after)
			}
			var refusal struct{ Message string }
			if err := json.Unmarshal(rec.Body.Bytes(), &refusal); err != nil || refusal.Message == "" {
				t.Fatalf("refusal %d is not a JSON message: %q", rec.Code, rec.Body)
			}
		default:
			t.Fatalf("unexpected status %d: %s", rec.Code, rec.Body)
		}
	})
}
