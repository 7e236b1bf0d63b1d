package doctor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/policy"
	"github.com/dockgate/dockgate/internal/store"
)

// endpointEnv is a CA, a gateway on loopback in front of a fake daemon,
// and helpers to mint client material, good or planted with a fault.
type endpointEnv struct {
	t       *testing.T
	ca      *pki.CA
	addr    string // 127.0.0.1:PORT
	mu      sync.Mutex
	revoked map[string]time.Time
	// superseded holds renewed serials, by the end of their overlap.
	superseded map[string]time.Time
	issued     map[string]bool // the gateway's inventory: every serial e.issue made
}

func newEndpointEnv(t *testing.T, serverSANs ...string) *endpointEnv {
	t.Helper()
	e := &endpointEnv{t: t, ca: newPKICA(t, "gateway CA"), revoked: map[string]time.Time{}, superseded: map[string]time.Time{}, issued: map[string]bool{}}
	if len(serverSANs) == 0 {
		serverSANs = []string{"127.0.0.1", "localhost"}
	}
	socket := filepath.Join(t.TempDir(), "d.sock")
	startFakeDaemon(t, socket)
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + socket
	cfg.Clients = []config.ClientRule{{Group: "admins", Role: config.RoleAdmin}}
	cfg.Limits.ShutdownTimeout = time.Second
	server := e.issue(pki.LeafRequest{Kind: pki.KindServer, Name: "gateway", DNSNames: dnsOf(serverSANs), IPs: ipsOf(serverSANs)})
	pol, err := policy.Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	material := &gateway.Material{ServerCert: server, CA: gateway.NewCA(e.ca.Cert), Config: &cfg, Policy: pol}
	g, err := gateway.New(gateway.Options{
		Load:           func() (*gateway.Material, error) { return material, nil },
		Inventory:      e.standings,
		RevocationPoll: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.ServeListeners(ctx, ln, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return e
}

func (e *endpointEnv) standings(context.Context) (map[string]store.Standing, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]store.Standing{}
	for k := range e.issued {
		out[k] = store.Standing{State: store.StateIssued, RevokedAt: e.revoked[k], SupersededAt: e.superseded[k]}
	}
	return out, nil
}

// revoke revokes c and waits until the gateway refuses it.
func (e *endpointEnv) revoke(c tls.Certificate) {
	e.mu.Lock()
	e.revoked[c.Leaf.SerialNumber.Text(16)] = time.Now()
	e.mu.Unlock()
	e.waitRefused(c)
}

// supersede marks c replaced by a renewal and waits until the gateway
// refuses it.
func (e *endpointEnv) supersede(c tls.Certificate) {
	e.mu.Lock()
	e.superseded[c.Leaf.SerialNumber.Text(16)] = time.Now()
	e.mu.Unlock()
	e.waitRefused(c)
}

func (e *endpointEnv) waitRefused(c tls.Certificate) {
	for range 500 {
		if e.refuses(c) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("the gateway still accepts the certificate")
}

// refuses reports whether the gateway answers c's requests with the 403
// of a revoked or superseded certificate.
func (e *endpointEnv) refuses(c tls.Certificate) bool {
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, Certificates: []tls.Certificate{c}}}}
	resp, err := client.Get("https://" + e.addr + "/_ping")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusForbidden && resp.Header.Get(identity.RefusedHeader) != ""
}

func (e *endpointEnv) issue(req pki.LeafRequest) tls.Certificate {
	c := issueWith(e.t, e.ca, req)
	e.mu.Lock()
	e.issued[c.Leaf.SerialNumber.Text(16)] = true
	e.mu.Unlock()
	return c
}

func (e *endpointEnv) client(groups ...string) tls.Certificate {
	return e.issue(pki.LeafRequest{Kind: pki.KindClient, Name: "alice", Groups: groups})
}

// options are what a docker context with this material would give doctor.
func (e *endpointEnv) options(host string, ca *x509.Certificate, c tls.Certificate) EndpointOptions {
	return EndpointOptions{Host: "tcp://" + host, TLS: true, Verify: true,
		CA: pki.EncodeCertPEM(ca), Cert: certPEM(c), Key: keyPEM(e.t, c.PrivateKey), Timeout: 5 * time.Second}
}

