package enroll

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
)

func TestLoginEnrollsAClient(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	tok := env.token("alice", 1, time.Minute, "devs", "admins")
	creds, err := Login(ctx, tok, LoginOptions{})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if creds.Name != "alice" {
		t.Errorf("name = %q, want alice", creds.Name)
	}
	if got, want := creds.Host, "tcp://"+env.gwAddr; got != want {
		t.Errorf("host = %q, want %q", got, want)
	}
	cert := mustParseCert(t, creds.CertPEM)
	if got := slices.Sorted(slices.Values(cert.Subject.Organization)); !slices.Equal(got, []string{"admins", "devs"}) {
		t.Errorf("groups = %v, want [admins devs]", got)
	}
	if got, want := cert.NotAfter.Sub(cert.NotBefore), 7*24*time.Hour+pki.Backdate; got != want {
		t.Errorf("lifetime %v, want %v", got, want)
	}
	if !mustParseCert(t, creds.CAPEM).Equal(env.auth.Cert()) {
		t.Error("the CA in the credentials is not the gateway's")
	}
	key, err := pki.ParseKeyPEM(creds.KeyPEM, nil)
	if err != nil || !pki.KeyMatchesCert(key, cert) {
		t.Fatalf("key.pem does not belong to cert.pem: %v", err)
	}
	if kt, _ := pki.KeyTypeOf(key); kt != ClientKeyType {
		t.Errorf("key type %s, want %s", kt, ClientKeyType)
	}
	t.Run("the certificate works on the gateway", func(t *testing.T) {
		gw, err := NewGateway(creds.Host, creds.CAPEM, creds.CertPEM, creds.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		who, err := gw.Whoami(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if who.CN != "alice" || who.Serial != pki.SerialHex(cert.SerialNumber) {
			t.Errorf("whoami = %+v", who)
		}
	})
	t.Run("the token is spent", func(t *testing.T) {
		if got := env.usesLeft("alice"); got != 0 {
			t.Errorf("uses left %d, want 0", got)
		}
	})
	t.Run("the audit log has the attempt but not the secret", func(t *testing.T) {
		logs := env.logs.String()
		if !strings.Contains(logs, "event=enroll") || !strings.Contains(logs, "result=ok") || !strings.Contains(logs, "token=alice") {
			t.Errorf("no audit line for the enrollment:\n%s", logs)
		}
		secret := tok.String()[len(TokenPrefix):][:20]
		if strings.Contains(logs, secret) || strings.Contains(logs, fmt.Sprintf("%x", tok.Secret)) {
			t.Errorf("the log contains the secret:\n%s", logs)
		}
	})
}

func TestLoginRefusesBadTokens(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	used := env.token("used", 1, time.Minute)
	if _, err := Login(ctx, used, LoginOptions{}); err != nil {
		t.Fatal(err)
	}
	revoked := env.token("revoked", 1, time.Minute)
	if err := env.st.RevokeToken(ctx, "revoked", time.Now()); err != nil {
		t.Fatal(err)
	}
	expired := env.token("expired", 1, time.Millisecond)
	// Not a wait for an event: the token's 1 ms lifetime must pass, on
	// the server's real clock, for it to be expired.
	time.Sleep(5 * time.Millisecond)
	unknown := env.token("unknown", 1, time.Minute)
	unknown.Secret[0] ^= 0xff
	tests := []struct {
		name string
		tok  Token
		want error
		msg  string
	}{
		{"reused", used, ErrTokenUsed, "already been used"},
		{"revoked", revoked, ErrTokenRevoked, "has been revoked"},
		{"expired", expired, ErrTokenExpired, "has expired"},
		{"unknown", unknown, ErrUnknownToken, "unknown token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Login(ctx, tt.tok, LoginOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Login: got %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
			if !strings.Contains(env.logs.String(), "result="+codeFor(tt.want)) {
				t.Errorf("no audit line with result=%s", codeFor(tt.want))
			}
		})
	}
}

func codeFor(err error) string {
	for code, e := range codeErrors {
		if e == err {
			return code
		}
	}
	return ""
}

func TestConcurrentLoginsWithOneToken(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	tok := env.token("race", 1, time.Minute)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = Login(ctx, tok, LoginOptions{})
		}()
	}
	wg.Wait()
	var won, used int
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, ErrTokenUsed):
			used++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 || used != n-1 {
		t.Fatalf("%d logins won and %d were told the token is used; want 1 and %d", won, used, n-1)
	}
	certs, err := env.st.CertsByName(ctx, "race")
	if err != nil || len(certs) != 1 {
		t.Errorf("%d certificates named race (%v), want 1", len(certs), err)
	}
}

