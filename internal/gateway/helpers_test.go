package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// testPKI is a CA with helpers to mint server and client certificates.
// Everything it issues is in the test gateway's inventory; a certificate
// signed with ca directly is not.
type testPKI struct {
	t      testing.TB
	ca     *pki.CA
	issued sync.Map // serial (hex) -> true
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.NewCA("test CA", key, time.Hour*24, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{t: t, ca: ca}
}

func (p *testPKI) issue(req pki.LeafRequest) tls.Certificate {
	p.t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		p.t.Fatal(err)
	}
	req.PublicKey = key.Public()
	if req.Now.IsZero() {
		req.Now = time.Now()
	}
	cert, err := p.ca.Issue(req)
	if err != nil {
		p.t.Fatal(err)
	}
	p.issued.Store(identity.SerialHex(cert), true)
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: crypto.PrivateKey(key), Leaf: cert}
}

func (p *testPKI) server() tls.Certificate {
	return p.issue(pki.LeafRequest{Kind: pki.KindServer, Name: "gateway", DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
}

func (p *testPKI) client(cn string, groups ...string) tls.Certificate {
	return p.issue(pki.LeafRequest{Kind: pki.KindClient, Name: cn, Groups: groups})
}

func (p *testPKI) pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca.Cert)
	return pool
}

// fakeDocker is a stand-in daemon on a unix socket: /_ping, a JSON list,
// a stream that emits a line every 10ms, and an upgraded echo stream that
// answers only after the client half-closes (like `docker exec -i cat`).
type fakeDocker struct {
	socket string
	srv    *http.Server
	ln     net.Listener
	mux    *http.ServeMux // tests add routes of their own
	conns  atomic.Int64   // connections the gateway opened
	// requests counts every request that reached the daemon.
	requests atomic.Int64
}

