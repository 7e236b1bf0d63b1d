package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// hijackGrace is how long the client may keep sending after the daemon
// has closed its side of a stream: the docker CLI closes within
// milliseconds once its output ends, so a few seconds is generous.
const hijackGrace = 5 * time.Second

// serveHijack forwards a request that may become a raw bidirectional stream.
//
// httputil.ReverseProxy handles "101 Switching Protocols", but it ends both
// directions as soon as one of them does; Docker relies on half-close
// (`echo data | docker exec -i C cat` closes stdin and then waits for
// output), and on the legacy 200 raw-stream hijack, which ReverseProxy
// does not know. So this path talks to the daemon on its own connection.
// It returns the stream bytes copied each way, for the audit log.
func (g *Gateway) serveHijack(w http.ResponseWriter, r *http.Request, cc *clientConn) (in, out int64) {
	up, err := g.upstream.dial(r.Context())
	if err != nil {
		g.upstreamError(w, r, err)
		return 0, 0
	}
	outReq := g.outgoingRequest(r)
	if err := outReq.Write(up); err != nil {
		up.Close()
		g.upstreamError(w, r, err)
		return 0, 0
	}
	upReader := bufio.NewReader(up)
	resp, err := http.ReadResponse(upReader, outReq)
	if err != nil {
		up.Close()
		g.upstreamError(w, r, err)
		return 0, 0
	}
	if !isStreamResponse(resp) {
		defer up.Close()
		relayResponse(w, resp)
		return 0, 0
	}
	client, clientBuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		resp.Body.Close()
		g.log.Error("failed to hijack client connection", "err", err)
		return 0, 0
	}
	cc.hijacked.Store(true)
	g.conns.hijacked.Add(1)
	g.metrics.hijackedStreams.Inc()
	defer func() {
		g.conns.hijacked.Add(-1)
		g.metrics.hijackedStreams.Dec()
	}()
	if err := writeResponseHead(clientBuf.Writer, resp); err != nil {
		client.Close()
		up.Close()
		return 0, 0
	}
	return pipeStreams(client, clientBuf.Reader, up, upReader)
}

// outgoingRequest is the request as the daemon should see it: same method,
// path, query, headers (including Upgrade) and body.
func (g *Gateway) outgoingRequest(r *http.Request) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme = g.upstream.scheme()
	out.URL.Host = g.upstream.host()
	for _, h := range forwardingHeaders {
		out.Header.Del(h)
	}
	if r.ContentLength == 0 {
		out.Body = nil
	}
	return out
}

// forwardingHeaders are dropped so a client cannot claim to be someone
// else to the daemon or to anything behind it.
var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// isStreamResponse reports whether the daemon switched the connection to a
// raw stream: 101 for upgrades, or 200 with Docker's raw-stream content
// types for the legacy hijack.
func isStreamResponse(resp *http.Response) bool {
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return true
	}
	if resp.StatusCode != http.StatusOK {
		return false
	}
	ct := resp.Header.Get("Content-Type")
	return strings.HasPrefix(ct, "application/vnd.docker.raw-stream") ||
		strings.HasPrefix(ct, "application/vnd.docker.multiplexed-stream")
}

// relayResponse copies an ordinary (non-stream) answer to the client.
func relayResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		if isHopByHop(k) {
			continue
		}
		w.Header()[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	io.CopyBuffer(w, resp.Body, buf)
}

func isHopByHop(h string) bool {
	switch http.CanonicalHeaderKey(h) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// writeResponseHead writes the daemon's status line and headers verbatim
// (Upgrade and Connection included: they belong to this switch).
func writeResponseHead(w *bufio.Writer, resp *http.Response) error {
	fmt.Fprintf(w, "HTTP/1.1 %s\r\n", resp.Status)
	resp.Header.Write(w)
	w.WriteString("\r\n")
	return w.Flush()
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