func TestMultiUseTokenNamesEachMachine(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	tok := env.token("ci", 3, time.Minute, "builders")
	var names []string
	for range 3 {
		creds, err := Login(ctx, tok, LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, creds.Name)
	}
	if want := []string{"ci", "ci-2", "ci-3"}; !slices.Equal(names, want) {
		t.Errorf("names %v, want %v", names, want)
	}
	if _, err := Login(ctx, tok, LoginOptions{}); !errors.Is(err, ErrTokenUsed) {
		t.Errorf("fourth login: %v, want ErrTokenUsed", err)
	}
}

func TestLoginPinsTheCA(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	otherCA, otherCert := otherCA(t)
	t.Run("another CA at the token's address", func(t *testing.T) {
		// An impostor gateway with its own CA, answering like ours.
		impostor := &countingHandler{next: caOnly(otherCA.Cert)}
		addr := serveTLS(t, otherCert, impostor)
		tok := env.token("victim1", 1, time.Minute)
		tok.Addresses = []string{addr}
		_, err := Login(ctx, tok, LoginOptions{})
		if !errors.Is(err, ErrCAMismatch) {
			t.Fatalf("Login: got %v, want ErrCAMismatch", err)
		}
		for _, want := range []string{"wrong token", "intercepting", "nothing was sent", "intercepting CA"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		if impostor.count(EnrollPath) != 0 {
			t.Error("the secret was sent to the impostor")
		}
		if env.usesLeft("victim1") != 1 {
			t.Error("the token was spent")
		}
	})
	t.Run("a relay that shows our CA but its own certificate", func(t *testing.T) {
		relay := &countingHandler{next: caOnly(env.auth.Cert())}
		addr := serveTLS(t, otherCert, relay)
		tok := env.token("victim2", 1, time.Minute)
		tok.Addresses = []string{addr}
		_, err := Login(ctx, tok, LoginOptions{})
		if !errors.Is(err, ErrCAMismatch) || !strings.Contains(err.Error(), "intercepting") {
			t.Fatalf("Login: got %v, want ErrCAMismatch saying interception", err)
		}
		if relay.count(EnrollPath) != 0 {
			t.Error("the secret was sent to the relay")
		}
	})
	t.Run("a mismatch stops before the next address", func(t *testing.T) {
		impostor := &countingHandler{next: caOnly(otherCA.Cert)}
		tok := env.token("victim3", 1, time.Minute)
		tok.Addresses = []string{serveTLS(t, otherCert, impostor), env.enrollAddr}
		if _, err := Login(ctx, tok, LoginOptions{}); !errors.Is(err, ErrCAMismatch) {
			t.Fatalf("Login: got %v, want ErrCAMismatch", err)
		}
		if env.usesLeft("victim3") != 1 {
			t.Error("the login went on to the next address after a CA mismatch")
		}
	})
}

// caOnly answers GET CAPath with ca and refuses everything else, as an
// impostor that has yet to see a secret would.
func caOnly(ca *x509.Certificate) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == CAPath {
			w.Write(pki.EncodeCertPEM(ca))
			return
		}
		http.Error(w, "impostor", http.StatusForbidden)
	})
}

