package enroll

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/policy"
	"github.com/dockgate/dockgate/internal/store"
)

var ctx = context.Background()

// testEnv is a CA in a state directory, a gateway on loopback with the
// renewal handler, and an enrollment listener next to it.
type testEnv struct {
	t          testing.TB
	auth       *authority.Authority
	st         *store.Store
	gw         *gateway.Gateway
	gwAddr     string
	enrollAddr string
	server     *Server
	logs       *syncBuffer
}

type envOptions struct {
	maxFailures int
	now         func() time.Time
}

func newTestEnv(t testing.TB, opts envOptions) *testEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth, err := authority.Init(st, authority.InitOptions{CN: "enroll test CA"})
	if err != nil {
		t.Fatal(err)
	}
	server, err := auth.IssueServer(ctx, "gateway", []string{"127.0.0.1", "localhost"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	env := &testEnv{t: t, auth: auth, st: st, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(env.logs, nil))
	gwLn := listen(t)
	env.gwAddr = gwLn.Addr().String()
	_, port, _ := net.SplitHostPort(env.gwAddr)
	limiter := NewLimiter(100, time.Minute)
	if opts.maxFailures > 0 {
		limiter = NewLimiter(opts.maxFailures, time.Minute)
	}
	env.server = &Server{Authority: auth, GatewayPort: port, Limiter: limiter, Logger: logger, Now: opts.now}
	env.gw = startGateway(t, st, server, env.server.RenewHandler())
	go env.gw.ServeListeners(gatewayContext(t), gwLn, nil)
	enrollLn := listen(t)
	env.enrollAddr = enrollLn.Addr().String()
	serveCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- env.server.Serve(serveCtx, enrollLn, env.gw.ServerCertificate) }()
	t.Cleanup(func() { cancel(); <-done })
	return env
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func gatewayContext(t testing.TB) context.Context {
	c, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	return c
}

// startGateway runs a gateway with the state directory's server
// certificate; its upstream does not exist, which the renewal and whoami
// paths never touch.
func startGateway(t testing.TB, st *store.Store, server *authority.Issued, local http.Handler) *gateway.Gateway {
	t.Helper()
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + filepath.Join(t.TempDir(), "no-docker.sock")
	cfg.Limits.ShutdownTimeout = time.Second
	pair, err := tls.X509KeyPair(server.CertPEM, server.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caCert, err := authority.LoadCert(st)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	material := &gateway.Material{ServerCert: pair, CA: gateway.NewCA(caCert), Config: &cfg, Policy: pol}
	g, err := gateway.New(gateway.Options{
		Load:           func() (*gateway.Material, error) { return material, nil },
		Inventory:      st.ClientStandings,
		RevocationPoll: 20 * time.Millisecond,
		Local:          local,
	})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// token creates a token for the enrollment listener.
func (e *testEnv) token(name string, uses int, ttl time.Duration, groups ...string) Token {
	e.t.Helper()
	tok, err := CreateToken(ctx, e.st, TokenSpec{Name: name, Groups: groups, TTL: ttl, Uses: uses, CertDays: 7,
		Addresses: []string{e.enrollAddr}, CA: e.auth.Cert()})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *testEnv) usesLeft(name string) int {
	e.t.Helper()
	toks, err := e.st.Tokens(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tk := range toks {
		if tk.Name == name {
			return tk.UsesLeft
		}
	}
	e.t.Fatalf("no token %q", name)
	return 0
}

// otherCA is a CA unrelated to the environment's, with a server
// certificate for loopback.
func otherCA(t *testing.T) (*pki.CA, tls.Certificate) {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("intercepting CA", key, 24*time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafRequest{Kind: pki.KindServer, Name: "mitm", DNSNames: []string{"localhost"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, PublicKey: leafKey.Public(), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return ca, tls.Certificate{Certificate: [][]byte{leaf.Raw}, PrivateKey: leafKey, Leaf: leaf}
}

// serveTLS runs handler over TLS with cert on loopback and returns its
// address.
func serveTLS(t *testing.T, cert tls.Certificate, handler http.Handler) string {
	t.Helper()
	ln := tls.NewListener(listen(t), &tls.Config{Certificates: []tls.Certificate{cert}})
	srv := &http.Server{Handler: handler, ErrorLog: nil}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// countingHandler counts requests by path.
type countingHandler struct {
	mu    sync.Mutex
	paths map[string]int
	next  http.Handler
}

func (c *countingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.paths == nil {
		c.paths = map[string]int{}
	}
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *countingHandler) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

// syncBuffer collects log output from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func mustParseCert(t *testing.T, pemData []byte) *x509.Certificate {
	t.Helper()
	c, err := pki.ParseCertPEM(pemData)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func spkiHex(c *x509.Certificate) string { return pki.SPKIHash(c) }

func mustDecodeHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
