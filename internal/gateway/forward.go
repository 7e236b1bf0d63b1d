package gateway

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The gateway's own HTTP/1.1 client for the daemon. Unlike http.Transport
// it does the whole exchange on the serving goroutine: no read and write
// loop goroutines, no channel hand-offs, no header clones. Profiles of
// http.Transport showed those hand-offs (each a possible thread switch)
// as the largest cost of a proxied /_ping. It carries requests whose body
// the gateway already holds (none, or a checked JSON body); streamed
// bodies (build contexts, archives, image loads) go through
// httputil.ReverseProxy, whose transport copies both ways at once.

// upConn is one idle-able connection to the daemon.
type upConn struct {
	conn   net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	reused bool
}

// connPool keeps idle daemon connections, most recently used first.
type connPool struct {
	mu   sync.Mutex
	idle []*upConn
	max  int
	dial func(context.Context) (net.Conn, error)
}

func (p *connPool) get(ctx context.Context) (*upConn, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		uc := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		uc.reused = true
		return uc, nil
	}
	p.mu.Unlock()
	conn, err := p.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &upConn{conn: conn, br: bufio.NewReader(conn), bw: bufio.NewWriter(conn)}, nil
}

func (p *connPool) put(uc *upConn) {
	p.mu.Lock()
	if len(p.idle) < p.max {
		p.idle = append(p.idle, uc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	uc.conn.Close()
}

func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, uc := range idle {
		uc.conn.Close()
	}
}

// forward sends r to the daemon and streams the answer to w.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request) {
	resp, uc, err := g.roundTrip(r)
	if err != nil {
		g.upstreamError(w, r, err)
		return
	}
	reusable := g.relay(w, r, resp, uc)
	if reusable {
		g.pool.put(uc)
	} else {
		uc.conn.Close()
	}
}

// roundTrip writes the request and reads the response head. A request
// without a body that failed on a reused idle connection (the daemon
// closed it meanwhile) is tried once more on a fresh one, as
// http.Transport does.
func (g *Gateway) roundTrip(r *http.Request) (*http.Response, *upConn, error) {
	for attempt := 0; ; attempt++ {
		uc, err := g.pool.get(r.Context())
		if err != nil {
			return nil, nil, err
		}
		resp, err := exchange(uc, r)
		if err == nil {
			return resp, uc, nil
		}
		uc.conn.Close()
		if !uc.reused || attempt > 0 || r.ContentLength != 0 {
			return nil, nil, err
		}
	}
}

func exchange(uc *upConn, r *http.Request) (*http.Response, error) {
	if err := writeRequest(uc.bw, r); err != nil {
		return nil, err
	}
	for {
		resp, err := http.ReadResponse(uc.br, r)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
		// 1xx informational answers (100 Continue) are not relayed.
	}
}

// writeRequest writes r as the daemon should see it: the path exactly as
// classified, the query, the end-to-end headers, and the body.
func writeRequest(bw *bufio.Writer, r *http.Request) error {
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(r.URL.EscapedPath())
	if r.URL.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(r.URL.RawQuery)
	}
	bw.WriteString(" HTTP/1.1\r\nHost: docker\r\n")
	listed := r.Header["Connection"]
	for k, vs := range r.Header {
		if skipRequestHeader(k, listed) {
			continue
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	if r.ContentLength > 0 {
		bw.WriteString("Content-Length: ")
		bw.WriteString(strconv.FormatInt(r.ContentLength, 10))
		bw.WriteString("\r\n\r\n")
		if _, err := io.Copy(bw, r.Body); err != nil {
			return err
		}
	} else {
		bw.WriteString("\r\n")
	}
	return bw.Flush()
}

// skipRequestHeader: hop-by-hop headers (RFC 9110 7.6.1) and those the
// Connection header names belong to the client's connection, and
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
		for _, tok := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), k) {
				return true
			}
		}
	}
	return false
}

// relay copies the daemon's answer to the client and reports whether the
// daemon connection can serve another request. A streamed answer (logs
// -f, events, pull progress: no Content-Length) is flushed after every
// read, so each line reaches the client as the daemon writes it.
func (g *Gateway) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, uc *upConn) bool {
	// A client that goes away must not leave the daemon connection blocked
	// in a read of a stream with nothing to say (events with no events).
	stop := context.AfterFunc(r.Context(), func() { uc.conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	h := w.Header()
	listed := resp.Header["Connection"]
	for k, vs := range resp.Header {
		if isHopByHop(k) || listedIn(k, listed) {
			continue
		}
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	var err error
	if resp.ContentLength < 0 {
		// The head goes out at once: the docker CLI waits for the head of
		// POST /containers/{id}/wait, which dockerd flushes as soon as the
		// wait is registered, before it starts the container.
		http.NewResponseController(w).Flush()
		err = copyFlushing(w, resp.Body, buf)
	} else {
		_, err = io.CopyBuffer(w, resp.Body, buf)
	}
	resp.Body.Close()
	framed := resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0
	return err == nil && framed && !resp.Close && stop()
}

// copyFlushing copies src to w, flushing after each read.
func copyFlushing(w http.ResponseWriter, src io.Reader, buf []byte) error {
	flusher, _ := w.(http.Flusher)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
