package gateway

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/policy"
)

// tcpPair returns the two ends of a loopback TCP connection, which can
// half-close as the gateway's connections can.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// denyEntitlements is a judge that denies a Solve asking for any
// entitlement, as a role without builds.entitlements does, and a frontend
// Solve asking for the host's network.
func denyEntitlements(msg proto.Message) policy.SolveVerdict {
	if req, ok := msg.(*gatewaypb.SolveRequest); ok {
		if req.FrontendOpt["force-network-mode"] == "host" {
			return policy.SolveVerdict{Effect: policy.Deny, Message: "dockgate: denied grpc.serve for ci-7 (role ci): host network"}
		}
		return policy.SolveVerdict{Effect: policy.Allow}
	}
	req := msg.(*controlapi.SolveRequest)
	if len(req.Entitlements) > 0 {
		return policy.SolveVerdict{Effect: policy.Deny, Reason: "entitlement", Message: "dockgate: denied grpc.serve for ci-7 (role ci): the build asks for entitlement " + req.Entitlements[0] + " (100%)"}
	}
	return policy.SolveVerdict{Effect: policy.Allow}
}

// fakeControl is BuildKit's control API as far as the tests need it: it
// records the Solve requests it receives.
type fakeControl struct {
	controlapi.UnimplementedControlServer
	mu     sync.Mutex
	solves []*controlapi.SolveRequest
}

func (f *fakeControl) Solve(_ context.Context, req *controlapi.SolveRequest) (*controlapi.SolveResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.solves = append(f.solves, req)
	return &controlapi.SolveResponse{ExporterResponse: map[string]string{"ref": req.Ref}}, nil
}

func (f *fakeControl) ListWorkers(context.Context, *controlapi.ListWorkersRequest) (*controlapi.ListWorkersResponse, error) {
	return &controlapi.ListWorkersResponse{}, nil
}

func (f *fakeControl) received() []*controlapi.SolveRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*controlapi.SolveRequest(nil), f.solves...)
}

// oneConnListener hands a gRPC server one connection.
type oneConnListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *oneConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *oneConnListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *oneConnListener) Addr() net.Addr { return &net.TCPAddr{} }

// TestGRPCRelaySolve runs real gRPC on both sides of the relay: BuildKit's
// client through pipeGRPC to a control server.
func TestGRPCRelaySolve(t *testing.T) {
	clientEnd, relayClient := tcpPair(t)
	relayUp, daemonEnd := tcpPair(t)
	control := &fakeControl{}
	srv := grpc.NewServer()
	controlapi.RegisterControlServer(srv, control)
	ln := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- daemonEnd
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	relayed := make(chan []policy.SolveVerdict)
	go func() {
		_, _, refused := pipeGRPC(relayClient, relayClient, relayUp, relayUp, denyEntitlements, slog.New(slog.DiscardHandler))
		relayed <- refused
	}()
	cc, err := grpc.NewClient("passthrough:///buildkit",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return clientEnd, nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := controlapi.NewControlClient(cc)
	ctx := context.Background()

	allowed := &controlapi.SolveRequest{Ref: "one", Frontend: "dockerfile.v0", FrontendAttrs: map[string]string{"force-network-mode": "none"},
		Exporters: []*controlapi.Exporter{{Type: "moby", Attrs: map[string]string{"name": "x"}}}}
	if _, err := c.Solve(ctx, allowed); err != nil {
		t.Fatalf("allowed Solve: %v", err)
	}
	_, err = c.Solve(ctx, &controlapi.SolveRequest{Ref: "two", Entitlements: []string{"network.host"}})
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || !strings.Contains(s.Message(), "entitlement network.host (100%)") {
		t.Fatalf("denied Solve: err = %v, want PermissionDenied naming the entitlement", err)
	}
	// The connection goes on: other methods, and a Solve after the denial
	// (the header compression state and the flow-control window survive).
	if _, err := c.ListWorkers(ctx, &controlapi.ListWorkersRequest{}); err != nil {
		t.Fatalf("ListWorkers after a denial: %v", err)
	}
	big := &controlapi.SolveRequest{Ref: "three", FrontendAttrs: map[string]string{"build-arg:PAD": strings.Repeat("x", 40<<10)}}
	if _, err := c.Solve(ctx, big); err != nil {
		t.Fatalf("Solve after a denial: %v", err)
	}
	got := control.received()
	if len(got) != 2 || !proto.Equal(got[0], allowed) || !proto.Equal(got[1], big) {
		t.Fatalf("daemon received %d Solve requests (%v), want the two allowed ones", len(got), got)
	}
	cc.Close()
	if refused := <-relayed; len(refused) != 1 || !strings.Contains(refused[0].Message, "network.host") {
		t.Errorf("refused calls = %+v, want the one denied Solve", refused)
	}
}

// h2Client writes a client's side of a connection frame by frame.
type h2Client struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newH2Client() *h2Client {
	c := &h2Client{}
	c.buf.WriteString(http2.ClientPreface)
	c.fr = http2.NewFramer(&c.buf, nil)
	c.enc = hpack.NewEncoder(&c.hb)
	c.fr.WriteSettings()
	return c
}

func (c *h2Client) headers(id uint32, path string, end bool) {
	c.hb.Reset()
	for _, f := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", path}, {":authority", "buildkit"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hb.Bytes(), EndHeaders: true, EndStream: end})
}

// message writes a gRPC message in DATA frames of at most chunk bytes.
func (c *h2Client) message(id uint32, m proto.Message, chunk int) {
	b, _ := proto.Marshal(m)
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(b)))
	msg = append(msg, b...)
	for len(msg) > 0 {
		n := min(chunk, len(msg))
		c.fr.WriteData(id, n == len(msg), msg[:n])
		msg = msg[n:]
	}
}

