package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

// shortSocket is a unix socket path in a fresh directory under /tmp:
// t.TempDir paths of subtests can pass the 108-byte limit.
func shortSocket(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "dgd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "d.sock")
}

// newTestDaemon is a daemon client for the socket, with the idle timeout
// given (0: the default).
func newTestDaemon(t testing.TB, socket string, idle time.Duration) *daemon {
	t.Helper()
	d, err := newDaemon(config.Upstream{URL: "unix://" + socket, IdleTimeout: idle}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.close)
	return d
}

// httpDaemon is a net/http server on a unix socket that counts the
// connections it has open; CloseClientConnections is a daemon restart as
// its clients see it.
type httpDaemon struct {
	*httptest.Server
	socket string
	opened atomic.Int64 // connections accepted
	open   atomic.Int64 // connections open now
}

func startHTTPDaemon(t testing.TB, h http.Handler) *httpDaemon {
	t.Helper()
	hd := &httpDaemon{socket: shortSocket(t)}
	ln, err := net.Listen("unix", hd.socket)
	if err != nil {
		t.Fatal(err)
	}
	hd.Server = httptest.NewUnstartedServer(h)
	hd.Server.Listener.Close()
	hd.Server.Listener = ln
	hd.Server.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			hd.opened.Add(1)
			hd.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			hd.open.Add(-1)
		}
	}
	hd.Start()
	t.Cleanup(hd.Close)
	return hd
}

// rawDaemon answers every request on a connection with what answer
// returns for it (n counts the requests on that connection from 1), and
// closes the connection after it when answer says so.
type rawDaemon struct {
	socket   string
	opened   atomic.Int64
	requests atomic.Int64
}

func startRawDaemon(t testing.TB, answer func(r *http.Request, n int) (reply string, closeAfter bool)) *rawDaemon {
	t.Helper()
	rd := &rawDaemon{socket: shortSocket(t)}
	ln, err := net.Listen("unix", rd.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			rd.opened.Add(1)
			go rd.serve(conn, answer)
		}
	}()
	return rd
}