func TestLoginTriesTheNextAddress(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	dead := listen(t)
	deadAddr := dead.Addr().String()
	dead.Close()
	tok := env.token("bob", 1, time.Minute)
	tok.Addresses = []string{deadAddr, env.enrollAddr}
	var tried []string
	creds, err := Login(ctx, tok, LoginOptions{Progress: func(f string, a ...any) { tried = append(tried, fmt.Sprintf(f, a...)) }})
	if err != nil {
		t.Fatalf("Login: %v", err)
	}
	if creds.Name != "bob" || len(tried) != 2 {
		t.Errorf("name %q after trying %v", creds.Name, tried)
	}
	t.Run("no address answers", func(t *testing.T) {
		tok := env.token("nobody", 1, time.Minute)
		tok.Addresses = []string{deadAddr}
		_, err := Login(ctx, tok, LoginOptions{})
		if err == nil || !strings.Contains(err.Error(), "failed to reach the gateway") || !strings.Contains(err.Error(), deadAddr) {
			t.Fatalf("Login: got %v, want an error naming %s", err, deadAddr)
		}
	})
}

func TestFailedAttemptsAreRateLimited(t *testing.T) {
	env := newTestEnv(t, envOptions{maxFailures: 3})
	good := env.token("good", 1, time.Minute)
	for i := range 3 {
		bad := good
		bad.Secret[0] ^= byte(i + 1)
		if _, err := Login(ctx, bad, LoginOptions{}); !errors.Is(err, ErrUnknownToken) {
			t.Fatalf("attempt %d: %v, want ErrUnknownToken", i+1, err)
		}
	}
	_, err := Login(ctx, good, LoginOptions{})
	if !errors.Is(err, ErrRateLimited) || !strings.Contains(err.Error(), "127.0.0.1") {
		t.Fatalf("after 3 failures: %v, want ErrRateLimited naming the address", err)
	}
	if env.usesLeft("good") != 1 {
		t.Error("a refused address spent a token")
	}
	if !strings.Contains(env.logs.String(), "result=rate_limited") {
		t.Error("the refusal is not in the audit log")
	}
}

func TestEnrollListenerServesOnlyEnrollment(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer client.CloseIdleConnections()
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/_ping", http.StatusNotFound},
		{"HEAD", "/_ping", http.StatusNotFound},
		{"GET", "/version", http.StatusNotFound},
		{"GET", "/v1.43/containers/json", http.StatusNotFound},
		{"POST", "/v1.43/containers/create", http.StatusNotFound},
		{"POST", "/containers/abc/attach", http.StatusNotFound},
		{"POST", "/exec/abc/start", http.StatusNotFound},
		{"GET", "/v1.43/images/json", http.StatusNotFound},
		{"POST", "/session", http.StatusNotFound},
		{"GET", "/dockgate/v1/whoami", http.StatusNotFound},
		{"POST", RenewPath, http.StatusNotFound},
		{"GET", "/dockgate/v1/enroll/../../_ping", http.StatusNotFound},
		{"GET", EnrollPath, http.StatusMethodNotAllowed},
		{"POST", CAPath, http.StatusMethodNotAllowed},
		{"GET", CAPath, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "https://"+env.enrollAddr+tt.path, strings.NewReader("{}"))
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tt.want, body)
			}
			if resp.Header.Get("Api-Version") != "" || strings.Contains(string(body), "ApiVersion") {
				t.Error("the answer comes from a Docker daemon")
			}
		})
	}
}

