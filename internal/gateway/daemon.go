package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
)

// The gateway's one client for the Docker daemon. Every request the
// gateway sends to dockerd goes through a daemon: the client's requests
// (forward: no body or a body the gateway holds; stream: a body that
// streams while the answer streams back; hijack: attach, exec and upgrades
// on a connection of their own), and the gateway's own (call: ownership
// lookups; ping: /readyz). They share one dialer, one pool of idle
// connections and one header policy (writeHead), so the daemon sees the
// same Host and never a hop-by-hop or forwarding header, whatever the path.
//
// The whole exchange of forward runs on the serving goroutine: no read
// and write loop goroutines, no channel hand-offs and no http.Response.
// Profiles of http.Transport showed those hand-offs (each a possible
// thread switch) as the largest cost of a proxied /_ping.
//
// # Dead connections
//
// dockerd never closes an idle keep-alive connection itself (its API
// server sets no IdleTimeout), but every one of them dies when dockerd
// restarts. A connection taken from the pool is therefore checked first
// (aliveCheck); a request that fails on a reused connection anyway is
// retried once, on a freshly dialled connection, when that cannot run it
// twice (canRetry); and either finding closes the other idle connections
// opened before it, which lead to the same dead daemon.

const daemonDialTimeout = 10 * time.Second

// daemon is the Docker daemon behind the gateway and the client for it.
type daemon struct {
	url     string // as configured, for messages
	network string // "unix" or "tcp"
	address string // socket path or host:port
	host    string // the Host header of every request
	tls     *tls.Config
	pool    *idlePool
	log     *slog.Logger
	// onStream is called when a hijacked stream starts, and what it
	// returns when the stream ends (the gateway counts and tracks them).
	onStream func(*clientConn) (done func())
}

func newDaemon(cfg config.Upstream, log *slog.Logger) (*daemon, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("failed to parse upstream %q: %w", cfg.URL, err)
	}
	timeout := cfg.IdleTimeout
	if timeout <= 0 {
		timeout = config.DefaultUpstreamIdleTimeout // a config that skipped Default
	}
	d := &daemon{url: cfg.URL, pool: newIdlePool(timeout), log: log,
		onStream: func(*clientConn) func() { return func() {} }}
	switch u.Scheme {
	case "unix":
		// What the docker CLI sends over a socket; dockerd ignores it.
		d.network, d.address, d.host = "unix", u.Path, "docker"
	case "tcp":
		d.network, d.address, d.host = "tcp", u.Host, u.Host
		if d.tls, err = upstreamTLS(cfg, u.Hostname()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("upstream %q: scheme must be unix or tcp", cfg.URL)
	}
	return d, nil
}

func upstreamTLS(cfg config.Upstream, serverName string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("failed to read upstream CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("failed to read upstream CA %s: no PEM certificate in it", cfg.TLSCA)
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("failed to load upstream client certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
	}, nil
}

// dial opens a new connection (over mutual TLS for tcp).
func (d *daemon) dial(ctx context.Context) (*daemonConn, error) {
	nd := net.Dialer{Timeout: daemonDialTimeout}
	conn, err := nd.DialContext(ctx, d.network, d.address)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		conn = tc
	}
	return &daemonConn{conn: conn, alive: newAliveCheck(conn), br: bufio.NewReader(conn), bw: bufio.NewWriter(conn),
		opened: d.pool.now()}, nil
}

// conn returns an idle connection the daemon has not closed, or else a
// new one.
func (d *daemon) conn(ctx context.Context) (*daemonConn, error) {
	if dc := d.pool.get(); dc != nil {
		if dc.br.Buffered() == 0 && !dc.alive.peerGone() {
			dc.reused = true
			return dc, nil
		}
		dc.conn.Close()
		d.dropIdle("an idle connection was closed by the daemon")
	}
	return d.dial(ctx)
}

// dropIdle closes the idle connections opened until now, after one of
// them turned out dead.
func (d *daemon) dropIdle(why string) {
	if n := d.pool.closeOpenedBefore(d.pool.now()); n > 0 {
		d.log.Info("closed idle daemon connections: the daemon may have restarted", "reason", why, "closed", n)
	}
}

// release puts a connection back in the pool or closes it.
func (d *daemon) release(dc *daemonConn, reusable bool) {
	if reusable {
		dc.reused = false
		d.pool.put(dc)
		return
	}
	dc.conn.Close()
}

func (d *daemon) close() { d.pool.close() }

// daemonRequest is a request as the daemon is to see it.
type daemonRequest struct {
	method, path, query string
	header              http.Header // the client's, filtered by writeHead; nil for the gateway's own
	contentType         string      // for the gateway's own requests
	upgrade             string      // the protocol a hijack asks to switch to
	body                []byte      // a body held in memory
	guard               bool        // bound the exchange by its context (call, hijack)
}