func (rd *rawDaemon) serve(conn net.Conn, answer func(*http.Request, int) (string, bool)) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	for n := 1; ; n++ {
		r, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, r.Body)
		rd.requests.Add(1)
		reply, closeAfter := answer(r, n)
		if _, err := io.WriteString(conn, reply); err != nil || closeAfter {
			return
		}
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDaemonFraming(t *testing.T) {
	cases := []struct {
		name, method, reply string
		closeAfter          bool
		status              int
		body                string
		header              map[string]string // "" means absent
		pooled, flushed     bool
	}{
		{name: "content-length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nApi-Version: 1.41\r\n\r\nhello",
			status: 200, body: "hello", header: map[string]string{"Content-Length": "5", "Api-Version": "1.41"}, pooled: true},
		{name: "chunked with a trailer", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n",
			status: 200, body: "hello world", header: map[string]string{"Transfer-Encoding": "", "X-Sum": ""}, pooled: true, flushed: true},
		{name: "close-delimited", reply: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", closeAfter: true,
			status: 200, body: "until the end", flushed: true},
		{name: "1xx skipped", reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX-A: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
			status: 201, body: "ok", header: map[string]string{"X-A": ""}, pooled: true},
		{name: "HEAD", method: http.MethodHead, reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n",
			status: 200, header: map[string]string{"Content-Length": "2"}, pooled: true},
		{name: "204", reply: "HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n", status: 204, pooled: true},
		{name: "304", reply: "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n", status: 304, header: map[string]string{"Etag": `"x"`}, pooled: true},
		{name: "Connection: close", reply: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", header: map[string]string{"Connection": ""}},
		{name: "HTTP/1.0", reply: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "both lengths", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 502},
		{name: "non-numeric length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", status: 502},
		{name: "differing lengths", reply: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", status: 502},
		{name: "line folding", reply: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok", status: 502},
		{name: "huge head", reply: "HTTP/1.1 200 OK\r\nX-A: " + strings.Repeat("a", maxHeadBytes) + "\r\n\r\n", status: 502},
		{name: "101 unasked", reply: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: tcp\r\nConnection: Upgrade\r\n\r\n", status: 502},
		{name: "garbage", reply: "SSH-2.0-OpenSSH\r\n\r\n", status: 502},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rd := startRawDaemon(t, func(*http.Request, int) (string, bool) { return c.reply, c.closeAfter })
			d := newTestDaemon(t, rd.socket, 0)
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			d.forward(rec, httptest.NewRequest(method, "/v1.41/containers/json", nil))
			if rec.Code != c.status {
				t.Fatalf("status = %d, want %d (body %q)", rec.Code, c.status, rec.Body)
			}
			if c.status == 502 {
				if !strings.Contains(rec.Body.String(), "malformed answer from the docker daemon") {
					t.Errorf("502 body = %q, want it to say the answer was malformed", rec.Body)
				}
			} else if got := rec.Body.String(); got != c.body {
				t.Errorf("body = %q, want %q", got, c.body)
			}
			for k, want := range c.header {
				if got := rec.Header().Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if got := d.pool.len() == 1; got != c.pooled {
				t.Errorf("connection pooled = %v, want %v", got, c.pooled)
			}
			if rec.Flushed != c.flushed {
				t.Errorf("flushed = %v, want %v (only answers of unknown length are)", rec.Flushed, c.flushed)
			}
		})
	}
}

// The daemon never sees hop-by-hop or forwarding headers, whatever the
// path, and always the same Host; the client never sees the daemon's
// hop-by-hop headers.
func TestDaemonHeaderPolicy(t *testing.T) {
	type seen struct {
		host   string
		header http.Header
	}
	got := make(chan seen, 1)
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- seen{r.Host, r.Header.Clone()}
		if r.Header.Get("Upgrade") != "" {
			conn, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			brw.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
			brw.Flush()
			return
		}
		h := w.Header()
		h.Set("Connection", "X-Daemon-Hop")
		h.Set("X-Daemon-Hop", "1")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Proxy-Connection", "keep-alive")
		h.Set("Upgrade", "nothing")
		h.Set("Api-Version", "1.41")
		io.WriteString(w, "ok")
	}))
	d := newTestDaemon(t, hd.socket, 0)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stream":
			d.stream(w, r)
		case "/hijack":
			d.hijack(w, r, nil, streamJudges{})
		default:
			d.forward(w, r)
		}
	}))
	defer front.Close()

	clientHop := map[string]string{
		"Connection": "X-Client-Hop", "X-Client-Hop": "1", "Keep-Alive": "300", "Proxy-Connection": "keep-alive",
		"Te": "trailers", "Trailer": "X-T", "Forwarded": "for=10.9.9.9", "X-Forwarded-For": "10.9.9.9",
		"X-Forwarded-Host": "evil", "X-Forwarded-Proto": "https",
	}
	send := func(method, path string, body io.Reader, extra map[string]string) *http.Response {
		req, _ := http.NewRequest(method, front.URL+path, body)
		req.Host = "client-chosen.example"
		for k, v := range clientHop {
			req.Header.Set(k, v)
		}
		req.Header.Set("X-Registry-Auth", "e30=")
		for k, v := range extra {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	checkDaemonSaw := func(path string, s seen, want map[string]string) {
		t.Helper()
		if s.host != "docker" {
			t.Errorf("%s: daemon saw Host %q, want docker", path, s.host)
		}
		for k := range clientHop {
			if v := s.header.Get(k); v != "" && want[k] == "" {
				t.Errorf("%s: daemon saw %s: %q", path, k, v)
			}
		}
		for k, v := range want {
			if got := s.header.Get(k); got != v {
				t.Errorf("%s: daemon saw %s: %q, want %q", path, k, got, v)
			}
		}
	}
	for _, path := range []string{"/forward", "/stream"} {
		resp := send(http.MethodPost, path, io.NopCloser(strings.NewReader("body")), nil)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		checkDaemonSaw(path, <-got, map[string]string{"X-Registry-Auth": "e30="})
		for _, k := range []string{"X-Daemon-Hop", "Keep-Alive", "Proxy-Connection", "Upgrade", "Connection"} {
			if v := resp.Header.Get(k); v != "" {
				t.Errorf("%s: client saw %s: %q", path, k, v)
			}
		}
		if resp.Header.Get("Api-Version") != "1.41" {
			t.Errorf("%s: client did not see Api-Version: %v", path, resp.Header)
		}
	}
	if _, _, err := d.call(t.Context(), http.MethodGet, "/_ping", nil); err != nil {
		t.Fatal(err)
	}
	checkDaemonSaw("call", <-got, nil)

	resp := send(http.MethodPost, "/hijack", strings.NewReader("{}"), map[string]string{"Connection": "Upgrade, X-Client-Hop", "Upgrade": "tcp"})
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("hijack: %s", resp.Status)
	}
	checkDaemonSaw("hijack", <-got, map[string]string{"Upgrade": "tcp", "Connection": "Upgrade", "X-Registry-Auth": "e30="})
}

