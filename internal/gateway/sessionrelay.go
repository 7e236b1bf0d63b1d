package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
	"strconv"
	"sync"

	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/policy"
)

// The Dockerfile of a BuildKit session
//
// With buildx's docker driver, dockerd's Dockerfile frontend reads the
// Dockerfile from the client: POST /session upgrades to h2c, and on that
// connection the daemon is the gRPC client and the docker CLI the server.
// The daemon calls /moby.filesync.v1.FileSync/DiffCopy with a "dir-name"
// header naming the directory it wants ("dockerfile" for the Dockerfile,
// with "followpaths" naming the Dockerfile and its ignore file), and the
// client streams fsutil packets back: a PACKET_STAT per entry, then for
// each file the daemon asks for, PACKET_DATA messages with its bytes and
// an empty PACKET_DATA at its end.
//
// For a role that may not fetch from the host's network
// (Verdict.InspectSession), the relay reads the client's messages on such
// a stream and holds its frames while a file's content is incomplete;
// once it is, the policy judges the file (JudgeSessionDockerfile). An
// allowed file's frames are forwarded as the client sent them; a refused
// one never reaches the daemon: the daemon gets the call's end with a gRPC
// PermissionDenied status and the policy's sentence, the client a
// RST_STREAM. Every other stream and frame passes unchanged, and header
// blocks are always forwarded (HPACK's table is the connection's).

// dockerfileJudge decides one file of the session's "dockerfile"
// directory.
type dockerfileJudge func(path string, data []byte, ignoreFile bool) policy.SolveVerdict

// diffCopyMethod is the FileSync call whose packets the relay reads.
const diffCopyMethod = "/moby.filesync.v1.FileSync/DiffCopy"

// maxSessionDockerfile bounds a file the relay reads from the session's
// "dockerfile" directory. The daemon, which sees none of a held file,
// grants the client no flow-control window past what it granted before:
// 65535 bytes is what every HTTP/2 stream and connection starts with (RFC
// 9113 section 6.9.2), of which a gRPC receiver may leave a quarter
// unacknowledged. A larger file could stall, so it is refused with a
// sentence instead.
const maxSessionDockerfile = 40 << 10

// maxSessionHeld bounds the DATA the relay holds on a connection, over
// all its streams: a file, the packets' framing, and the messages around
// it. The client's sends on all streams share one connection window, so
// this bounds the holding of several "dockerfile" streams at once too;
// past it a stream is refused rather than left to stall.
const maxSessionHeld = maxSessionDockerfile + 4<<10

// sessionRelay relays one h2c BuildKit session, reading the Dockerfiles
// the daemon fetches through it.
type sessionRelay struct {
	judge dockerfileJudge
	log   *slog.Logger

	upMu sync.Mutex // whole frames and header blocks to the daemon
	up   io.Writer

	clientMu sync.Mutex // whole frames and header blocks to the client
	client   io.Writer

	mu      sync.Mutex
	streams map[uint32]*syncStream // "dockerfile" streams, by the daemon's HEADERS

	// held is the flow-controlled DATA held on all streams; written by
	// the client loop.
	held uint32

	// refused are the files refused (or forwarded in audit mode that a
	// role would refuse), for the audit record; written by the client
	// loop.
	refused []policy.SolveVerdict
}

// syncStream is a daemon call for the "dockerfile" directory.
type syncStream struct {
	diffCopy bool            // a DiffCopy call, whose packets the relay reads
	ignore   map[string]bool // the ignore files followpaths names
	refused  bool
	// ended: the client ended its side of the stream; DATA it sends
	// after that is dropped, never judged or forwarded.
	ended bool

	buf   []byte            // client message bytes not yet parsed
	paths []string          // the STAT packets' paths, by ID
	open  map[uint32][]byte // the content of files not yet whole
	held  []byte            // raw client frames not yet forwarded
	flow  uint32            // flow-controlled bytes in held
}

// pipeSession is pipeStreams for an upgraded /session connection whose
// Dockerfiles the gateway reads. It also returns the files it refused,
// and those forwarded that a role in audit mode would refuse.
func pipeSession(client net.Conn, clientIn io.Reader, up net.Conn, upIn io.Reader, judge dockerfileJudge, log *slog.Logger) (in, out int64, refused []policy.SolveVerdict) {
	s := &sessionRelay{judge: judge, log: log, up: up, client: client, streams: map[uint32]*syncStream{}}
	in, out = pipeFrames(client, up, func() (int64, error) { return s.fromClient(clientIn) },
		func() (int64, error) { return s.fromDaemon(upIn) }, "session", log)
	return in, out, s.refused
}

// fromDaemon relays the daemon's preface and frames whole, noting its
// calls for the "dockerfile" directory.
func (s *sessionRelay) fromDaemon(r io.Reader) (int64, error) {
	write := func(b []byte) error { return s.write(&s.clientMu, s.client, b) }
	n, err := relayPreface(r, write)
	if err != nil {
		return n, err
	}
	m, err := relayFrames(r, func(f http2.Frame, raw []byte) ([]byte, error) {
		if h, ok := f.(*http2.MetaHeadersFrame); ok {
			s.noteCall(h)
		}
		return raw, nil
	}, write)
	return n + m, err
}

