package enroll

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// hostToken creates a host token for the enrollment listener.
func (e *testEnv) hostToken(name string) Token {
	e.t.Helper()
	tok, err := CreateToken(ctx, e.st, TokenSpec{Name: name, Host: true, TTL: DefaultHostTokenTTL, Uses: 1,
		CertDays: DefaultHostCertDays, Addresses: []string{e.enrollAddr}, CA: e.auth.Cert()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func TestJoinIssuesAServerCertificate(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	tok := env.hostToken("dock2")
	sans := []string{"dock2.example.net", "192.0.2.7", "localhost", "127.0.0.1", "::1"}
	creds, err := Join(ctx, tok, sans, LoginOptions{})
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	cert := mustParseCert(t, creds.CertPEM)
	if cert.Subject.CommonName != "dock2" || creds.Name != "dock2" {
		t.Errorf("name = %q (%q), want dock2", cert.Subject.CommonName, creds.Name)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v, want serverAuth alone", cert.ExtKeyUsage)
	}
	if !slices.Equal(cert.DNSNames, []string{"dock2.example.net", "localhost"}) {
		t.Errorf("DNS names %v, want [dock2.example.net localhost]", cert.DNSNames)
	}
	for _, ip := range []string{"192.0.2.7", "127.0.0.1", "::1"} {
		if !slices.ContainsFunc(cert.IPAddresses, net.ParseIP(ip).Equal) {
			t.Errorf("IP addresses %v lack %s", cert.IPAddresses, ip)
		}
	}
	if got, want := cert.NotAfter.Sub(cert.NotBefore), DefaultHostCertDays*24*time.Hour+pki.Backdate; got != want {
		t.Errorf("lifetime %v, want %v", got, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(env.auth.Cert())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "dock2.example.net"}); err != nil {
		t.Errorf("the certificate does not verify for dock2.example.net against the CA: %v", err)
	}
	if !mustParseCert(t, creds.CAPEM).Equal(env.auth.Cert()) {
		t.Error("the CA in the answer is not the gateway's")
	}
	key, err := pki.ParseKeyPEM(creds.KeyPEM, nil)
	if err != nil || !pki.KeyMatchesCert(key, cert) {
		t.Fatalf("the key does not belong to the certificate: %v", err)
	}
	recs, err := env.st.CertsByName(ctx, "dock2")
	if err != nil || len(recs) != 1 {
		t.Fatalf("inventory for dock2 = %v, %v; want one row", recs, err)
	}
	if r := recs[0]; r.Kind != store.KindServer || r.Pending() || r.Serial != pki.SerialHex(cert.SerialNumber) {
		t.Errorf("inventory row %+v, want the issued server certificate %s", r, pki.SerialHex(cert.SerialNumber))
	}
	if env.usesLeft("dock2") != 0 {
		t.Error("the host token was not spent")
	}
	t.Run("a spent host token is refused", func(t *testing.T) {
		if _, err := Join(ctx, tok, sans, LoginOptions{}); !errors.Is(err, ErrTokenUsed) {
			t.Fatalf("second Join: %v, want ErrTokenUsed", err)
		}
	})
}

func TestTokensYieldOnlyTheirKind(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	t.Run("a host token gives no client certificate", func(t *testing.T) {
		tok := env.hostToken("dock3")
		if _, err := Login(ctx, tok, LoginOptions{}); !errors.Is(err, ErrTokenKind) {
			t.Fatalf("Login with a host token: %v, want ErrTokenKind", err)
		}
		if env.usesLeft("dock3") != 1 {
			t.Error("the refused login spent the host token")
		}
		assertNoCert(t, env, "dock3")
	})
	t.Run("a client token gives no server certificate", func(t *testing.T) {
		tok := env.token("alice", 1, time.Minute, "admins")
		if _, err := Join(ctx, tok, []string{"alice.example.net"}, LoginOptions{}); !errors.Is(err, ErrTokenKind) {
			t.Fatalf("Join with a client token: %v, want ErrTokenKind", err)
		}
		if env.usesLeft("alice") != 1 {
			t.Error("the refused join spent the client token")
		}
		assertNoCert(t, env, "alice")
	})
}

func assertNoCert(t *testing.T, env *testEnv, name string) {
	t.Helper()
	if recs, err := env.st.CertsByName(ctx, name); err != nil || len(recs) != 0 {
		t.Errorf("inventory for %s = %v, %v; want nothing issued", name, recs, err)
	}
}

func TestJoinRespectsTheFailureLimit(t *testing.T) {
	env := newTestEnv(t, envOptions{maxFailures: 1})
	client := env.token("alice", 1, time.Minute)
	if _, err := Join(ctx, client, []string{"alice.example.net"}, LoginOptions{}); !errors.Is(err, ErrTokenKind) {
		t.Fatalf("Join with a client token: %v, want ErrTokenKind", err)
	}
	if _, err := Join(ctx, env.hostToken("dock2"), []string{"dock2.example.net"}, LoginOptions{}); !errors.Is(err, ErrRateLimited) {
		t.Fatalf("Join after a failure: %v, want ErrRateLimited", err)
	}
	if env.usesLeft("dock2") != 1 {
		t.Error("a refused address spent a host token")
	}
}

func TestJoinRefusesBadNamesBeforeSpending(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	tok := env.hostToken("dock2")
	for _, sans := range [][]string{nil, {"bad name"}} {
		if _, err := Join(ctx, tok, sans, LoginOptions{}); err == nil {
			t.Errorf("Join(%q) succeeded", sans)
		}
	}
	if env.usesLeft("dock2") != 1 {
		t.Error("a refused request spent the host token")
	}
}

// The server checks a join's names itself, before the token is spent, and
// refuses names in a client's request.
func TestEnrollServerChecksNamesBeforeSpending(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	host := env.hostToken("dock2")
	client := env.token("alice", 1, time.Minute)
	_, csr, err := NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	hc := verifiedClient(env.auth.Cert(), "127.0.0.1", nil)
	defer hc.CloseIdleConnections()
	for _, tt := range []struct {
		name string
		req  enrollRequest
		tok  string
	}{
		{"no names", enrollRequest{Secret: secretOf(host), CSR: string(csr), Kind: "server"}, "dock2"},
		{"a bad name", enrollRequest{Secret: secretOf(host), CSR: string(csr), Kind: "server", SANs: []string{"bad name"}}, "dock2"},
		{"an unknown kind", enrollRequest{Secret: secretOf(host), CSR: string(csr), Kind: "ca"}, "dock2"},
		{"names for a client", enrollRequest{Secret: secretOf(client), CSR: string(csr), SANs: []string{"alice.example.net"}}, "alice"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, _ := json.Marshal(tt.req)
			var resp certResponse
			err := postJSON(ctx, hc, "https://"+env.enrollAddr+EnrollPath, body, &resp)
			var r *refusal
			if !errors.As(err, &r) {
				t.Fatalf("answer %v, want the server's refusal", err)
			}
			if env.usesLeft(tt.tok) != 1 {
				t.Errorf("the refused request spent token %s", tt.tok)
			}
		})
	}
}

func secretOf(tok Token) string { return base64.RawURLEncoding.EncodeToString(tok.Secret[:]) }