// relayRaw sends raw client bytes through pipeGRPC to a daemon that says
// nothing, and returns what the daemon and the client received.
func relayRaw(t *testing.T, client []byte, judge solveJudge) (daemon, answer []byte) {
	t.Helper()
	clientEnd, relayClient := tcpPair(t)
	relayUp, daemonEnd := tcpPair(t)
	go pipeGRPC(relayClient, relayClient, relayUp, relayUp, judge, slog.New(slog.DiscardHandler))
	if _, err := clientEnd.Write(client); err != nil {
		t.Fatal(err)
	}
	clientEnd.(*net.TCPConn).CloseWrite()
	// A relay that gives up resets the connections: what was read is what
	// counts.
	daemon, _ = io.ReadAll(daemonEnd)
	daemonEnd.(*net.TCPConn).CloseWrite()
	answer, _ = io.ReadAll(clientEnd)
	return daemon, answer
}

// frames parses a byte stream of HTTP/2 frames (after the preface, if
// there is one) with header blocks decoded.
func frames(t *testing.T, b []byte) []http2.Frame {
	t.Helper()
	b = bytes.TrimPrefix(b, []byte(http2.ClientPreface))
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var out []http2.Frame
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("frame %d: %v", len(out), err)
		}
		if d, ok := f.(*http2.DataFrame); ok {
			// Keep the payload: the framer reuses its buffer.
			out = append(out, &dataCopy{id: d.StreamID, data: bytes.Clone(d.Data())})
			continue
		}
		out = append(out, f)
	}
}

type dataCopy struct {
	http2.Frame
	id   uint32
	data []byte
}