// noteCall registers a daemon call for the "dockerfile" directory before
// the client can answer it.
func (s *sessionRelay) noteCall(h *http2.MetaHeadersFrame) {
	var dir, method string
	var follow []string
	for _, f := range h.Fields {
		switch f.Name {
		case ":path":
			method = f.Value
		case "dir-name":
			dir = f.Value
		case "followpaths":
			follow = append(follow, f.Value)
		}
	}
	if dir != policy.SessionDockerfileDir || h.StreamID == 0 {
		return
	}
	st := &syncStream{diffCopy: method == diffCopyMethod, ignore: map[string]bool{}, open: map[uint32][]byte{}}
	for _, p := range follow {
		st.ignore[path.Clean(p+".dockerignore")] = true
	}
	s.mu.Lock()
	if s.streams[h.StreamID] == nil {
		s.streams[h.StreamID] = st
	}
	s.mu.Unlock()
}

func (s *sessionRelay) write(mu *sync.Mutex, w io.Writer, b []byte) error {
	mu.Lock()
	defer mu.Unlock()
	_, err := w.Write(b)
	return err
}

// fromClient relays the client's frames, reading those of "dockerfile"
// streams. It returns the bytes forwarded.
func (s *sessionRelay) fromClient(r io.Reader) (int64, error) {
	return relayFrames(r, s.clientFrame, func(b []byte) error { return s.write(&s.upMu, s.up, b) })
}

// clientFrame decides what of one client frame (raw: its bytes as read)
// goes to the daemon now.
func (s *sessionRelay) clientFrame(f http2.Frame, raw []byte) ([]byte, error) {
	id := f.Header().StreamID
	s.mu.Lock()
	st := s.streams[id]
	s.mu.Unlock()
	if st == nil {
		return raw, nil
	}
	switch f := f.(type) {
	case *http2.DataFrame:
		if st.refused || st.ended {
			return nil, s.credit(f.Header().Length)
		}
		return s.data(id, st, f, raw)
	case *http2.MetaHeadersFrame:
		// Always forwarded: the daemon must decode every header block.
		if !st.refused && len(st.held) > 0 {
			// The call's end, with DATA still held: what is held is
			// not whole, so it does not reach the daemon.
			if err := s.refuse(id, st, 0, s.refusal("the file the BuildKit session sent ended before it was whole")); err != nil {
				return nil, err
			}
		}
		if f.StreamEnded() {
			// The client sends nothing more on the stream: any DATA
			// after its end (or, on a refused one, sent before it read
			// the reset) must not pass. What was held is gone.
			st.ended, st.held, st.buf, st.open = true, nil, nil, nil
		}
		return raw, nil
	case *http2.RSTStreamFrame:
		if !st.refused && len(st.held) > 0 {
			// The client gave up with DATA held: the daemon gets the
			// reset, and nothing of what is held.
			if err := s.credit(st.flow); err != nil {
				return nil, err
			}
			s.held -= st.flow
			st.refused, st.held, st.buf, st.flow, st.open = true, nil, nil, 0, nil
			return raw, nil
		}
	}
	if st.refused {
		return nil, nil
	}
	// WINDOW_UPDATE, PRIORITY, RST_STREAM: not held, so that the daemon
	// can go on sending.
	return raw, nil
}

// refusal is the relay's own refusal of what it cannot read; the judge
// logs its own.
func (s *sessionRelay) refusal(reason string) policy.SolveVerdict {
	s.log.Warn("refused a BuildKit session's Dockerfile the gateway cannot read", "reason", reason)
	return policy.SolveVerdict{Effect: policy.Deny, Reason: reason, Message: "dockgate: " + reason}
}

// data reads one client DATA frame of a "dockerfile" stream.
func (s *sessionRelay) data(id uint32, st *syncStream, f *http2.DataFrame, raw []byte) ([]byte, error) {
	flow := f.Header().Length
	if !st.diffCopy {
		return nil, s.refuse(id, st, flow, s.refusal("the BuildKit session sends the Dockerfile in a way the gateway does not read (not FileSync DiffCopy)"))
	}
	st.buf = append(st.buf, f.Data()...)
	for {
		msg, rest, err := grpcMessageOf(st.buf)
		if err != nil {
			return nil, s.refuse(id, st, flow, s.refusal(err.Error()))
		}
		if msg == nil {
			break
		}
		st.buf = rest
		if v, ok := s.packet(st, msg); !ok {
			return nil, s.refuse(id, st, flow, v)
		}
	}
	if len(st.open) == 0 && len(st.buf) == 0 {
		fwd := append(st.held, raw...)
		s.held -= st.flow
		st.held, st.flow = nil, 0
		return fwd, nil
	}
	st.held = append(st.held, raw...)
	st.flow += flow
	s.held += flow
	if s.held > maxSessionHeld {
		return nil, s.refuse(id, st, 0, s.refusal(fmt.Sprintf("the BuildKit session sent more than the %d bytes the gateway holds to read Dockerfiles", maxSessionHeld)))
	}
	return nil, nil
}