// Sequential requests share one pooled connection.
func TestDaemonPoolReuse(t *testing.T) {
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") }))
	d := newTestDaemon(t, hd.socket, 0)
	for range 10 {
		rec := httptest.NewRecorder()
		d.forward(rec, httptest.NewRequest(http.MethodGet, "/_ping", nil))
		if rec.Code != 200 || rec.Body.String() != "OK" {
			t.Fatalf("got %d %q", rec.Code, rec.Body)
		}
	}
	if n := hd.opened.Load(); n != 1 {
		t.Errorf("the daemon saw %d connections for 10 sequential requests, want 1", n)
	}
}

// fakeConn is a net.Conn that records its closing.
type fakeConn struct {
	net.Conn
	closed atomic.Bool
}

func (c *fakeConn) Close() error { c.closed.Store(true); return nil }

func TestIdlePoolReap(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	p := newIdlePool(time.Minute)
	p.now = func() time.Time { return now }
	defer p.close()
	var conns []*fakeConn
	add := func(at time.Time) {
		now = at
		c := &fakeConn{}
		conns = append(conns, c)
		p.put(&daemonConn{conn: c, opened: at})
	}
	for range 5 {
		add(t0)
	}
	add(t0.Add(30 * time.Second))
	closed := func() (n int) {
		for _, c := range conns {
			if c.closed.Load() {
				n++
			}
		}
		return n
	}
	cases := []struct {
		at           time.Duration
		idle, closed int
	}{
		{59 * time.Second, 6, 0},
		{60 * time.Second, 2, 4},  // the first four expired; the floor keeps two
		{120 * time.Second, 2, 4}, // the floor stays, however old
	}
	for _, c := range cases {
		now = t0.Add(c.at)
		p.reap()
		if p.len() != c.idle || closed() != c.closed {
			t.Errorf("at +%s: %d idle, %d closed; want %d idle, %d closed", c.at, p.len(), closed(), c.idle, c.closed)
		}
	}
	if dc := p.get(); dc == nil || dc.conn != conns[5] {
		t.Errorf("get did not return the most recently used connection")
	}
	if n := p.closeOpenedBefore(t0.Add(time.Second)); n != 1 || p.len() != 0 {
		t.Errorf("closeOpenedBefore closed %d, left %d idle; want 1 and 0", n, p.len())
	}
}

func TestIdlePoolCap(t *testing.T) {
	p := newIdlePool(time.Minute)
	defer p.close()
	over := &fakeConn{}
	for range daemonMaxIdle {
		p.put(&daemonConn{conn: &fakeConn{}})
	}
	p.put(&daemonConn{conn: over})
	if p.len() != daemonMaxIdle || !over.closed.Load() {
		t.Errorf("pool holds %d, extra closed %v; want %d and true", p.len(), over.closed.Load(), daemonMaxIdle)
	}
}

// After a burst, the idle connections the burst opened are closed within
// the idle timeout, down to the floor, on both ends.
func TestDaemonIdleExpiry(t *testing.T) {
	const burst = 12
	var arrived sync.WaitGroup
	arrived.Add(burst)
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/burst" {
			arrived.Done()
			arrived.Wait() // every request of the burst holds its own connection
		}
		io.WriteString(w, "OK")
	}))
	d := newTestDaemon(t, hd.socket, 100*time.Millisecond)
	var done sync.WaitGroup
	for range burst {
		done.Add(1)
		go func() {
			defer done.Done()
			d.forward(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/burst", nil))
		}()
	}
	done.Wait()
	if n := hd.opened.Load(); n != burst {
		t.Fatalf("the burst opened %d connections, want %d", n, burst)
	}
	waitFor(t, "the pool to shrink to its floor", func() bool { return d.pool.len() == daemonMinIdle })
	waitFor(t, "the daemon to see the connections closed", func() bool { return hd.open.Load() == daemonMinIdle })
	rec := httptest.NewRecorder()
	d.forward(rec, httptest.NewRequest(http.MethodGet, "/_ping", nil))
	if rec.Code != 200 || hd.opened.Load() != burst {
		t.Errorf("after expiry: %d, %d connections opened; want 200 on a kept one", rec.Code, hd.opened.Load())
	}
}

