package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/policy"
)

// BuildKit's gRPC API through the gateway
//
// The docker CLI and buildx reach dockerd's BuildKit with POST /grpc and
// "Upgrade: h2c": after the 101 the connection carries HTTP/2 frames, and
// in them gRPC calls to BuildKit's control API. A Solve call starts a
// build and names what it may do (entitlements, exporters, caches), so the
// relay reads the client's frames (http2.Framer, with an HPACK decoder
// that follows the client's header blocks), holds the DATA of each Solve
// call until its request message is whole, decodes it with BuildKit's own
// protobuf types and asks the policy (policy.JudgeSolve). An allowed call
// is forwarded as the client sent it, byte for byte; a denied one never
// reaches the daemon with its request: the daemon sees the call's headers
// and a RST_STREAM, and the client a gRPC PermissionDenied status with
// the policy's sentence. Every other frame, stream and method passes as it
// came.
//
// Header blocks are never held or dropped: HPACK's dynamic table is
// shared by all streams of the connection, and the daemon must decode
// every block the client encodes. The gateway's own answer to a denied
// call is encoded without touching the client's table (never-indexed
// literals, static-table names only).

// solveJudge decides one decoded request of a judged call: a
// *controlapi.SolveRequest or a *gatewaypb.SolveRequest.
type solveJudge func(proto.Message) policy.SolveVerdict

// judgedMethods are the calls whose request the relay holds and judges,
// by method name without the leading slash: the Solve that starts a
// build, and the Solve a frontend run by the client asks for.
var judgedMethods = map[string]func() proto.Message{
	strings.TrimPrefix(policy.SolveMethod, "/"):         func() proto.Message { return new(controlapi.SolveRequest) },
	strings.TrimPrefix(policy.FrontendSolveMethod, "/"): func() proto.Message { return new(gatewaypb.SolveRequest) },
	// A session inside the connection: judged (JudgeSessionCall) on its
	// first message, whose bytes are not read.
	strings.TrimPrefix(policy.SessionMethod, "/"): func() proto.Message { return new(controlapi.BytesMessage) },
}

// maxHeldSolve bounds the DATA a Solve call may send before its request
// message is whole: 65535 bytes is the initial flow-control window
// (RFC 9113 section 6.9.2) that every HTTP/2 peer starts a stream with,
// and the daemon, which has not seen the DATA, grants no more. A larger
// request would stall, so it is denied with a sentence instead.
const maxHeldSolve = 65535

// maxHeaderTable bounds the HPACK dynamic table the client may use: the
// default is 4096 bytes (RFC 7541 section 6.3), which gRPC servers keep;
// room to spare for a daemon that advertises more.
const maxHeaderTable = 64 << 10

// maxClientFrame bounds a client frame the relay reads: dockerd serves
// /grpc with x/net/http2's server, which advertises 1 MiB as its
// SETTINGS_MAX_FRAME_SIZE and refuses larger frames (gRPC clients send
// 16 KiB ones).
const maxClientFrame = 1 << 20

// errPreface: the client did not start HTTP/2 with the connection preface.
var errPreface = errors.New("no HTTP/2 client preface")

// grpcRelay relays one h2c connection to BuildKit, reading the client's
// frames.
type grpcRelay struct {
	judge solveJudge
	log   *slog.Logger
	up    io.Writer // the daemon; written by the client loop only

	clientMu sync.Mutex // whole frames to the client, from both directions
	client   io.Writer

	mu      sync.Mutex
	denied  map[uint32]bool // streams answered by the gateway
	pending map[uint32]*heldCall

	// refused are the calls denied (or forwarded in audit mode that a
	// role would deny), for the audit record; written by the client loop.
	refused []policy.SolveVerdict
}

// heldCall is a judged call whose request message is not yet whole.
type heldCall struct {
	newMsg func() proto.Message // the request's type
	frames []byte               // the raw DATA frames, to forward if allowed
	msg    []byte               // the gRPC message bytes so far
	flow   uint32               // flow-controlled bytes the frames carried
}

// pipeGRPC is pipeStreams for an upgraded /grpc connection: the daemon's
// frames are relayed whole, the client's read and judged. It also returns
// the calls it refused, and those forwarded that a role in audit mode
// would refuse.
func pipeGRPC(client net.Conn, clientIn io.Reader, up net.Conn, upIn io.Reader, judge solveJudge, log *slog.Logger) (in, out int64, refused []policy.SolveVerdict) {
	g := &grpcRelay{judge: judge, log: log, up: up, client: client,
		denied: map[uint32]bool{}, pending: map[uint32]*heldCall{}}
	// fromDaemon drops nothing it cannot read: it only ends.
	in, out = pipeFrames(client, up, func() (int64, error) { return g.fromClient(clientIn) },
		func() (int64, error) { return g.fromDaemon(upIn), io.EOF }, "connection", log)
	return in, out, g.refused
}