func startFakeDocker(t testing.TB, socket string) *fakeDocker {
	t.Helper()
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Ostype", "linux")
		w.Header().Set("Docker-Experimental", "false")
		w.Header().Set("Builder-Version", "1")
		if r.Method == http.MethodHead {
			return
		}
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"Id":"abc","X-Forwarded-For":%q}]`, r.Header.Get("X-Forwarded-For"))
	})
	mux.HandleFunc("/v1.41/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		for i := 0; ; i++ {
			if _, err := fmt.Fprintf(w, "{\"n\":%d}\n", i); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	mux.HandleFunc("/v1.41/exec/{id}/start", serveFakeExec)
	mux.HandleFunc("/v1.41/containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		// As dockerd does: the head is flushed once the wait is
		// registered, the body comes when the container exits.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
			io.WriteString(w, `{"StatusCode":0}`)
		}
	})
	fd := &fakeDocker{socket: socket, ln: ln, mux: mux}
	fd.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fd.requests.Add(1)
		mux.ServeHTTP(w, r)
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			fd.conns.Add(1)
		}
	}}
	srv := fd.srv
	go srv.Serve(ln)
	t.Cleanup(fd.stop)
	return fd
}

func (f *fakeDocker) stop() { f.srv.Close() }

// serveFakeExec reads stdin to EOF and then writes it back, as `cat` does.
func serveFakeExec(w http.ResponseWriter, r *http.Request) {
	io.ReadAll(r.Body) // dockerd decodes the exec start options first
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	if r.Header.Get("Upgrade") == "tcp" {
		brw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	} else {
		brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n")
	}
	brw.Flush()
	in, _ := io.ReadAll(brw.Reader)
	conn.Write([]byte("echo:" + string(in)))
}

// testGateway runs a Gateway on loopback in front of a fake daemon.
type testGateway struct {
	*Gateway
	pki     *testPKI
	addr    string
	admin   string
	socket  string
	fake    *fakeDocker
	mu      sync.Mutex
	revoked map[string]time.Time
	// inventoryOverride sets the standing of chosen serials (pending,
	// superseded) over what standings derives.
	inventoryOverride map[string]store.Standing
	material          *Material
	loadErr           error
	cancel            context.CancelFunc
	done              chan error
	logs              *lockedBuffer // the gateway's log, text format
	stopOnce          sync.Once
}

// lockedBuffer is a log destination the gateway and a test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startTestGateway(t testing.TB, mutate func(*config.Config)) *testGateway {
	t.Helper()
	return startTestGatewayWithOptions(t, mutate, nil)
}

// startTestGatewayWithOptions lets a test set Options the helper does not
// (Local, Audit) before the gateway starts.
func startTestGatewayWithOptions(t testing.TB, mutate func(*config.Config), options func(*Options)) *testGateway {
	t.Helper()
	p := newTestPKI(t)
	socket := filepath.Join(t.TempDir(), "docker.sock")
	fake := startFakeDocker(t, socket)
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + socket
	cfg.Limits.ShutdownTimeout = 2 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{pki: p, socket: socket, fake: fake, revoked: map[string]time.Time{}, logs: &lockedBuffer{}}
	tg.material = &Material{ServerCert: p.server(), CA: NewCA(p.ca.Cert), Config: &cfg}
	opts := Options{
		Load:           tg.load,
		Inventory:      tg.standings,
		RevocationPoll: 50 * time.Millisecond,
		Logger:         slog.New(slog.NewTextHandler(tg.logs, nil)),
	}
	if options != nil {
		options(&opts)
	}
	g, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tg.Gateway = g
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg.addr, tg.admin = ln.Addr().String(), adminLn.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	tg.cancel, tg.done = cancel, make(chan error, 1)
	go func() { tg.done <- g.ServeListeners(ctx, ln, adminLn) }()
	t.Cleanup(tg.stop)
	return tg
}

// stop stops the gateway and waits for it; a second call does nothing.
func (tg *testGateway) stop() {
	tg.stopOnce.Do(func() {
		tg.cancel()
		<-tg.done
	})
}

func (tg *testGateway) load() (*Material, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.loadErr != nil {
		return nil, tg.loadErr
	}
	return tg.material, nil
}

// standings is the inventory: every certificate the test PKI issued, with
// the revocations and supersessions the test made.
func (tg *testGateway) standings(context.Context) (map[string]store.Standing, error) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	out := make(map[string]store.Standing)
	tg.pki.issued.Range(func(k, _ any) bool {
		out[k.(string)] = store.Standing{State: store.StateIssued}
		return true
	})
	for k, v := range tg.revoked {
		out[k] = store.Standing{State: store.StateIssued, RevokedAt: v}
	}
	for k, st := range tg.inventoryOverride {
		out[k] = st
	}
	return out, nil
}

func (tg *testGateway) revoke(c tls.Certificate) {
	tg.mu.Lock()
	tg.revoked[c.Leaf.SerialNumber.Text(16)] = time.Now()
	tg.mu.Unlock()
}

// clientTLS is a TLS config that trusts the test CA and presents certs.
func (tg *testGateway) clientTLS(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{RootCAs: tg.pki.pool(), Certificates: certs, ServerName: "localhost"}
}

// httpClient is an HTTPS client for the gateway with the given cert.
func (tg *testGateway) httpClient(cert tls.Certificate) *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tg.clientTLS(cert)}, Timeout: 10 * time.Second}
}

func (tg *testGateway) url(path string) string { return "https://" + tg.addr + path }

// handshake dials the gateway and returns the handshake result. With TLS
// 1.3 a refused client certificate surfaces on the first read.
func (tg *testGateway) handshake(cfg *tls.Config) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tg.addr, cfg)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// upgradeExec opens an upgraded exec stream the way the docker CLI does.
func (tg *testGateway) upgradeExec(t *testing.T, cert tls.Certificate, upgrade bool) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"Detach":false,"Tty":false}`
	hdr := ""
	if upgrade {
		hdr = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(conn, "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n%s", hdr, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := http.StatusOK
	if upgrade {
		want = http.StatusSwitchingProtocols
	}
	if resp.StatusCode != want {
		t.Fatalf("exec start: got %s, want %d", resp.Status, want)
	}
	return conn, br
}

// pingAnswer sends GET /_ping as cert on a connection of its own and
// returns the status and the message of a Docker error answer.
func (tg *testGateway) pingAnswer(t *testing.T, cert tls.Certificate) (int, string) {
	t.Helper()
	resp, err := tg.httpClient(cert).Get(tg.url("/_ping"))
	if err != nil {
		t.Fatalf("GET /_ping: %v", err)
	}
	defer resp.Body.Close()
	var e struct {
		Message string `json:"message"`
	}
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Message
}

func isRefusal(err error) bool {
	if err == nil {
		return false
	}
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "tls:") ||
		errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset")
}

// fakeCreates makes the fake daemon answer container creates, and counts
// the ones that reach it.
func (tg *testGateway) fakeCreates() *atomic.Int32 {
	var n atomic.Int32
	tg.fake.mux.HandleFunc("POST /v1.41/containers/create", func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"Id":"new","Warnings":[]}`)
	})
	return &n
}

// postJSON sends a JSON body as the client with cert and returns the
// status and the answer.
func (tg *testGateway) postJSON(t *testing.T, cert tls.Certificate, path, body string) (int, string) {
	t.Helper()
	resp, err := tg.httpClient(cert).Post(tg.url(path), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(answer)
}