// After dockerd restarts (every connection cut), the first request
// succeeds, on a fresh connection, and the other dead ones are gone.
func TestDaemonRestartFirstRequestSucceeds(t *testing.T) {
	const pooled = 4
	var arrived sync.WaitGroup
	arrived.Add(pooled)
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/burst" {
			arrived.Done()
			arrived.Wait()
		}
		io.WriteString(w, "OK")
	}))
	d := newTestDaemon(t, hd.socket, 0)
	var done sync.WaitGroup
	for range pooled {
		done.Add(1)
		go func() {
			defer done.Done()
			d.forward(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/burst", nil))
		}()
	}
	done.Wait()
	if d.pool.len() != pooled {
		t.Fatalf("%d pooled, want %d", d.pool.len(), pooled)
	}
	hd.CloseClientConnections()
	waitFor(t, "the daemon to cut its connections", func() bool { return hd.open.Load() == 0 })

	for i, path := range []string{"/_ping", "/v1.41/containers/json", "/_ping"} {
		rec := httptest.NewRecorder()
		d.forward(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 {
			t.Fatalf("request %d after the restart: %d %q", i+1, rec.Code, rec.Body)
		}
		if n := d.pool.len(); n != 1 {
			t.Errorf("after request %d, %d idle connections, want 1: the dead ones must go", i+1, n)
		}
	}
	if n := hd.opened.Load(); n != pooled+1 {
		t.Errorf("%d connections opened in all, want %d: one fresh one after the restart", n, pooled+1)
	}
	if _, _, err := d.call(t.Context(), http.MethodGet, "/_ping", nil); err != nil {
		t.Errorf("call after the restart: %v", err)
	}
}

// A connection the liveness check cannot tell is dead (the daemon drops
// it as the request arrives): a GET without a body is sent again on a
// fresh connection; a request with a body is not, and neither is a POST.
func TestDaemonRetryOnFreshConnection(t *testing.T) {
	answer := func(r *http.Request, n int) (string, bool) {
		switch {
		case n > 1:
			return "", true // read the second request, then close without a word
		case r.Method == http.MethodHead:
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", false
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", false
	}
	cases := []struct {
		method, body string
		retried      bool
	}{
		{http.MethodGet, "", true},
		{http.MethodHead, "", true},
		{http.MethodPost, "", false},
		{http.MethodPost, `{"Image":"x"}`, false},
		{http.MethodGet, `{}`, false},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.body, func(t *testing.T) {
			rd := startRawDaemon(t, answer)
			d := newTestDaemon(t, rd.socket, 0)
			send := func() int {
				var body io.Reader
				if c.body != "" {
					body = strings.NewReader(c.body)
				}
				rec := httptest.NewRecorder()
				d.forward(rec, httptest.NewRequest(c.method, "/v1.41/x", body))
				return rec.Code
			}
			if code := send(); code != 200 {
				t.Fatalf("first request: %d", code)
			}
			code := send()
			wantCode, wantConns, wantRequests := 502, int64(1), int64(2)
			if c.retried {
				wantCode, wantConns, wantRequests = 200, 2, 3
			}
			if code != wantCode || rd.opened.Load() != wantConns || rd.requests.Load() != wantRequests {
				t.Errorf("second request: %d, %d connections, %d requests at the daemon; want %d, %d, %d",
					code, rd.opened.Load(), rd.requests.Load(), wantCode, wantConns, wantRequests)
			}
		})
	}
}

// A streamed body goes to the daemon while the daemon's answer comes
// back: each piece the client sends is echoed before it sends the next.
func TestDaemonStreamBothWays(t *testing.T) {
	var seen atomic.Value
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Store(fmt.Sprint(r.TransferEncoding, r.ContentLength))
		rc := http.NewResponseController(w)
		rc.EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		rc.Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				w.Write(buf[:n])
				rc.Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	d := newTestDaemon(t, hd.socket, 0)
	front := httptest.NewServer(http.HandlerFunc(d.stream))
	defer front.Close()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1.41/images/load", pr)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for i := range 3 {
		piece := fmt.Sprintf("piece-%d\n", i)
		if _, err := io.WriteString(pw, piece); err != nil {
			t.Fatal(err)
		}
		line, err := br.ReadString('\n')
		if err != nil || line != piece {
			t.Fatalf("echo of piece %d = %q, %v", i, line, err)
		}
	}
	pw.Close()
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Errorf("after the body ended: %q", rest)
	}
	if got := seen.Load(); got != "[chunked] -1" {
		t.Errorf("daemon saw transfer encoding and length %v, want chunked", got)
	}
	waitFor(t, "the connection back in the pool", func() bool { return d.pool.len() == 1 })
}