func newPKICA(t *testing.T, cn string) *pki.CA {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA(cn, key, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issueWith(t *testing.T, ca *pki.CA, req pki.LeafRequest) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	req.PublicKey = key.Public()
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	cert, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
}

func certPEM(c tls.Certificate) []byte { return pki.EncodeCertPEM(c.Leaf) }

func keyPEM(t *testing.T, key crypto.PrivateKey) []byte {
	t.Helper()
	data, err := pki.MarshalKeyPEM(key.(crypto.Signer), nil)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func dnsOf(sans []string) (out []string) {
	for _, s := range sans {
		if net.ParseIP(s) == nil {
			out = append(out, s)
		}
	}
	return out
}

func ipsOf(sans []string) (out []net.IP) {
	for _, s := range sans {
		if ip := net.ParseIP(s); ip != nil {
			out = append(out, ip)
		}
	}
	return out
}

// startFakeDaemon answers /_ping like dockerd on a unix socket.
func startFakeDaemon(t *testing.T, socket string) {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.47")
		w.Header().Set("Ostype", "linux")
		w.Write([]byte("OK"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func checkOf(t *testing.T, rep EndpointReport, id string) Check {
	t.Helper()
	for _, c := range rep.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %q in the report", id)
	return Check{}
}

func reportText(rep EndpointReport) string {
	var b bytes.Buffer
	rep.WriteText(&b)
	return b.String()
}

func TestCheckEndpointAllPass(t *testing.T) {
	e := newEndpointEnv(t)
	rep := CheckEndpoint(context.Background(), e.options(e.addr, e.ca.Cert, e.client("admins")))
	if !rep.OK {
		t.Fatalf("report not OK:\n%s", reportText(rep))
	}
	for _, c := range rep.Checks {
		if c.Status != StatusOK {
			t.Errorf("%s: %s %s", c.ID, c.Status, c.Detail)
		}
	}
	if got := checkOf(t, rep, CheckIdentity).Detail; !strings.Contains(got, "CN=alice groups=[admins], role admin") {
		t.Errorf("identity detail %q", got)
	}
	if got := checkOf(t, rep, CheckAPIPing).Detail; !strings.Contains(got, "API version 1.47, linux") {
		t.Errorf("ping detail %q", got)
	}
	if text := reportText(rep); !strings.Contains(text, "✓ name resolution") || !strings.Contains(text, "all checks passed") || strings.Contains(text, "✗") {
		t.Errorf("text report:\n%s", text)
	}
	data, err := json.Marshal(rep)
	if err != nil || !bytes.Contains(data, []byte(`"id":"client-revoked","name":"client certificate revocation","status":"ok"`)) {
		t.Errorf("JSON report %s (%v)", data, err)
	}
}

func TestCheckEndpointPlantedFaults(t *testing.T) {
	e := newEndpointEnv(t, "127.0.0.1")
	other := newPKICA(t, "other CA")
	good := e.client("admins")
	expired := e.issue(pki.LeafRequest{Kind: pki.KindClient, Name: "old", Groups: []string{"admins"},
		Validity: time.Hour, Now: time.Now().Add(-2 * time.Hour)})
	serverOnly := e.issue(pki.LeafRequest{Kind: pki.KindServer, Name: "web", DNSNames: []string{"web.example"}})
	fromOther := issueWith(t, other, pki.LeafRequest{Kind: pki.KindClient, Name: "alice", Groups: []string{"admins"}})
	_, port, _ := net.SplitHostPort(e.addr)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	tests := []struct {
		name    string
		opts    func() EndpointOptions
		check   string
		detail  []string
		fix     []string
		noFix   []string // what the fix must not suggest
		skipped []string
		passing []string // the fault must not be blamed on these
	}{
		{
			name:   "wrong CA",
			opts:   func() EndpointOptions { return e.options(e.addr, other.Cert, good) },
			check:  CheckServerCA,
			detail: []string{`the server's certificate was signed by "gateway CA" (key id `, `but the CA in use is "other CA" (key id `},
			fix:    []string{"dockgate login TOKEN", "--tlscacert"},
			// the docker CLI stops at the handshake: no "Docker API ping" tick
			skipped: []string{CheckAPIPing, CheckIdentity},
		},
		{
			name:   "missing SAN",
			opts:   func() EndpointOptions { return e.options("localhost:"+port, e.ca.Cert, good) },
			check:  CheckServerName,
			detail: []string{"the server certificate is valid for 127.0.0.1, not localhost"},
			fix:    []string{"--san localhost: dockgate revoke gateway && dockgate issue server gateway --san 127.0.0.1 --san localhost"},
		},
		{
			name:    "0.0.0.0 is not an address to connect to",
			opts:    func() EndpointOptions { return e.options("0.0.0.0:"+port, e.ca.Cert, good) },
			check:   CheckServerName,
			detail:  []string{"the server certificate is valid for 127.0.0.1, not 0.0.0.0"},
			fix:     []string{"use -H tcp://127.0.0.1:" + port},
			noFix:   []string{"--san 0.0.0.0"},
			skipped: []string{CheckAPIPing, CheckIdentity},
		},
		{
			name:    "expired client certificate",
			opts:    func() EndpointOptions { return e.options(e.addr, e.ca.Cert, expired) },
			check:   CheckClientExpiry,
			detail:  []string{"the client certificate expired at"},
			fix:     []string{"enroll again", "dockgate login TOKEN"},
			skipped: []string{CheckClientRevoked, CheckAPIPing},
			passing: []string{CheckClientCA, CheckClientKey, CheckClientUsage},
		},
		{
			name:    "serverAuth-only client certificate",
			opts:    func() EndpointOptions { return e.options(e.addr, e.ca.Cert, serverOnly) },
			check:   CheckClientUsage,
			detail:  []string{"the client certificate is not for client authentication (extended key usage: serverAuth; clientAuth is needed)"},
			fix:     []string{"dockgate login TOKEN"},
			passing: []string{CheckClientKey, CheckClientExpiry, CheckClientCA},
		},
		{
			name: "key not matching the certificate",
			opts: func() EndpointOptions {
				o := e.options(e.addr, e.ca.Cert, good)
				o.Key = keyPEM(t, e.client("admins").PrivateKey)
				return o
			},
			check:  CheckClientKey,
			detail: []string{"key.pem does not belong to cert.pem (private key does not match public key)"},
			fix:    []string{"use the key.pem made together with this cert.pem"},
		},
		{
			name:    "nothing listening",
			opts:    func() EndpointOptions { return e.options(deadAddr, e.ca.Cert, good) },
			check:   CheckConnect,
			detail:  []string{"nothing listens on " + deadAddr + " (connection refused)"},
			fix:     []string{"start the gateway ('dockgate serve')"},
			skipped: []string{CheckTLSVersion, CheckServerCA, CheckIdentity},
		},
		{
			name:    "client certificate from another CA",
			opts:    func() EndpointOptions { return e.options(e.addr, e.ca.Cert, fromOther) },
			check:   CheckClientCA,
			detail:  []string{`the client certificate was issued by "other CA" (key id `, `the server's by "gateway CA" (key id `, "the gateway accepts only its own CA's clients"},
			fix:     []string{"dockgate login TOKEN"},
			passing: []string{CheckServerCA, CheckClientKey, CheckClientUsage, CheckClientExpiry},
		},
		{
			name: "host name that does not resolve",
			opts: func() EndpointOptions {
				o := e.options("gateway.dockgate.test:"+port, e.ca.Cert, good)
				o.Resolver = &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
					return nil, errors.New("no DNS server in this test")
				}}
				return o
			},
			check:   CheckResolve,
			detail:  []string{"gateway.dockgate.test does not resolve ("},
			fix:     []string{"connect by IP address"},
			skipped: []string{CheckConnect, CheckTLSVersion, CheckServerCA},
		},
		{
			name:   "no client certificate",
			opts:   func() EndpointOptions { o := e.options(e.addr, e.ca.Cert, good); o.Cert, o.Key = nil, nil; return o },
			check:  CheckClientCert,
			detail: []string{"no client certificate (cert.pem): the gateway requires one"},
			fix:    []string{"dockgate login TOKEN"},
		},
		{
			name:   "no clients: entry",
			opts:   func() EndpointOptions { return e.options(e.addr, e.ca.Cert, e.client("devs")) },
			check:  CheckIdentity,
			detail: []string{"the gateway sees CN=alice groups=[devs], but no clients: entry matches it"},
			fix:    []string{"add '- cn: alice'"},
		},
		{
			name: "plain TCP",
			opts: func() EndpointOptions {
				o := e.options(e.addr, e.ca.Cert, good)
				o.TLS, o.Verify = false, false
				return o
			},
			check:  CheckTLSVersion,
			detail: []string{"the endpoint is used without TLS"},
			fix:    []string{"--tlsverify"},
		},
		{
			name:   "TLS without verification",
			opts:   func() EndpointOptions { o := e.options(e.addr, e.ca.Cert, good); o.Verify = false; return o },
			check:  CheckServerCA,
			detail: []string{"the server is not verified (TLS without --tlsverify)"},
			fix:    []string{"--tlsverify"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := CheckEndpoint(context.Background(), tt.opts())
			if rep.OK {
				t.Fatalf("report OK despite the fault:\n%s", reportText(rep))
			}
			c := checkOf(t, rep, tt.check)
			if c.Status != StatusFail {
				t.Fatalf("%s: %s, want fail\n%s", tt.check, c.Status, reportText(rep))
			}
			for _, want := range tt.detail {
				if !strings.Contains(c.Detail, want) {
					t.Errorf("%s detail %q does not say %q", tt.check, c.Detail, want)
				}
			}
			for _, want := range tt.fix {
				if !strings.Contains(c.Fix, want) {
					t.Errorf("%s fix %q does not say %q", tt.check, c.Fix, want)
				}
			}
			for _, bad := range tt.noFix {
				if strings.Contains(c.Fix, bad) {
					t.Errorf("%s fix %q suggests %q", tt.check, c.Fix, bad)
				}
			}
			for _, id := range tt.passing {
				if got := checkOf(t, rep, id).Status; got != StatusOK {
					t.Errorf("%s: %s, want ok", id, got)
				}
			}
			for _, id := range tt.skipped {
				if got := checkOf(t, rep, id).Status; got != StatusSkip {
					t.Errorf("%s: %s, want skip", id, got)
				}
			}
			if text := reportText(rep); !strings.Contains(text, "✗ "+c.Name) || !strings.Contains(text, "fix: "+c.Fix) {
				t.Errorf("text report lacks the failure:\n%s", text)
			}
		})
	}
}

func TestCheckEndpointRevoked(t *testing.T) {
	e := newEndpointEnv(t)
	c := e.client("admins")
	e.revoke(c)
	renewed := e.client("admins")
	e.supersede(renewed)
	cases := []struct {
		name string
		cert tls.Certificate
		want []string // in the detail
		fix  string
	}{
		{"revoked", c, []string{"certificate revoked: the gateway completes the TLS handshake and answers every request 403", "was revoked at"},
			"ask the gateway's administrator for a new token ('dockgate token create " + c.Leaf.Subject.CommonName + "')"},
		{"superseded", renewed, []string{"certificate superseded by a renewal: the gateway completes", "was replaced by a renewal at"},
			"use the renewed certificate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := CheckEndpoint(context.Background(), e.options(e.addr, e.ca.Cert, tc.cert))
			got := checkOf(t, rep, CheckClientRevoked)
			if got.Status != StatusFail || !strings.Contains(got.Fix, tc.fix) {
				t.Fatalf("revocation check %+v\n%s", got, reportText(rep))
			}
			for _, w := range tc.want {
				if !strings.Contains(got.Detail, w) {
					t.Errorf("detail %q lacks %q", got.Detail, w)
				}
			}
			if strings.Contains(got.Detail, "handshake (") {
				t.Errorf("detail %q speaks of a handshake refusal", got.Detail)
			}
			for _, id := range []string{CheckClientKey, CheckClientUsage, CheckClientExpiry, CheckClientCA, CheckServerCA} {
				if s := checkOf(t, rep, id).Status; s != StatusOK {
					t.Errorf("%s: %s, want ok", id, s)
				}
			}
			for _, id := range []string{CheckAPIPing, CheckIdentity} {
				if s := checkOf(t, rep, id).Status; s != StatusSkip {
					t.Errorf("%s: %s, want skip", id, s)
				}
			}
			if failed := rep.Failed(); len(failed) != 1 {
				t.Errorf("%d failed checks, want only the revocation one:\n%s", len(failed), reportText(rep))
			}
		})
	}
	t.Run("from the inventory", func(t *testing.T) {
		// The gateway has not refused this one yet; the inventory at hand
		// says it is revoked.
		fresh := e.client("admins")
		o := e.options(e.addr, e.ca.Cert, fresh)
		var asked string
		o.Revoked = func(_ context.Context, serial string) (bool, error) { asked = serial; return true, nil }
		rep := CheckEndpoint(context.Background(), o)
		got := checkOf(t, rep, CheckClientRevoked)
		if got.Status != StatusFail || !strings.Contains(got.Detail, "inventory") || asked != fresh.Leaf.SerialNumber.Text(16) {
			t.Fatalf("revocation check %+v after asking for %q", got, asked)
		}
	})
}