func TestGatewayPortRefusesClientsWithoutCertificate(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	conn, err := tls.Dial("tcp", env.gwAddr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		// TLS 1.3: the refusal arrives with the first read.
		conn.Write([]byte("GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") && !strings.Contains(err.Error(), "bad certificate") {
		t.Fatalf("handshake without a client certificate: %v, want a refusal", err)
	}
	t.Run("nor can a client certificate renew on the enrollment port", func(t *testing.T) {
		creds, err := Login(ctx, env.token("carol", 1, time.Minute), LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		host := "tcp://" + env.enrollAddr
		gw, err := NewGateway(host, creds.CAPEM, creds.CertPEM, creds.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		defer gw.Close()
		if _, err := gw.Renew(ctx, time.Now()); err == nil || !strings.Contains(err.Error(), "only enrolls new clients") {
			t.Fatalf("renew on the enrollment port: %v, want a 404", err)
		}
	})
}

func TestRenewOverMutualTLS(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	creds, err := Login(ctx, env.token("dave", 1, time.Minute, "ops"), LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := NewGateway(creds.Host, creds.CAPEM, creds.CertPEM, creds.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	renewed, err := gw.Renew(ctx, time.Now())
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	old, cert := creds.Cert, renewed.Cert
	if cert.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Error("renewal kept the serial")
	}
	if cert.Subject.String() != old.Subject.String() {
		t.Errorf("subject %s, want %s", cert.Subject, old.Subject)
	}
	if string(renewed.KeyPEM) == string(creds.KeyPEM) {
		t.Error("renewal kept the key")
	}
	if renewed.Host != creds.Host {
		t.Errorf("host %q, want %q", renewed.Host, creds.Host)
	}
	if !strings.Contains(env.logs.String(), "event=renew") {
		t.Error("no audit line for the renewal")
	}

	t.Run("revoked certificates cannot renew", func(t *testing.T) {
		if _, err := authority.Revoke(ctx, env.st, pki.SerialHex(cert.SerialNumber), "key-compromise", time.Now()); err != nil {
			t.Fatal(err)
		}
		gw2, err := NewGateway(renewed.Host, renewed.CAPEM, renewed.CertPEM, renewed.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		defer gw2.Close()
		// Until the gateway has polled the revocation, a request may still
		// get through (and be refused by the enrollment server's own
		// inventory check) or be cut (EOF); once it has, the gateway
		// answers the revoked certificate's request itself, with the way
		// out.
		const wayOut = "then run: dockgate login TOKEN"
		err = waitForRefusal(func() error { _, err := gw2.Renew(ctx, time.Now()); return err }, ErrCertRevoked, wayOut)
		if !errors.Is(err, ErrCertRevoked) || !strings.Contains(err.Error(), wayOut) {
			t.Fatalf("Renew with a revoked certificate: %v, want ErrCertRevoked saying to enroll again", err)
		}
	})
	t.Run("expired certificates cannot renew", func(t *testing.T) {
		_, err := gw.Renew(ctx, old.NotAfter.Add(time.Second))
		if !errors.Is(err, ErrCertExpired) || !strings.Contains(err.Error(), "enroll again") {
			t.Fatalf("Renew after expiry: %v, want ErrCertExpired saying to enroll again", err)
		}
	})
}

// waitForRefusal retries fn until it fails with want and an error that
// says saying, while the gateway has not yet polled a fresh revocation.
func waitForRefusal(fn func() error, want error, saying string) error {
	var err error
	// The gateway polls every 20 ms here; a loaded machine (-race, other
	// packages' tests) can delay that by seconds.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if err = fn(); errors.Is(err, want) && strings.Contains(err.Error(), saying) {
			return err
		}
	}
	return err
}

// CheckListener finds the enrollment listener of this CA, and tells an
// empty port and another CA's listener apart from it.
func TestCheckListener(t *testing.T) {
	env := newTestEnv(t, envOptions{})
	if err := CheckListener(ctx, env.enrollAddr, env.auth.Cert()); err != nil {
		t.Errorf("CheckListener(running listener) = %v, want nil", err)
	}
	other := newTestEnv(t, envOptions{})
	if err := CheckListener(ctx, other.enrollAddr, env.auth.Cert()); !errors.Is(err, ErrCAMismatch) {
		t.Errorf("CheckListener(another CA's listener) = %v, want ErrCAMismatch", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if err := CheckListener(ctx, closed, env.auth.Cert()); err == nil {
		t.Error("CheckListener(nothing listening) = nil, want an error")
	}
}