// A streamed body of known length is sent with its Content-Length, and
// a pooled connection the daemon closed is replaced before any of it is
// read.
func TestDaemonStreamKnownLengthAfterRestart(t *testing.T) {
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%d %d", r.ContentLength, len(body))
	}))
	d := newTestDaemon(t, hd.socket, 0)
	upload := func() string {
		rec := httptest.NewRecorder()
		d.stream(rec, httptest.NewRequest(http.MethodPut, "/v1.41/containers/c/archive?path=/", strings.NewReader(strings.Repeat("x", 100_000))))
		return rec.Body.String()
	}
	if got := upload(); got != "100000 100000" {
		t.Fatalf("daemon saw %q", got)
	}
	hd.CloseClientConnections()
	waitFor(t, "the daemon to cut its connections", func() bool { return hd.open.Load() == 0 })
	if got := upload(); got != "100000 100000" {
		t.Fatalf("after a restart, daemon saw %q", got)
	}
}

// When the daemon answers without reading the whole body, the request
// ends and the connection is not reused.
func TestDaemonStreamEarlyAnswer(t *testing.T) {
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"message":"no"}`)
	}))
	d := newTestDaemon(t, hd.socket, 0)
	front := httptest.NewServer(http.HandlerFunc(d.stream))
	defer front.Close()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		for {
			if _, err := pw.Write(make([]byte, 32<<10)); err != nil {
				return
			}
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/build", pr)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || string(body) != `{"message":"no"}` {
		t.Fatalf("got %s %q", resp.Status, body)
	}
	if d.pool.len() != 0 {
		t.Errorf("a connection whose request body was cut went back to the pool")
	}
}

// A client that goes away unblocks a read of a stream with nothing to
// say: the daemon sees its request end.
func TestDaemonClientGoneEndsIdleStream(t *testing.T) {
	ended := make(chan struct{})
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(ended)
	}))
	d := newTestDaemon(t, hd.socket, 0)
	front := httptest.NewServer(http.HandlerFunc(d.forward))
	defer front.Close()
	conn, err := net.Dial("tcp", front.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "GET /v1.41/events HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", resp, err)
	}
	conn.Close()
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's request did not end when the client went away")
	}
}

// Half-close: the client ends its input, the daemon's output still
// arrives (`echo data | docker exec -i C cat`).
func TestDaemonHijackHalfClose(t *testing.T) {
	hd := startHTTPDaemon(t, http.HandlerFunc(serveFakeExec))
	d := newTestDaemon(t, hd.socket, 0)
	var streams atomic.Int64
	d.onStream = func(*clientConn) func() {
		streams.Add(1)
		return func() { streams.Add(-1) }
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.hijack(w, r, nil, streamJudges{}) }))
	defer front.Close()
	for _, upgrade := range []bool{true, false} {
		conn, err := net.Dial("tcp", front.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		hdr := ""
		if upgrade {
			hdr = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
		}
		body := `{"Detach":false}`
		fmt.Fprintf(conn, "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", hdr, len(body), body)
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int{true: 101, false: 200}[upgrade]; resp.StatusCode != want {
			t.Fatalf("upgrade=%v: %s, want %d", upgrade, resp.Status, want)
		}
		if streams.Load() != 1 {
			t.Errorf("upgrade=%v: %d streams counted, want 1", upgrade, streams.Load())
		}
		io.WriteString(conn, "stdin data")
		conn.(*net.TCPConn).CloseWrite()
		out, err := io.ReadAll(br)
		if err != nil || string(out) != "echo:stdin data" {
			t.Errorf("upgrade=%v: output %q, %v", upgrade, out, err)
		}
		conn.Close()
		waitFor(t, "the stream to end", func() bool { return streams.Load() == 0 })
	}
	if d.pool.len() != 0 {
		t.Errorf("a hijacked connection went to the pool")
	}
}

// A hijack the daemon refuses is relayed as an ordinary answer.
func TestDaemonHijackRefused(t *testing.T) {
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"No such exec instance"}`, http.StatusNotFound)
	}))
	d := newTestDaemon(t, hd.socket, 0)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { d.hijack(w, r, nil, streamJudges{}) }))
	defer front.Close()
	req, _ := http.NewRequest(http.MethodPost, front.URL+"/v1.41/exec/nope/start", strings.NewReader("{}"))
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !strings.Contains(string(body), "No such exec") {
		t.Errorf("got %s %q", resp.Status, body)
	}
}

