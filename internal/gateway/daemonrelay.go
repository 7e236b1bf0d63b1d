package gateway

import (
	"bufio"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"time"
)

// relay copies the daemon's answer, whose head is read, to the client and
// reports whether the connection can carry another request.
//
// An answer of known length is not flushed: the server's response buffer
// sends the head and a small body in one write (one TLS record). An
// answer of unknown length (logs -f, events, pull progress) is flushed
// after every read, so that each line reaches the client as the daemon
// writes it.
func (d *daemon) relay(w http.ResponseWriter, r *http.Request, dc *daemonConn, h *respHead) bool {
	copyAnswerHeader(w.Header(), h)
	w.WriteHeader(h.status)
	switch h.framing {
	case bodyNone:
		return !h.close
	case bodyLength:
		return copyLength(w, r, dc, h.contentLength) && !h.close
	}
	return copyUnframed(w, r, dc, h) && !h.close
}

// copyLength copies a body of n bytes.
func copyLength(w http.ResponseWriter, r *http.Request, dc *daemonConn, n int64) bool {
	if int64(dc.br.Buffered()) >= n {
		// The whole body came with the head: the common case.
		body, _ := dc.br.Peek(int(n))
		_, err := w.Write(body)
		dc.br.Discard(int(n))
		return err == nil
	}
	ours := dc.stop == nil
	dc.guard(r.Context())
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	var err error
	for n > 0 && err == nil {
		var m int
		m, err = dc.br.Read(buf[:min(n, int64(len(buf)))])
		if m > 0 {
			n -= int64(m)
			if _, werr := w.Write(buf[:m]); werr != nil {
				err = werr
			}
		}
	}
	if ours && !dc.unguard() {
		return false
	}
	return n == 0
}

// copyUnframed copies a chunked or a close-delimited body, flushing after
// every read.
func copyUnframed(w http.ResponseWriter, r *http.Request, dc *daemonConn, h *respHead) bool {
	// The head goes out at once: the docker CLI waits for the head of
	// POST /containers/{id}/wait, which dockerd flushes as soon as the
	// wait is registered, before it starts the container.
	rc := http.NewResponseController(w)
	rc.Flush()
	ours := dc.stop == nil
	dc.guard(r.Context())
	var src io.Reader = dc.br
	if h.framing == bodyChunked {
		src = httputil.NewChunkedReader(dc.br)
	}
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	err := copyFlushing(w, rc, src, buf)
	if ours && !dc.unguard() {
		return false
	}
	if err != nil || h.framing != bodyChunked {
		return false
	}
	return skipTrailer(dc.br) == nil
}

// copyFlushing copies src to w, flushing after each read.
func copyFlushing(w io.Writer, rc *http.ResponseController, src io.Reader, buf []byte) error {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// skipTrailer reads the trailer section after the last chunk up to its
// empty line; trailers are not relayed (dockerd sends none).
func skipTrailer(br *bufio.Reader) error {
	total := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if total += len(line); total > maxHeadBytes {
			return errHeadTooLarge
		}
		if len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
}

// readBody reads an answer's body, at most limit bytes; whole is true
// when the body ended within them and the connection can be reused.
func readBody(br *bufio.Reader, h *respHead, limit int64) (data []byte, whole bool, err error) {
	var src io.Reader
	switch h.framing {
	case bodyNone:
		return nil, !h.close, nil
	case bodyLength:
		src = io.LimitReader(br, h.contentLength)
	case bodyChunked:
		src = httputil.NewChunkedReader(br)
	default:
		src = br
	}
	data, err = io.ReadAll(io.LimitReader(src, limit+1))
	switch {
	case err != nil:
		return nil, false, err
	case int64(len(data)) > limit:
		return data[:limit], false, nil // truncated, as the lookups expect
	case h.framing == bodyLength && int64(len(data)) < h.contentLength:
		return nil, false, io.ErrUnexpectedEOF
	case h.framing == bodyChunked:
		return data, skipTrailer(br) == nil && !h.close, nil
	}
	return data, h.framing == bodyLength && !h.close, nil
}

// copyAnswerHeader copies the daemon's header fields to the client's
// answer, without the hop-by-hop ones and those the daemon's Connection
// header names. The values share one slice: one allocation, not one per
// field.
func copyAnswerHeader(dst http.Header, h *respHead) {
	values := make([]string, len(h.fields))
	connection := h.connectionValues()
	for i, f := range h.fields {
		if isHopByHop(f.key) || connection != nil && listedIn(f.key, connection) {
			continue
		}
		if old, ok := dst[f.key]; ok {
			if f.key != "Content-Length" { // a repeated equal length was checked; send one
				dst[f.key] = append(old, f.value)
			}
			continue
		}
		values[i] = f.value
		dst[f.key] = values[i : i+1 : i+1]
	}
}

// connectionValues returns the Connection fields, nil when there are none.
func (h *respHead) connectionValues() []string {
	var out []string
	for _, f := range h.fields {
		if f.key == "Connection" {
			out = append(out, f.value)
		}
	}
	return out
}

func isHopByHop(k string) bool {
	switch k {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// writeStreamHead writes a head that switches the client connection to a
// stream verbatim: Upgrade and Connection included, they belong to this
// switch.
func writeStreamHead(w *bufio.Writer, h *respHead) error {
	var code [3]byte
	w.WriteString("HTTP/1.1 ")
	w.Write(appendStatus(code[:0], h.status))
	if h.reason != "" {
		w.WriteByte(' ')
		w.WriteString(h.reason)
	}
	w.WriteString("\r\n")
	for _, f := range h.fields {
		writeField(w, f.key, f.value)
	}
	w.WriteString("\r\n")
	return w.Flush()
}

func appendStatus(b []byte, status int) []byte {
	return append(b, byte('0'+status/100), byte('0'+status/10%10), byte('0'+status%10))
}

// abortGrace is how long a streamed request body may go on after the
// daemon answered without reading it all, before the client's reading is
// cut: the client is told at once that the exchange is over and the
// connection closes, so a second is plenty.
const abortGrace = time.Second
