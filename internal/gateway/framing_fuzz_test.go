package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// wireDaemon is a stand-in daemon that reads requests off the wire itself,
// so a test sees the header lines the gateway sent, duplicates included,
// before any HTTP library folds them.
type wireDaemon struct {
	ln       net.Listener
	requests atomic.Int64
	mu       sync.Mutex
	problems []string
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// startWireDaemon replaces the fake daemon of tg with a wireDaemon on the
// same socket.
func startWireDaemon(t testing.TB, tg *testGateway) *wireDaemon {
	t.Helper()
	tg.fake.stop()
	os.Remove(tg.socket)
	ln, err := net.Listen("unix", tg.socket)
	if err != nil {
		t.Fatal(err)
	}
	d := &wireDaemon{ln: ln, conns: map[net.Conn]struct{}{}}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns[c] = struct{}{}
			d.mu.Unlock()
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				d.serve(c)
			}()
		}
	}()
	// The gateway keeps idle daemon connections open: close them too.
	t.Cleanup(func() {
		ln.Close()
		d.mu.Lock()
		for c := range d.conns {
			c.Close()
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return d
}

func (d *wireDaemon) problem(format string, args ...any) {
	d.mu.Lock()
	d.problems = append(d.problems, fmt.Sprintf(format, args...))
	d.mu.Unlock()
}

// takeProblems returns and clears what the daemon found wrong so far.
func (d *wireDaemon) takeProblems() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.problems
	d.problems = nil
	return p
}

// serve reads requests on one connection and answers each with {}. A
// request whose framing is ambiguous is recorded as a problem: the daemon
// and the gateway could disagree on where it ends.
func (d *wireDaemon) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	tp := textproto.NewReader(br)
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		d.requests.Add(1)
		h, err := tp.ReadMIMEHeader()
		if err != nil {
			d.problem("request %q: unreadable header: %v", line, err)
			return
		}
		cl, te := h.Values("Content-Length"), h.Values("Transfer-Encoding")
		switch {
		case len(cl) > 0 && len(te) > 0:
			d.problem("request %q has both Content-Length %q and Transfer-Encoding %q", line, cl, te)
			return
		case len(cl) > 1:
			d.problem("request %q has %d Content-Length lines", line, len(cl))
			return
		case len(te) > 1 || len(te) == 1 && te[0] != "chunked":
			d.problem("request %q has Transfer-Encoding %q", line, te)
			return
		}
		var body io.Reader = http.NoBody
		switch {
		case len(te) == 1:
			body = httputil.NewChunkedReader(br)
		case len(cl) == 1:
			n, err := strconv.ParseInt(cl[0], 10, 64)
			if err != nil || n < 0 {
				d.problem("request %q has Content-Length %q", line, cl[0])
				return
			}
			body = io.LimitReader(br, n)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
			return
		}
	}
}

// forwardedCount is how many requests the gateway has evaluated and
// forwarded: its request counter without the refusals and its own paths.
func forwardedCount(t testing.TB, g *Gateway) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 64)
	go func() { g.metrics.requests.Collect(ch); close(ch) }()
	var n float64
	for m := range ch {
		var pb dto.Metric
		if err := m.Write(&pb); err != nil {
			t.Fatal(err)
		}
		op := ""
		for _, l := range pb.GetLabel() {
			if l.GetName() == "operation" {
				op = l.GetValue()
			}
		}
		if op != "denied" && op != "local" {
			n += pb.GetCounter().GetValue()
		}
	}
	return n
}

// FuzzFraming sends raw bytes over one mutual TLS connection to the
// gateway, with a daemon behind it that reads the wire itself. Whatever the
// bytes, the daemon receives no more requests than the policy evaluated and
// forwarded, and none whose framing is ambiguous (Content-Length and
// Transfer-Encoding together, two Content-Lengths, a coding other than
// chunked). The seeds are request-smuggling shapes.
func FuzzFraming(f *testing.F) {
	const ping = "GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\n\r\n"
	f.Add([]byte(ping))
	f.Add([]byte("POST /v1.41/containers/web/stop HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n" + ping))
	f.Add([]byte("POST /v1.41/containers/web/update HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"))
	f.Add([]byte("POST /v1.41/containers/web/stop HTTP/1.1\r\nHost: docker\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n" + ping))
	f.Add([]byte("POST /v1.41/containers/web/stop HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: identity\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("GET /v1.41/_ping HTTP/1.1\nHost: docker\n\n" + ping))
	f.Add([]byte("GET /v1.41/_ping HTTP/1.1\r\nHost: docker\r\nX-A: 1\r\n Content-Length: 30\r\n\r\n" + ping))
	f.Add([]byte("POST /v1.41/containers/web/update HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000002\r\n{}\r\n0\r\n\r\n"))
	tg := startTestGateway(f, nil)
	d := startWireDaemon(f, tg)
	cert := tg.pki.client("fuzz", "admins")
	cfg := tg.clientTLS(cert)
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	f.Fuzz(func(t *testing.T, data []byte) {
		before, daemonBefore := forwardedCount(t, tg.Gateway), d.requests.Load()
		c, err := tls.Dial("tcp", tg.addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A stream (an attach, a hijacked upgrade) may stay open; the
		// checks below hold at any moment, so a deadline only ends the
		// input early.
		c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			c.Write(data)
			c.CloseWrite()
		}()
		io.Copy(io.Discard, c)
		c.Close()
		if p := d.takeProblems(); len(p) > 0 {
			t.Fatalf("the daemon received ambiguous framing for %q:\n%s", data, strings.Join(p, "\n"))
		}
		// The gateway counts a request when its handler returns, which
		// may be just after the client saw the connection close.
		waitFor(t, "the gateway to count what it forwarded", func() bool {
			return float64(d.requests.Load()-daemonBefore) <= forwardedCount(t, tg.Gateway)-before
		})
	})
}