func TestDaemonCall(t *testing.T) {
	big := strings.Repeat("x", lookupLimit+10)
	hd := startHTTPDaemon(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			io.WriteString(w, big)
		case "/volumes/create":
			body, _ := io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "%s %s", r.Header.Get("Content-Type"), body)
		case "/_ping":
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	d := newTestDaemon(t, hd.socket, 0)
	status, body, err := d.call(t.Context(), http.MethodPost, "/volumes/create", []byte(`{"Name":"v"}`))
	if err != nil || status != 201 || string(body) != `application/json {"Name":"v"}` {
		t.Errorf("create: %d %q %v", status, body, err)
	}
	if d.pool.len() != 1 {
		t.Errorf("a finished lookup's connection was not pooled")
	}
	status, body, err = d.call(t.Context(), http.MethodGet, "/big", nil)
	if err != nil || status != 200 || len(body) != lookupLimit {
		t.Errorf("big: %d, %d bytes, %v; want 200 and %d bytes", status, len(body), err, lookupLimit)
	}
	if d.pool.len() != 0 {
		t.Errorf("a connection with an unread answer went to the pool")
	}
	if err := d.ping(t.Context()); err == nil || !strings.Contains(err.Error(), "answered /_ping with 500") {
		t.Errorf("ping of a failing daemon: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := d.call(ctx, http.MethodGet, "/_ping", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a cancelled context: %v", err)
	}
}

// A lookup bounded by its context does not wait for a daemon that never
// answers.
func TestDaemonCallDeadline(t *testing.T) {
	rd := startRawDaemon(t, func(r *http.Request, n int) (string, bool) {
		select {} // never answers
	})
	d := newTestDaemon(t, rd.socket, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := d.call(ctx, http.MethodGet, "/_ping", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("call to a silent daemon: %v, want a deadline error", err)
	}
}

// discardWriter is a ResponseWriter that keeps nothing, for benchmarks.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkDaemonForwardPing is the fast path alone: GET /_ping on a
// pooled connection to a net/http daemon in the same process (whose
// allocations are counted too).
func BenchmarkDaemonForwardPing(b *testing.B) {
	hd := startHTTPDaemon(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Api-Version", "1.41")
		h.Set("Ostype", "linux")
		h.Set("Docker-Experimental", "false")
		io.WriteString(w, "OK")
	}))
	d := newTestDaemon(b, hd.socket, 0)
	r := httptest.NewRequest(http.MethodGet, "/_ping", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		d.forward(w, r)
	}
}

// TestAccessError: a gateway that may not open the daemon's socket stops
// at start with the fix; a daemon that is merely down does not stop it.
func TestAccessError(t *testing.T) {
	denied := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.EACCES)}
	err := accessError("unix", "/var/run/docker.sock", denied)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "--group-add $(stat -c %g /var/run/docker.sock)") {
		t.Errorf("accessError(EACCES) = %v, want the permission error with its fix", err)
	}
	down := &net.OpError{Op: "dial", Net: "unix", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	if err := accessError("unix", "/var/run/docker.sock", down); err != nil {
		t.Errorf("accessError(ECONNREFUSED) = %v, want nil (the daemon may start later)", err)
	}
	if err := accessError("tcp", "127.0.0.1:2376", denied); err != nil {
		t.Errorf("accessError(tcp) = %v, want nil", err)
	}
}

// TestCheckAccessToleratesADaemonNotUpYet: a missing socket is logged,
// not fatal: dockerd may start after the gateway.
func TestCheckAccessToleratesADaemonNotUpYet(t *testing.T) {
	d := &daemon{network: "unix", address: filepath.Join(t.TempDir(), "missing.sock"), log: slog.New(slog.DiscardHandler)}
	if err := d.checkAccess(t.Context()); err != nil {
		t.Errorf("checkAccess on a missing socket = %v, want nil and a warning", err)
	}
}