// grpcMessageOf splits the first gRPC message (a compressed-flag byte, a
// 4-byte big-endian length, the protobuf bytes) off b; msg is nil when b
// does not hold it whole yet.
func grpcMessageOf(b []byte) (msg, rest []byte, err error) {
	if len(b) < 5 {
		return nil, b, nil
	}
	if b[0] != 0 {
		return nil, nil, errors.New("the BuildKit session sent a compressed message, which the gateway does not read")
	}
	size := binary.BigEndian.Uint32(b[1:5])
	if size > maxSessionHeld {
		return nil, nil, fmt.Errorf("the BuildKit session sent a message of %d bytes, more than the %d the gateway reads", size, maxSessionHeld)
	}
	if uint32(len(b)-5) < size {
		return nil, b, nil
	}
	return b[5 : 5+size], b[5+size:], nil
}

// packet reads one fsutil packet; ok is false when the stream is refused,
// with v saying why.
func (s *sessionRelay) packet(st *syncStream, msg []byte) (v policy.SolveVerdict, ok bool) {
	var p fstypes.Packet
	if err := proto.Unmarshal(msg, &p); err != nil {
		return s.refusal("the BuildKit session sent a packet that cannot be read: " + err.Error()), false
	}
	switch p.GetType() {
	case fstypes.Packet_PACKET_STAT:
		stat := p.GetStat()
		if stat == nil {
			return v, true // the end of the entries
		}
		if os.FileMode(stat.GetMode()).IsRegular() && stat.GetSize() > maxSessionDockerfile {
			return s.refusal(fmt.Sprintf("%s in the BuildKit session's Dockerfile directory has %d bytes, more than the %d the gateway reads; build with DOCKER_BUILDKIT=0, or give the role builds.remote_sources",
				strconv.Quote(stat.GetPath()), stat.GetSize(), maxSessionDockerfile)), false
		}
		st.paths = append(st.paths, stat.GetPath())
	case fstypes.Packet_PACKET_DATA:
		id := p.GetID()
		if len(p.GetData()) > 0 {
			st.open[id] = append(st.open[id], p.GetData()...)
			if len(st.open[id]) > maxSessionDockerfile {
				return s.refusal(fmt.Sprintf("a file in the BuildKit session's Dockerfile directory has more than the %d bytes the gateway reads", maxSessionDockerfile)), false
			}
			return v, true
		}
		name := "?"
		if int64(id) < int64(len(st.paths)) {
			name = st.paths[id]
		}
		data := st.open[id]
		delete(st.open, id)
		v = s.judge(name, data, st.ignore[path.Clean(name)])
		if !v.Forward() {
			return v, false
		}
		if v.Effect == policy.WouldDeny {
			s.refused = append(s.refused, v)
		}
	}
	return v, true
}

// refuse ends a "dockerfile" stream: the daemon gets the call's end with
// PermissionDenied and the sentence, and none of the held frames; the
// client a RST_STREAM, and its connection window back for the DATA the
// daemon will not see (flow more than what is held).
func (s *sessionRelay) refuse(id uint32, st *syncStream, flow uint32, v policy.SolveVerdict) error {
	s.refused = append(s.refused, v)
	flow += st.flow
	s.held -= st.flow
	st.refused, st.held, st.buf, st.flow, st.open = true, nil, nil, 0, nil

	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{
		{Name: "grpc-status", Value: strconv.Itoa(grpcPermissionDenied)},
		{Name: "grpc-message", Value: grpcMessage(v.Message)},
	} {
		f.Sensitive = true // never indexed: the client's table stays the daemon's
		if err := enc.WriteField(f); err != nil {
			return err
		}
	}
	var up bytes.Buffer
	if err := http2.NewFramer(&up, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	if err := s.write(&s.upMu, s.up, up.Bytes()); err != nil {
		return err
	}
	var out bytes.Buffer
	fw := http2.NewFramer(&out, nil)
	if err := fw.WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
		return err
	}
	if flow > 0 {
		if err := fw.WriteWindowUpdate(0, flow); err != nil {
			return err
		}
	}
	return s.write(&s.clientMu, s.client, out.Bytes())
}

// credit gives the client back the connection window of DATA the daemon
// will never see.
func (s *sessionRelay) credit(n uint32) error {
	if n == 0 {
		return nil
	}
	var out bytes.Buffer
	if err := http2.NewFramer(&out, nil).WriteWindowUpdate(0, n); err != nil {
		return err
	}
	return s.write(&s.clientMu, s.client, out.Bytes())
}