// fromDaemon relays the daemon's frames whole, dropping those of streams
// the gateway answered itself.
func (g *grpcRelay) fromDaemon(r io.Reader) int64 {
	var n int64
	buf := make([]byte, 0, 32<<10)
	for {
		fh, err := http2.ReadFrameHeader(r)
		if err != nil {
			return n
		}
		buf = buf[:frameHeaderLen+int(fh.Length)]
		putFrameHeader(buf, fh)
		if _, err := io.ReadFull(r, buf[frameHeaderLen:]); err != nil {
			return n
		}
		if g.isDenied(fh.StreamID) {
			continue
		}
		if err := g.toClient(buf); err != nil {
			return n
		}
		n += int64(len(buf))
	}
}

const frameHeaderLen = 9

func putFrameHeader(b []byte, fh http2.FrameHeader) {
	b[0], b[1], b[2] = byte(fh.Length>>16), byte(fh.Length>>8), byte(fh.Length)
	b[3], b[4] = byte(fh.Type), byte(fh.Flags)
	binary.BigEndian.PutUint32(b[5:], fh.StreamID)
}

func (g *grpcRelay) toClient(b []byte) error {
	g.clientMu.Lock()
	defer g.clientMu.Unlock()
	_, err := g.client.Write(b)
	return err
}

func (g *grpcRelay) isDenied(id uint32) bool {
	if id == 0 {
		return false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.denied[id]
}

// fromClient reads the client's preface and frames, forwarding each unless
// it belongs to a held or denied Solve call. It returns the bytes
// forwarded.
func (g *grpcRelay) fromClient(r io.Reader) (int64, error) {
	write := func(b []byte) error { _, err := g.up.Write(b); return err }
	n, err := relayPreface(r, write)
	if err != nil {
		return n, err
	}
	m, err := relayFrames(r, g.clientFrame, write)
	return n + m, err
}

// clientFrame decides what of one client frame (raw: its bytes as read)
// goes to the daemon now.
func (g *grpcRelay) clientFrame(f http2.Frame, raw []byte) ([]byte, error) {
	id := f.Header().StreamID
	g.mu.Lock()
	denied, held := g.denied[id], g.pending[id]
	g.mu.Unlock()
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		// Always forwarded: the daemon must decode every header block.
		switch {
		case held != nil:
			// Trailers before the request was whole.
			return raw, g.deny(id, held, policy.SolveVerdict{Message: "dockgate: the Solve request ended before its message was whole"})
		case denied:
		default:
			newMsg, judged := judgedCall(f.PseudoValue("path"))
			switch {
			case judged && f.StreamEnded():
				// A call whose headers end the stream carries no
				// request; whatever the client sends after them on it
				// must not reach the daemon.
				if _, err := g.up.Write(raw); err != nil {
					return nil, err
				}
				return nil, g.deny(id, &heldCall{}, policy.SolveVerdict{Message: "dockgate: the Solve request ended before its message was whole"})
			case judged && newMsg == nil:
				if _, err := g.up.Write(raw); err != nil {
					return nil, err
				}
				return nil, g.deny(id, &heldCall{}, policy.SolveVerdict{Message: "dockgate: the call's path cannot be read"})
			case judged:
				g.mu.Lock()
				g.pending[id] = &heldCall{newMsg: newMsg}
				g.mu.Unlock()
			}
		}
		return raw, nil
	case *http2.DataFrame:
		switch {
		case denied:
			return nil, g.credit(f.Header().Length)
		case held != nil:
			return g.hold(id, held, f, raw)
		}
	case *http2.RSTStreamFrame:
		if held != nil {
			// The client gave up; the daemon saw the headers and gets
			// the reset, and nothing more of the stream.
			g.mu.Lock()
			delete(g.pending, id)
			g.denied[id] = true
			g.mu.Unlock()
			return raw, nil
		}
		if denied {
			return nil, nil
		}
	default:
		if denied {
			return nil, nil
		}
	}
	return raw, nil
}

// hold adds a DATA frame to a held Solve call and judges the request once
// it is whole.
func (g *grpcRelay) hold(id uint32, c *heldCall, f *http2.DataFrame, raw []byte) ([]byte, error) {
	c.frames = append(c.frames, raw...)
	c.msg = append(c.msg, f.Data()...)
	c.flow += f.Header().Length
	req, err := solveRequest(c.msg, c.newMsg)
	switch {
	case err != nil:
		return nil, g.deny(id, c, policy.SolveVerdict{Message: "dockgate: " + err.Error()})
	case req == nil && f.StreamEnded():
		return nil, g.deny(id, c, policy.SolveVerdict{Message: "dockgate: the Solve request ended before its message was whole"})
	case req == nil && c.flow >= maxHeldSolve:
		return nil, g.deny(id, c, policy.SolveVerdict{Message: fmt.Sprintf(
			"dockgate: the Solve request is larger than the %d bytes the gateway holds to read it; build with a Dockerfile frontend, or give the role builds.buildkit_grpc: true", maxHeldSolve)})
	case req == nil:
		return nil, nil
	}
	v := g.judge(req)
	if !v.Forward() {
		return nil, g.deny(id, c, v)
	}
	if v.Effect == policy.WouldDeny {
		g.refused = append(g.refused, v)
	}
	g.mu.Lock()
	delete(g.pending, id)
	g.mu.Unlock()
	return c.frames, nil
}