// writeHead writes the request line and header. length is the body's:
// 0 none, -1 chunked. It is the gateway's one header policy.
func (d *daemon) writeHead(bw *bufio.Writer, req *daemonRequest, length int64) {
	bw.WriteString(req.method)
	bw.WriteByte(' ')
	bw.WriteString(req.path)
	if req.query != "" {
		bw.WriteByte('?')
		bw.WriteString(req.query)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(d.host)
	bw.WriteString("\r\n")
	listed := req.header["Connection"]
	for k, vs := range req.header {
		if skipRequestHeader(k, listed) {
			continue
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	if req.contentType != "" {
		writeField(bw, "Content-Type", req.contentType)
	}
	if req.upgrade != "" {
		bw.WriteString("Connection: Upgrade\r\n")
		writeField(bw, "Upgrade", req.upgrade)
	}
	switch {
	case length > 0:
		var n [20]byte
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(n[:0], length, 10))
		bw.WriteString("\r\n")
	case length < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	bw.WriteString("\r\n")
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// skipRequestHeader: hop-by-hop headers (RFC 9110 section 7.6.1) and
// those the Connection header names belong to the client's connection
// (writeHead sets Host, the framing and an upgrade itself), and
// forwarding headers would let a client speak for someone else.
func skipRequestHeader(k string, connectionListed []string) bool {
	switch k {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
		"Te", "Trailer", "Upgrade", "Expect", "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return listedIn(k, connectionListed)
}

func listedIn(k string, connectionListed []string) bool {
	for _, v := range connectionListed {
		if hasToken(v, k) {
			return true
		}
	}
	return false
}

// upgradeOf is the protocol a request asks to switch to: Upgrade, when
// the Connection header names it (RFC 9110 section 7.8).
func upgradeOf(h http.Header) string {
	if !listedIn("Upgrade", h["Connection"]) {
		return ""
	}
	return h.Get("Upgrade")
}

// sendError: the request could not be written whole, so the daemon
// cannot have acted on it.
type sendError struct{ err error }

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// silentError: the connection failed before any byte of an answer.
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

// exchange writes a request whose body is held and reads the answer's
// head.
func (d *daemon) exchange(dc *daemonConn, req *daemonRequest, h *respHead) error {
	d.writeHead(dc.bw, req, int64(len(req.body)))
	dc.bw.Write(req.body)
	if err := dc.bw.Flush(); err != nil {
		return &sendError{err}
	}
	return readAnswer(dc, h, req.method, req.upgrade)
}

// roundTrip sends a request whose body is held and reads the answer's
// head, on a pooled connection or a new one. A request that failed on a
// pooled connection is sent once more, on a fresh one, when canRetry
// says that cannot run it twice.
func (d *daemon) roundTrip(ctx context.Context, req *daemonRequest, h *respHead) (*daemonConn, error) {
	dc, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	err = d.try(ctx, dc, req, h)
	if err == nil {
		return dc, nil
	}
	if !dc.reused || !canRetry(ctx, err, req) {
		return nil, err
	}
	d.dropIdle("a request failed on a reused connection: " + err.Error())
	if dc, err = d.dial(ctx); err != nil {
		return nil, err
	}
	if err = d.try(ctx, dc, req, h); err != nil {
		return nil, err
	}
	return dc, nil
}

// try is one exchange; on error the connection is closed.
func (d *daemon) try(ctx context.Context, dc *daemonConn, req *daemonRequest, h *respHead) error {
	if req.guard {
		dc.guard(ctx)
	}
	err := d.exchange(dc, req, h)
	if err != nil {
		dc.unguard()
		dc.conn.Close()
		if req.guard && (ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded)) {
			// The context ended the exchange; its own timer may not
			// have fired yet when the connection's deadline did.
			cause := ctx.Err()
			if cause == nil {
				cause = context.DeadlineExceeded
			}
			return fmt.Errorf("%w (%v)", cause, err)
		}
	}
	return err
}

// canRetry: a request that was not written whole cannot have run; one
// that got no answer at all may have, unless it is a GET or HEAD without
// a body (RFC 9110 section 9.2.2: idempotent, and dockerd's are safe).
// What ran out of time or was cancelled is not retried.
func canRetry(ctx context.Context, err error, req *daemonRequest) bool {
	if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	var se *sendError
	if errors.As(err, &se) {
		return true
	}
	var silent *silentError
	return errors.As(err, &silent) && len(req.body) == 0 &&
		(req.method == http.MethodGet || req.method == http.MethodHead)
}

// newRequest is r as the daemon is to see it, without the body.
func newRequest(r *http.Request) daemonRequest {
	return daemonRequest{method: r.Method, path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: r.Header}
}

// maxHeldBody is the largest body forward holds in memory: the largest
// JSON body the config allows.
const maxHeldBody = config.MaxJSONBody

// forward sends a request without a body or with a body the gateway
// holds (a checked JSON body) and relays the answer.
func (d *daemon) forward(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength < 0 || r.ContentLength > maxHeldBody {
		d.stream(w, r)
		return
	}
	d.forwardHeld(w, r, nil)
}

// forwardRedacted is forward for a request whose answer is redacted as
// redact says (redact.go): a successful (2xx) answer is read whole,
// bounded by maxRedactedAnswer, and rewritten before the client sees any
// of it; an error answer is relayed as it is.
func (d *daemon) forwardRedacted(w http.ResponseWriter, r *http.Request, redact *policy.Redaction) {
	if r.ContentLength < 0 || r.ContentLength > maxHeldBody {
		// Unreachable: the answers redacted are those of GET requests,
		// whose body the policy refuses; the answer is never streamed.
		writeError(w, http.StatusBadRequest, "dockgate: this request takes no body")
		return
	}
	d.forwardHeld(w, r, redact)
}

func (d *daemon) forwardHeld(w http.ResponseWriter, r *http.Request, redact *policy.Redaction) {
	req := newRequest(r)
	var err error
	if req.body, err = readHeld(r); err != nil {
		writeError(w, http.StatusBadRequest, "dockgate: failed to read the request body: "+err.Error())
		return
	}
	h := getHead()
	defer putHead(h)
	dc, err := d.roundTrip(r.Context(), &req, h)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	if redact == nil || h.status/100 != 2 || h.framing == bodyNone {
		d.release(dc, d.relay(w, r, dc, h))
		return
	}
	d.relayRedacted(w, r, dc, h, redact)
}

// readHeld reads the body of r, which the gateway holds in memory or
// which is small (a hijack's): at most maxHeldBody bytes.
func readHeld(r *http.Request) ([]byte, error) {
	switch {
	case r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0:
		return nil, nil
	case r.ContentLength > 0:
		body := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
		return body, err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxHeldBody+1))
	if err == nil && len(body) > maxHeldBody {
		err = fmt.Errorf("request body larger than %d bytes", maxHeldBody)
	}
	return body, err
}

// call sends one small request of the gateway's own (an ownership
// lookup) and returns the status and the body, bounded by lookupLimit.
func (d *daemon) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req := daemonRequest{method: method, path: path, body: body, guard: true}
	if body != nil {
		req.contentType = "application/json"
	}
	h := getHead()
	defer putHead(h)
	dc, err := d.roundTrip(ctx, &req, h)
	if err != nil {
		return 0, nil, fmt.Errorf("docker daemon unreachable at %s: %w", d.url, err)
	}
	data, whole, err := readBody(dc.br, h, lookupLimit)
	d.release(dc, dc.unguard() && whole && err == nil && !h.close)
	if err != nil {
		return 0, nil, fmt.Errorf("failed to read the answer of the docker daemon at %s: %w", d.url, err)
	}
	return h.status, data, nil
}

// ping asks the daemon for /_ping, as /readyz does.
// checkAccess dials the daemon once at start, so that a gateway that may
// not open the daemon's socket (a container run without the socket's
// group) says so at once instead of answering every request 502 later. A
// daemon that is not up yet is only logged: it may start after the
// gateway.
func (d *daemon) checkAccess(ctx context.Context) error {
	dc, err := d.dial(ctx)
	if err == nil {
		dc.conn.Close()
		return nil
	}
	if err := accessError(d.network, d.address, err); err != nil {
		return err
	}
	d.log.Warn("docker daemon not reachable yet; requests fail until it is", "upstream", d.url, "err", err)
	return nil
}

// accessError is the start-up error for a dial that failed because the
// gateway may not open the daemon's unix socket; nil for other failures.
func accessError(network, address string, err error) error {
	if network != "unix" || !errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return fmt.Errorf("failed to open the docker socket %s: permission denied; run the gateway as a user or group "+
		"that may open it (in a container: docker run --group-add $(stat -c %%g %s) ...)", address, address)
}

func (d *daemon) ping(ctx context.Context) error {
	status, _, err := d.call(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("docker daemon at %s answered /_ping with %d %s", d.url, status, http.StatusText(status))
	}
	return nil
}

// fail answers a request the daemon did not answer with a JSON message
// that the docker CLI prints as one line.
func (d *daemon) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the client went away; nobody to answer
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("dockgate: docker daemon at %s timed out: %v", d.url, err))
		return
	}
	d.log.Warn("upstream error", "upstream", d.url, "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusBadGateway, fmt.Sprintf("dockgate: docker daemon unreachable at %s: %v", d.url, err))
}