func TestGRPCRelayRaw(t *testing.T) {
	allowed := &controlapi.SolveRequest{Ref: "ok", Exporters: []*controlapi.Exporter{{Type: "local"}}}
	denied := &controlapi.SolveRequest{Ref: "no", Entitlements: []string{"security.insecure"}}

	t.Run("allowed is forwarded byte for byte", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, policy.SolveMethod, false)
		c.message(1, allowed, 7) // split across frames
		c.headers(3, "/moby.buildkit.v1.Control/Status", false)
		c.message(3, &controlapi.StatusRequest{Ref: "ok"}, 1<<10)
		daemon, _ := relayRaw(t, c.buf.Bytes(), denyEntitlements)
		if !bytes.Equal(daemon, c.buf.Bytes()) {
			t.Fatalf("daemon received %d bytes, want the client's %d unchanged", len(daemon), c.buf.Len())
		}
	})

	t.Run("denied is answered and not forwarded", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, policy.SolveMethod, false)
		c.message(1, denied, 5)
		c.headers(3, policy.SolveMethod, false)
		c.message(3, allowed, 1<<10)
		daemon, answer := relayRaw(t, c.buf.Bytes(), denyEntitlements)
		var sawReset bool
		var data3 []byte
		for _, f := range frames(t, daemon) {
			switch f := f.(type) {
			case *dataCopy:
				if f.id == 1 {
					t.Fatalf("the denied stream's DATA reached the daemon")
				}
				data3 = append(data3, f.data...)
			case *http2.RSTStreamFrame:
				sawReset = sawReset || (f.StreamID == 1 && f.ErrCode == http2.ErrCodeCancel)
			}
		}
		if !sawReset {
			t.Error("the daemon was not told the denied stream is reset")
		}
		if req, err := solveRequest(data3, judgedMethods[solveName]); err != nil || !proto.Equal(req, allowed) {
			t.Errorf("stream 3 = %v, %v; want the allowed request", req, err)
		}
		st, msg := grpcStatus(t, answer, 1)
		var window uint32
		for _, f := range frames(t, answer) {
			if f, ok := f.(*http2.WindowUpdateFrame); ok && f.StreamID == 0 {
				window += f.Increment
			}
		}
		if st != "7" || !strings.Contains(msg, "entitlement security.insecure (100%25)") {
			t.Errorf("answer grpc-status %q grpc-message %q, want 7 and the policy's sentence", st, msg)
		}
		if window == 0 {
			t.Error("the client did not get its connection window back")
		}
	})

	t.Run("frontend Solve", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, policy.FrontendSolveMethod, false)
		c.message(1, &gatewaypb.SolveRequest{FrontendOpt: map[string]string{"force-network-mode": "host"}}, 9)
		c.headers(3, policy.FrontendSolveMethod, false)
		c.message(3, &gatewaypb.SolveRequest{Frontend: "dockerfile.v0"}, 9)
		daemon, answer := relayRaw(t, c.buf.Bytes(), denyEntitlements)
		for _, f := range frames(t, daemon) {
			if d, ok := f.(*dataCopy); ok && d.id == 1 {
				t.Fatal("the denied frontend Solve reached the daemon")
			}
		}
		if st, _ := grpcStatus(t, answer, 1); st != "7" {
			t.Errorf("grpc-status %q, want 7", st)
		}
	})

	t.Run("unreadable path", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, "%zz", false)
		c.message(1, allowed, 64)
		daemon, answer := relayRaw(t, c.buf.Bytes(), denyEntitlements)
		for _, f := range frames(t, daemon) {
			if _, ok := f.(*dataCopy); ok {
				t.Fatal("DATA of a call with an unreadable path reached the daemon")
			}
		}
		if st, msg := grpcStatus(t, answer, 1); st != "7" || !strings.Contains(msg, "path cannot be read") {
			t.Errorf("grpc-status %q %q, want 7", st, msg)
		}
	})

	// The daemon routes each of these to Solve.
	for _, path := range []string{"/moby.buildkit.v1.Control/%53olve", "/moby.buildkit.v1.Control/Solve?x=1", "moby.buildkit.v1.Control/Solve"} {
		t.Run("denied at "+path, func(t *testing.T) {
			c := newH2Client()
			c.headers(1, path, false)
			c.message(1, denied, 1<<10)
			daemon, answer := relayRaw(t, c.buf.Bytes(), denyEntitlements)
			for _, f := range frames(t, daemon) {
				if _, ok := f.(*dataCopy); ok {
					t.Fatal("the denied stream's DATA reached the daemon")
				}
			}
			if st, _ := grpcStatus(t, answer, 1); st != "7" {
				t.Errorf("grpc-status %q, want 7", st)
			}
		})
	}

	t.Run("ends before the message is whole", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, policy.SolveMethod, false)
		c.fr.WriteData(1, true, []byte{0, 0, 0, 1, 0})
		daemon, answer := relayRaw(t, c.buf.Bytes(), func(proto.Message) policy.SolveVerdict {
			return policy.SolveVerdict{Effect: policy.Allow}
		})
		for _, f := range frames(t, daemon) {
			if _, ok := f.(*dataCopy); ok {
				t.Fatal("a truncated Solve reached the daemon")
			}
		}
		if st, msg := grpcStatus(t, answer, 1); st != "7" || !strings.Contains(msg, "ended before") {
			t.Error("the client was not told why")
		}
	})

	t.Run("compressed is denied", func(t *testing.T) {
		c := newH2Client()
		c.headers(1, policy.SolveMethod, false)
		c.fr.WriteData(1, true, []byte{1, 0, 0, 0, 1, 0})
		daemon, answer := relayRaw(t, c.buf.Bytes(), denyEntitlements)
		for _, f := range frames(t, daemon) {
			if _, ok := f.(*dataCopy); ok {
				t.Fatal("a compressed Solve reached the daemon")
			}
		}
		if st, msg := grpcStatus(t, answer, 1); st != "7" || !strings.Contains(msg, "compressed") {
			t.Error("the client was not told why")
		}
	})

	t.Run("no preface closes", func(t *testing.T) {
		daemon, _ := relayRaw(t, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), denyEntitlements)
		if len(daemon) != 0 {
			t.Errorf("daemon received %q", daemon)
		}
	})
}