// judgedCall says whether the daemon may route a call with this :path to
// a judged method, and which request type it takes. dockerd serves gRPC
// through net/http's handler, which routes by the decoded path without
// its query ("/moby.buildkit.v1.Control/%53olve?x" is Solve); gRPC's own
// transport routes by the raw path, with older versions taking it without
// the leading slash. A path that does not parse and names no judged
// method is judged with no type (newMsg nil): it is denied, since what
// the daemon would make of it is not known.
func judgedCall(p string) (newMsg func() proto.Message, judged bool) {
	if u, err := url.ParseRequestURI(p); err == nil {
		newMsg = judgedMethods[strings.TrimPrefix(u.Path, "/")]
		return newMsg, newMsg != nil
	}
	return judgedMethods[strings.TrimPrefix(p, "/")], true
}

// errSolveRequest: the request message of a Solve call is not what
// BuildKit's client sends.
var errSolveRequest = errors.New("the Solve request cannot be read")

// maxSolveMessage bounds a Solve request message the relay decodes.
const maxSolveMessage = maxHeldSolve

// solveRequest decodes the first gRPC message of a judged call (a
// compressed-flag byte, a 4-byte big-endian length, the protobuf bytes)
// as newMsg's type, or returns nil, nil when msg does not hold it whole
// yet.
func solveRequest(msg []byte, newMsg func() proto.Message) (proto.Message, error) {
	if len(msg) < 5 {
		return nil, nil
	}
	if msg[0] != 0 {
		return nil, fmt.Errorf("%w: it is compressed, which the gateway does not read", errSolveRequest)
	}
	size := binary.BigEndian.Uint32(msg[1:5])
	if size > maxSolveMessage {
		return nil, fmt.Errorf("%w: its %d bytes are more than the gateway reads (%d)", errSolveRequest, size, maxSolveMessage)
	}
	if uint32(len(msg)-5) < size {
		return nil, nil
	}
	req := newMsg()
	if err := proto.Unmarshal(msg[5:5+size], req); err != nil {
		return nil, fmt.Errorf("%w: %v", errSolveRequest, err)
	}
	return req, nil
}

// deny answers a Solve call with PermissionDenied: the daemon, which saw
// its headers only, gets RST_STREAM; the client the status and its flow
// control back for the DATA it sent.
func (g *grpcRelay) deny(id uint32, c *heldCall, v policy.SolveVerdict) error {
	g.mu.Lock()
	g.denied[id] = true
	delete(g.pending, id)
	g.mu.Unlock()
	if v.Reason == "" { // the relay's own refusal; the judge logs its own
		v.Reason = strings.TrimPrefix(v.Message, "dockgate: ")
		g.log.Warn("denied a BuildKit Solve the gateway cannot read", "message", v.Message)
	}
	g.refused = append(g.refused, v)
	var up bytes.Buffer
	if err := http2.NewFramer(&up, nil).WriteRSTStream(id, http2.ErrCodeCancel); err != nil {
		return err
	}
	if _, err := g.up.Write(up.Bytes()); err != nil {
		return err
	}
	return g.answer(id, c.flow, v.Message)
}

// answer writes a trailers-only gRPC answer with PermissionDenied (7) to
// the client, and gives back the connection window the held DATA used.
func (g *grpcRelay) answer(id, flow uint32, message string) error {
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, f := range []hpack.HeaderField{
		{Name: ":status", Value: "200"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "grpc-status", Value: strconv.Itoa(grpcPermissionDenied)},
		{Name: "grpc-message", Value: grpcMessage(message)},
	} {
		f.Sensitive = true // never indexed: the client's table stays the daemon's
		if err := enc.WriteField(f); err != nil {
			return err
		}
	}
	var out bytes.Buffer
	fw := http2.NewFramer(&out, nil)
	if err := fw.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		return err
	}
	if flow > 0 {
		if err := fw.WriteWindowUpdate(0, flow); err != nil {
			return err
		}
	}
	return g.toClient(out.Bytes())
}

// credit gives the client back the connection window of DATA the daemon
// will never see.
func (g *grpcRelay) credit(n uint32) error {
	if n == 0 {
		return nil
	}
	var out bytes.Buffer
	if err := http2.NewFramer(&out, nil).WriteWindowUpdate(0, n); err != nil {
		return err
	}
	return g.toClient(out.Bytes())
}

// grpcPermissionDenied is codes.PermissionDenied of gRPC's status codes.
const grpcPermissionDenied = 7

// grpcMessage percent-encodes a status message as gRPC's HTTP/2 mapping
// asks: bytes outside printable ASCII, and '%'.
func grpcMessage(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			b = append(b, c)
			continue
		}
		b = fmt.Appendf(b, "%%%02X", c)
	}
	return string(b)
}
