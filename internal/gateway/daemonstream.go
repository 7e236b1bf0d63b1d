package gateway

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/internal/policy"
)

// stream sends a request whose body streams from the client (build
// contexts, archives, image loads) while the daemon's answer streams back:
// a goroutine writes the body, chunked when its length is unknown, while
// the serving goroutine reads and relays the answer.
func (d *daemon) stream(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		r.ContentLength = 0
		d.forward(w, r)
		return
	}
	// The answer's head may go out while the body is still read (image
	// load reports progress as it goes): without full duplex, net/http
	// would swallow the unread body when the head is written.
	http.NewResponseController(w).EnableFullDuplex()
	ctx := r.Context()
	req := newRequest(r)
	dc, err := d.sendHead(ctx, &req, r.ContentLength)
	if err != nil {
		d.fail(w, r, err)
		return
	}
	dc.guard(ctx)
	sent := make(chan error, 1)
	go func() {
		err := writeBody(dc.conn, r.Body, r.ContentLength)
		if err != nil {
			dc.conn.Close() // the daemon must not wait for the rest, nor the reader below
		}
		sent <- err
	}()
	h := getHead()
	defer putHead(h)
	err = readAnswer(dc, h, r.Method, "")
	reusable := err == nil && d.relay(w, r, dc, h)
	bodyErr := waitBody(w, dc, sent)
	reusable = dc.unguard() && reusable && bodyErr == nil
	switch {
	case err != nil && errors.Is(bodyErr, policy.ErrBuildContext):
		// The policy cut the body: the daemon got no whole context.
		writeError(w, http.StatusBadRequest, "dockgate: "+bodyErr.Error())
	case err != nil:
		d.fail(w, r, err)
	}
	d.release(dc, reusable)
}

// sendHead writes the head of a request whose body follows, on a pooled
// connection or a new one. No byte of the body has been read yet, so a
// head that could not be written on a pooled connection is written again
// on a fresh one.
func (d *daemon) sendHead(ctx context.Context, req *daemonRequest, length int64) (*daemonConn, error) {
	dc, err := d.conn(ctx)
	if err != nil {
		return nil, err
	}
	d.writeHead(dc.bw, req, length)
	if err = dc.bw.Flush(); err == nil {
		return dc, nil
	}
	dc.conn.Close()
	if !dc.reused || ctx.Err() != nil {
		return nil, err
	}
	d.dropIdle("a request failed on a reused connection: " + err.Error())
	if dc, err = d.dial(ctx); err != nil {
		return nil, err
	}
	d.writeHead(dc.bw, req, length)
	if err = dc.bw.Flush(); err != nil {
		dc.conn.Close()
		return nil, err
	}
	return dc, nil
}

// readAnswer reads the head of the answer, skipping informational ones.
// A 101 is an answer only to a request for upgrade.
func readAnswer(dc *daemonConn, h *respHead, method, upgrade string) error {
	for range max1xxAnswers + 1 {
		if err := readHead(dc.br, h, method); err != nil {
			if len(h.raw) == 0 {
				return &silentError{err}
			}
			return err
		}
		switch {
		case h.status == http.StatusSwitchingProtocols && upgrade == "":
			return errUnexpected101
		case h.status >= 200 || h.status == http.StatusSwitchingProtocols:
			return nil
		}
	}
	return errTooMany1xx
}

// errBodyAborted: the daemon answered before it read the whole body.
var errBodyAborted = errors.New("the daemon answered before it read the whole request body")

// waitBody waits for the body writer. When the answer ended first, the
// daemon will not read the rest: closing the connection ends a write to
// it, and the client's reading is cut after abortGrace, which ends a read
// of the client's body (a handler must not return while it is read).
func waitBody(w http.ResponseWriter, dc *daemonConn, sent <-chan error) error {
	t := time.NewTimer(bodyReportGrace)
	defer t.Stop()
	select {
	case err := <-sent:
		return err
	case <-t.C:
	}
	dc.conn.Close()
	t.Reset(abortGrace)
	select {
	case <-sent:
	case <-t.C:
		http.NewResponseController(w).SetReadDeadline(time.Now())
		<-sent
	}
	return errBodyAborted
}

// bodyReportGrace is how long the body writer has to report once the
// answer has ended. dockerd answers after it read the whole body, unless
// it refuses the request early, so the writer is done but for its return:
// microseconds. Only an early refusal waits this long before the
// connection is cut.
const bodyReportGrace = 100 * time.Millisecond

// writeBody copies a request body of length bytes, or chunked when
// length is -1, to the daemon.
func writeBody(conn net.Conn, body io.Reader, length int64) error {
	buf := copyBuffers.Get()
	defer copyBuffers.Put(buf)
	if length < 0 {
		return writeChunked(conn, body, buf)
	}
	for length > 0 {
		n, err := body.Read(buf[:min(length, int64(len(buf)))])
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return werr
			}
			length -= int64(n)
		}
		if errors.Is(err, io.EOF) && length > 0 {
			return io.ErrUnexpectedEOF
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
	}
	return nil
}

// chunkRoom is the room left before the data in a copy buffer for the
// chunk size line: "8000\r\n" for a 32 KiB buffer.
const chunkRoom = 8

// writeChunked writes body in the chunked coding, one write per read:
// the size line goes in front of the data and the CRLF after it, in the
// same buffer.
func writeChunked(conn net.Conn, body io.Reader, buf []byte) error {
	for {
		n, err := body.Read(buf[chunkRoom : len(buf)-2])
		if n > 0 {
			var size [chunkRoom]byte
			line := append(strconv.AppendInt(size[:0], int64(n), 16), '\r', '\n')
			start := chunkRoom - len(line)
			copy(buf[start:], line)
			buf[chunkRoom+n], buf[chunkRoom+n+1] = '\r', '\n'
			if _, werr := conn.Write(buf[start : chunkRoom+n+2]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			_, err = io.WriteString(conn, "0\r\n\r\n")
			return err
		}
		if err != nil {
			return err
		}
	}
}
