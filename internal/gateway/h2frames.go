package gateway

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// The frame plumbing the BuildKit relays share (grpcrelay.go on /grpc,
// sessionrelay.go on /session): each frame is read with x/net/http2's
// framer, decided on, and forwarded as the peer wrote it, never encoded
// again, so that the peers' HPACK tables stay in step.

// recorder keeps what the framer reads, so that a frame is forwarded as
// the peer wrote it.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

// newFramer reads HTTP/2 frames from r, header blocks whole (HEADERS and
// its CONTINUATIONs), decoded with a table of its own.
func newFramer(r io.Reader) *http2.Framer {
	fr := http2.NewFramer(nil, r)
	fr.SetMaxReadFrameSize(maxClientFrame)
	fr.ReadMetaHeaders = hpack.NewDecoder(maxHeaderTable, nil)
	return fr
}

// relayPreface reads the HTTP/2 client preface from r and writes it on.
func relayPreface(r io.Reader, write func([]byte) error) (int64, error) {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(r, preface); err != nil {
		return 0, err
	}
	if string(preface) != http2.ClientPreface {
		return 0, errPreface
	}
	if err := write(preface); err != nil {
		return 0, err
	}
	return int64(len(preface)), nil
}

// relayFrames reads frames from r until it fails, writes what decide
// returns for each (raw: the frame's bytes as read; nothing to hold or
// drop it), and returns the bytes written.
func relayFrames(r io.Reader, decide func(f http2.Frame, raw []byte) ([]byte, error), write func([]byte) error) (int64, error) {
	var n int64
	rec := &recorder{r: r}
	fr := newFramer(rec)
	for {
		rec.buf.Reset()
		f, err := fr.ReadFrame()
		if err != nil {
			return n, err
		}
		fwd, err := decide(f, rec.buf.Bytes())
		if err != nil {
			return n, err
		}
		if len(fwd) > 0 {
			if err := write(fwd); err != nil {
				return n, err
			}
			n += int64(len(fwd))
		}
	}
}

// pipeFrames runs a BuildKit relay's two directions (fromClient in a
// goroutine of its own) and closes both connections when both are done.
// Each ends only with an error, io.EOF when its peer is done; any other
// means frames the relay cannot follow, which are never forwarded blind:
// both connections are closed at once. what names the stream in the log.
func pipeFrames(client, up net.Conn, fromClient, fromDaemon func() (int64, error), what string, log *slog.Logger) (in, out int64) {
	cannotRead := func(err error) bool {
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return false
		}
		log.Warn("closing a BuildKit "+what+" the gateway cannot read", "err", err)
		client.Close()
		up.Close()
		return true
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		if in, err = fromClient(); !cannotRead(err) {
			closeWrite(up)
		}
	})
	var err error
	out, err = fromDaemon()
	cannotRead(err)
	closeWrite(client)
	client.SetReadDeadline(time.Now().Add(hijackGrace))
	wg.Wait()
	client.Close()
	up.Close()
	return in, out
}
