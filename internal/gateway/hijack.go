package gateway

import (
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/dockgate/dockgate/internal/policy"
)

// hijackGrace is how long the client may keep sending after the daemon
// has closed its side of a stream: the docker CLI closes within
// milliseconds once its output ends, so a few seconds is generous.
const hijackGrace = 5 * time.Second

// hijack forwards a request that may turn the connection into a raw
// bidirectional stream (attach, exec start, websocket attach, BuildKit's
// h2c /session and /grpc), on a connection of its own that is never
// pooled: a stream has no end a pool could wait for.
//
// httputil.ReverseProxy handles "101 Switching Protocols", but it ends both
// directions as soon as one of them does; Docker relies on half-close
// (`echo data | docker exec -i C cat` closes stdin and then waits for
// output), and on the legacy 200 raw-stream hijack, which ReverseProxy
// does not know. It returns the stream bytes copied each way, for the
// audit log.
//
// With j.solve set (BuildKit's /grpc for a role whose Solve calls are
// inspected), only an h2c upgrade is relayed, through pipeGRPC, and the
// calls it refused are returned; likewise with j.dockerfile (BuildKit's
// /session for a role whose Dockerfiles are read) through pipeSession.
func (d *daemon) hijack(w http.ResponseWriter, r *http.Request, cc *clientConn, j streamJudges) (in, out int64, refused []policy.SolveVerdict) {
	req := newRequest(r)
	req.upgrade, req.guard = upgradeOf(r.Header), true
	var err error
	if req.body, err = readHeld(r); err != nil {
		writeError(w, http.StatusBadRequest, "dockgate: failed to read the request body: "+err.Error())
		return 0, 0, nil
	}
	ctx := r.Context()
	dc, err := d.dial(ctx)
	if err != nil {
		d.fail(w, r, err)
		return 0, 0, nil
	}
	h := getHead()
	defer putHead(h)
	if err := d.try(ctx, dc, &req, h); err != nil {
		d.fail(w, r, err)
		return 0, 0, nil
	}
	if !dc.unguard() {
		dc.conn.Close()
		return 0, 0, nil
	}
	if !h.isStream() || (j.inspects() && h.status != http.StatusSwitchingProtocols) {
		// An answer, not a stream; or a stream the gateway could not read.
		d.relay(w, r, dc, h)
		dc.conn.Close()
		return 0, 0, nil
	}
	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		dc.conn.Close()
		d.log.Error("failed to hijack client connection", "err", err)
		return 0, 0, nil
	}
	defer d.onStream(cc)()
	if err := writeStreamHead(clientBuf.Writer, h); err != nil {
		client.Close()
		dc.conn.Close()
		return 0, 0, nil
	}
	switch {
	case j.solve != nil:
		return pipeGRPC(client, clientBuf.Reader, dc.conn, dc.br, j.solve, d.log)
	case j.dockerfile != nil:
		return pipeSession(client, clientBuf.Reader, dc.conn, dc.br, j.dockerfile, d.log)
	}
	in, out = pipeStreams(client, clientBuf.Reader, dc.conn, dc.br)
	return in, out, nil
}

// streamJudges are what the gateway reads on a hijacked stream: the Solve
// calls of /grpc, the Dockerfiles of /session; zero for a stream relayed
// unread.
type streamJudges struct {
	solve      solveJudge
	dockerfile dockerfileJudge
}

func (j streamJudges) inspects() bool { return j.solve != nil || j.dockerfile != nil }

// trackStream marks a client connection as hijacked and counts the
// stream until the function it returns is called.
func (g *Gateway) trackStream(cc *clientConn) (done func()) {
	if cc != nil {
		cc.hijacked.Store(true)
	}
	g.conns.hijacked.Add(1)
	g.metrics.hijackedStreams.Inc()
	return func() {
		g.conns.hijacked.Add(-1)
		g.metrics.hijackedStreams.Dec()
	}
}

// closeWriter is a connection that can end one direction (TCP, unix, TLS).
type closeWriter interface{ CloseWrite() error }

// pipeStreams copies both ways with half-close: when one side stops
// sending, the other side is told so, and the copy the other way goes on.
// clientIn and upIn hold bytes already read past the HTTP headers.
func pipeStreams(client net.Conn, clientIn io.Reader, up net.Conn, upIn io.Reader) (in, out int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		in = copyStream(up, clientIn) // client -> daemon (stdin)
		closeWrite(up)
	}()
	out = copyStream(client, upIn) // daemon -> client (stdout/stderr)
	closeWrite(client)
	// The daemon is done; give the client a moment to finish its side.
	client.SetReadDeadline(time.Now().Add(hijackGrace))
	wg.Wait()
	client.Close()
	up.Close()
	return in, out
}

func copyStream(dst io.Writer, src io.Reader) int64 {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	n, _ := io.CopyBuffer(dst, src, buf)
	return n
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(closeWriter); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