// grpcStatus returns the grpc-status and grpc-message that end a stream
// in an answer.
func grpcStatus(t *testing.T, answer []byte, id uint32) (st, msg string) {
	t.Helper()
	for _, f := range frames(t, answer) {
		if f, ok := f.(*http2.MetaHeadersFrame); ok && f.StreamID == id && f.StreamEnded() {
			return headerValue(f, "grpc-status"), headerValue(f, "grpc-message")
		}
	}
	return "", ""
}

func headerValue(f *http2.MetaHeadersFrame, name string) string {
	for _, h := range f.Fields {
		if h.Name == name {
			return h.Value
		}
	}
	return ""
}

var solveName = strings.TrimPrefix(policy.SolveMethod, "/")

func TestGRPCMessage(t *testing.T) {
	if got, want := grpcMessage("a 100% b\n\u00e9"), "a 100%25 b%0A%C3%A9"; got != want {
		t.Errorf("grpcMessage = %q, want %q", got, want)
	}
}

// FuzzGRPCRelay feeds the relay a client's frames (after the preface)
// with a judge that denies every Solve, and checks that no DATA of a
// Solve call reaches the daemon, whatever the framing.
func FuzzGRPCRelay(f *testing.F) {
	for _, seed := range relaySeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var up bytes.Buffer
		g := &grpcRelay{judge: func(proto.Message) policy.SolveVerdict { return policy.SolveVerdict{Message: "no"} },
			log: slog.New(slog.DiscardHandler), up: &up, client: io.Discard,
			denied: map[uint32]bool{}, pending: map[uint32]*heldCall{}}
		g.fromClient(io.MultiReader(strings.NewReader(http2.ClientPreface), bytes.NewReader(in)))
		fr := http2.NewFramer(nil, bytes.NewReader(bytes.TrimPrefix(up.Bytes(), []byte(http2.ClientPreface))))
		fr.SetMaxReadFrameSize(maxClientFrame)
		fr.ReadMetaHeaders = hpack.NewDecoder(maxHeaderTable, nil)
		solve := map[uint32]bool{}
		for {
			fm, err := fr.ReadFrame()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				t.Fatalf("the daemon received frames it cannot read: %v", err)
			}
			switch fm := fm.(type) {
			case *http2.MetaHeadersFrame:
				if _, judged := judgedCall(fm.PseudoValue("path")); judged {
					solve[fm.StreamID] = true
				}
			case *http2.DataFrame:
				if solve[fm.StreamID] {
					t.Fatalf("DATA of a denied Solve on stream %d reached the daemon", fm.StreamID)
				}
			}
		}
	})
}

// relaySeeds are client frame sequences (after the preface): a Solve in
// one frame, split across frames, with padding, cut short, reset, and
// next to other calls.
func relaySeeds() [][]byte {
	req := &controlapi.SolveRequest{Ref: "r", Entitlements: []string{"network.host"}}
	var seeds [][]byte
	add := func(build func(c *h2Client)) {
		c := newH2Client()
		build(c)
		seeds = append(seeds, bytes.TrimPrefix(c.buf.Bytes(), []byte(http2.ClientPreface)))
	}
	add(func(c *h2Client) { c.headers(1, policy.SolveMethod, false); c.message(1, req, 1<<10) })
	add(func(c *h2Client) { c.headers(1, policy.SolveMethod, false); c.message(1, req, 3) })
	add(func(c *h2Client) {
		c.headers(1, policy.SolveMethod, false)
		c.fr.WriteDataPadded(1, false, []byte{0, 0, 0}, []byte{0, 0})
		c.message(1, req, 4)
	})
	add(func(c *h2Client) {
		c.headers(1, policy.SolveMethod, false)
		c.fr.WriteData(1, true, []byte{0, 0, 0, 9, 1})
	})
	add(func(c *h2Client) {
		c.headers(1, policy.SolveMethod, false)
		c.fr.WriteData(1, false, []byte{0, 0})
		c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
		c.fr.WriteData(1, true, []byte{0, 0, 0, 0})
	})
	add(func(c *h2Client) {
		c.headers(1, "/moby.buildkit.v1.Control/Status", false)
		c.headers(3, policy.SolveMethod, false)
		c.message(1, &controlapi.StatusRequest{Ref: "r"}, 8)
		c.message(3, req, 8)
		c.headers(3, policy.SolveMethod, true)
	})
	add(func(c *h2Client) {
		c.headers(1, policy.SessionMethod, false)
		c.message(1, &controlapi.BytesMessage{Data: []byte(http2.ClientPreface)}, 8)
	})
	add(func(c *h2Client) {
		c.headers(1, policy.FrontendSolveMethod, false)
		c.message(1, &gatewaypb.SolveRequest{Frontend: "dockerfile.v0"}, 16)
	})
	return seeds
}
