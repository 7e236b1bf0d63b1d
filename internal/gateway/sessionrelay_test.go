package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/policy"
)

// denyADD is a judge that refuses a file with an ADD line, as a role
// without builds.remote_sources refuses one that fetches.
func denyADD(path string, data []byte, ignoreFile bool) policy.SolveVerdict {
	if bytes.Contains(data, []byte("ADD ")) {
		return policy.SolveVerdict{Effect: policy.Deny, Rule: "roles.ci.builds.remote_sources",
			Message: "dockgate: denied session.start for ci-7 (role ci): " + path + " fetches a URL; allow it with builds.remote_sources (100%)"}
	}
	return policy.SolveVerdict{Effect: policy.Allow}
}

// fileSender is the client's end of a BuildKit session as far as FileSync
// goes: it sends the files of the directory the daemon names, as fsutil's
// sender does (the entries, then each file the daemon asks for).
type fileSender struct {
	dirs  map[string]map[string]string // dir-name -> path -> content
	chunk int
}

func (f *fileSender) handle(_ any, ss grpc.ServerStream) error {
	if m, _ := grpc.MethodFromServerStream(ss); m != diffCopyMethod {
		return status.Error(codes.Unimplemented, m)
	}
	md, _ := metadata.FromIncomingContext(ss.Context())
	files := f.dirs[strings.Join(md.Get("dir-name"), ",")]
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		if err := ss.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_STAT, Stat: &fstypes.Stat{Path: p, Mode: 0o644, Size: int64(len(files[p]))}}); err != nil {
			return err
		}
	}
	if err := ss.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_STAT}); err != nil {
		return err
	}
	for {
		var p fstypes.Packet
		if err := ss.RecvMsg(&p); err != nil {
			return err
		}
		switch p.Type {
		case fstypes.Packet_PACKET_REQ:
			data := []byte(files[paths[p.ID]])
			for len(data) > 0 {
				n := min(f.chunk, len(data))
				if err := ss.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_DATA, ID: p.ID, Data: data[:n]}); err != nil {
					return err
				}
				data = data[n:]
			}
			if err := ss.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_DATA, ID: p.ID}); err != nil {
				return err
			}
		case fstypes.Packet_PACKET_FIN:
			return ss.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_FIN})
		}
	}
}

// fetchDir is the daemon's end: it asks the client for a directory, as
// dockerd's BuildKit does, and returns the bytes of each file it received.
func fetchDir(ctx context.Context, cc *grpc.ClientConn, dir string, follow ...string) (map[string]string, error) {
	md := metadata.Pairs("dir-name", dir)
	for _, p := range follow {
		md.Append("followpaths", p)
	}
	s, err := cc.NewStream(metadata.NewOutgoingContext(ctx, md), &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, diffCopyMethod)
	if err != nil {
		return nil, err
	}
	got := map[string]string{}
	var paths []string
	for {
		var p fstypes.Packet
		if err := s.RecvMsg(&p); err != nil {
			return got, err
		}
		if p.Stat == nil {
			break
		}
		paths = append(paths, p.Stat.Path)
	}
	for i := range paths {
		if err := s.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_REQ, ID: uint32(i)}); err != nil {
			return got, err
		}
	}
	for done := 0; done < len(paths); {
		var p fstypes.Packet
		if err := s.RecvMsg(&p); err != nil {
			return got, err
		}
		if len(p.Data) == 0 {
			done++
			continue
		}
		got[paths[p.ID]] += string(p.Data)
	}
	if err := s.SendMsg(&fstypes.Packet{Type: fstypes.Packet_PACKET_FIN}); err != nil {
		return got, err
	}
	var fin fstypes.Packet
	if err := s.RecvMsg(&fin); err != nil {
		return got, err
	}
	s.CloseSend()
	return got, nil
}

// sessionThroughRelay runs a BuildKit session through pipeSession: the
// daemon's gRPC client on one side, the client's FileSync server on the
// other. It returns the daemon's connection and a function that waits for
// the relay's end and returns what it refused.
func sessionThroughRelay(t *testing.T, sender *fileSender) (*grpc.ClientConn, func() []policy.SolveVerdict) {
	t.Helper()
	daemonEnd, relayUp := tcpPair(t)
	relayClient, clientEnd := tcpPair(t)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(sender.handle))
	ln := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- clientEnd
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	relayed := make(chan []policy.SolveVerdict, 1)
	go func() {
		_, _, refused := pipeSession(relayClient, relayClient, relayUp, relayUp, denyADD, slog.New(slog.DiscardHandler))
		relayed <- refused
	}()
	cc, err := grpc.NewClient("passthrough:///session",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return daemonEnd, nil }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc, func() []policy.SolveVerdict { cc.Close(); return <-relayed }
}

func TestSessionRelayDockerfile(t *testing.T) {
	plain := "FROM scratch\nCOPY a /a\n" + strings.Repeat("# padding\n", 3800) // 38 KB: several DATA frames
	fetching := "FROM scratch\nADD https://x/y /y\n"
	ctxDir := map[string]string{"a": "ADD https://x/y /y\n", "big": strings.Repeat("z", 200<<10)}
	sender := &fileSender{chunk: 32 << 10, dirs: map[string]map[string]string{
		"dockerfile": {"Dockerfile": plain, "Dockerfile.dockerignore": "*.log\n"},
		"context":    ctxDir,
	}}
	cc, done := sessionThroughRelay(t, sender)
	ctx := context.Background()

	got, err := fetchDir(ctx, cc, "dockerfile", "Dockerfile", "Dockerfile.dockerignore")
	if err != nil {
		t.Fatalf("plain Dockerfile: %v", err)
	}
	if got["Dockerfile"] != plain || got["Dockerfile.dockerignore"] != "*.log\n" {
		t.Fatalf("plain Dockerfile: the daemon received %d and %d bytes, want them as sent", len(got["Dockerfile"]), len(got["Dockerfile.dockerignore"]))
	}
	// The context is not read: an ADD line there is a file like another.
	got, err = fetchDir(ctx, cc, "context")
	if err != nil || got["a"] != ctxDir["a"] || got["big"] != ctxDir["big"] {
		t.Fatalf("context: err %v, received %d files, want them as sent", err, len(got))
	}

	sender.dirs["dockerfile"] = map[string]string{"Dockerfile": fetching}
	got, err = fetchDir(ctx, cc, "dockerfile", "Dockerfile", "Dockerfile.dockerignore")
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || !strings.Contains(s.Message(), "builds.remote_sources (100%)") {
		t.Fatalf("fetching Dockerfile: err = %v, want PermissionDenied naming builds.remote_sources", err)
	}
	if _, ok := got["Dockerfile"]; ok {
		t.Fatalf("the daemon received the refused Dockerfile: %q", got["Dockerfile"])
	}

	// Too large to hold: refused from its size, before its bytes.
	sender.dirs["dockerfile"] = map[string]string{"Dockerfile": "FROM scratch\n" + strings.Repeat("#\n", maxSessionDockerfile)}
	_, err = fetchDir(ctx, cc, "dockerfile", "Dockerfile")
	if s, _ := status.FromError(err); s.Code() != codes.PermissionDenied || !strings.Contains(s.Message(), "more than the 40960 the gateway reads") {
		t.Fatalf("large Dockerfile: err = %v, want PermissionDenied naming the limit", err)
	}

	// The session goes on after refusals (header tables, flow control).
	sender.dirs["dockerfile"] = map[string]string{"Dockerfile": plain}
	if got, err := fetchDir(ctx, cc, "dockerfile", "Dockerfile"); err != nil || got["Dockerfile"] != plain {
		t.Fatalf("Dockerfile after refusals: err %v, %d bytes", err, len(got["Dockerfile"]))
	}
	if got, err := fetchDir(ctx, cc, "context"); err != nil || got["big"] != ctxDir["big"] {
		t.Fatalf("context after refusals: err %v", err)
	}
	// Dockerfiles held while context files stream on the same connection
	// share its flow-control window: none stalls. Small ones pass; large
	// ones at once may be refused for what the gateway holds, not left to
	// stall.
	small := "FROM scratch\n" + strings.Repeat("#", 8<<10)
	full := "FROM scratch\n" + strings.Repeat("#", maxSessionDockerfile-len("FROM scratch\n"))
	for _, df := range []string{small, full} {
		sender.dirs["dockerfile"] = map[string]string{"Dockerfile": df}
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		errs := make(chan error, 8)
		for range 4 {
			go func() {
				got, err := fetchDir(tctx, cc, "dockerfile", "Dockerfile")
				if s, _ := status.FromError(err); df == full && s.Code() == codes.PermissionDenied && strings.Contains(s.Message(), "holds to read Dockerfiles") {
					err = nil
				} else if err == nil && got["Dockerfile"] != df {
					err = errors.New("the Dockerfile changed on the way")
				}
				errs <- err
			}()
			go func() {
				got, err := fetchDir(tctx, cc, "context")
				if err == nil && got["big"] != ctxDir["big"] {
					err = errors.New("the context changed on the way")
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent fetches of %d-byte Dockerfiles: %v", len(df), err)
			}
		}
	}
	sender.dirs["dockerfile"] = map[string]string{"Dockerfile": plain}
	if got, err := fetchDir(ctx, cc, "dockerfile", "Dockerfile"); err != nil || got["Dockerfile"] != plain {
		t.Fatalf("Dockerfile after concurrent fetches: err %v, %d bytes", err, len(got["Dockerfile"]))
	}
	refused := done()
	if len(refused) < 2 || !strings.Contains(refused[0].Message, "builds.remote_sources") || !strings.Contains(refused[1].Message, "40960") {
		t.Errorf("refused = %+v, want the fetching and the large Dockerfile", refused)
	}
}

// sessionClient writes the client's side of a session frame by frame: a
// FileSync server's answer.
type sessionClient struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newSessionClient() *sessionClient {
	c := &sessionClient{}
	c.fr = http2.NewFramer(&c.buf, nil)
	c.enc = hpack.NewEncoder(&c.hb)
	c.fr.WriteSettings()
	return c
}

func (c *sessionClient) headers(id uint32, fields [][2]string, end bool) {
	c.hb.Reset()
	for _, f := range fields {
		c.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hb.Bytes(), EndHeaders: true, EndStream: end})
}

// packet writes an fsutil packet as a gRPC message in DATA frames of at
// most chunk bytes.
func (c *sessionClient) packet(id uint32, p *fstypes.Packet, chunk int) {
	b, _ := proto.Marshal(p)
	msg := append([]byte{0, 0, 0, 0, 0}, b...)
	msg[1], msg[2], msg[3], msg[4] = byte(len(b)>>24), byte(len(b)>>16), byte(len(b)>>8), byte(len(b))
	for len(msg) > 0 {
		n := min(chunk, len(msg))
		c.fr.WriteData(id, false, msg[:n])
		msg = msg[n:]
	}
}

// file writes the answer to a DiffCopy of one file.
func (c *sessionClient) file(id uint32, name, content string, chunk int) {
	c.headers(id, [][2]string{{":status", "200"}, {"content-type", "application/grpc"}}, false)
	c.packet(id, &fstypes.Packet{Type: fstypes.Packet_PACKET_STAT, Stat: &fstypes.Stat{Path: name, Mode: 0o644, Size: int64(len(content))}}, chunk)
	c.packet(id, &fstypes.Packet{Type: fstypes.Packet_PACKET_STAT}, chunk)
	c.packet(id, &fstypes.Packet{Type: fstypes.Packet_PACKET_DATA, Data: []byte(content)}, chunk)
	c.packet(id, &fstypes.Packet{Type: fstypes.Packet_PACKET_DATA}, chunk)
	c.packet(id, &fstypes.Packet{Type: fstypes.Packet_PACKET_FIN}, chunk)
	c.headers(id, [][2]string{{"grpc-status", "0"}}, true)
}

// newTestSession is a relay with stream 1 a DiffCopy of the "dockerfile"
// directory, writing to up and client.
func newTestSession(up, client io.Writer) *sessionRelay {
	s := &sessionRelay{judge: denyADD, log: slog.New(slog.DiscardHandler), up: up, client: client, streams: map[uint32]*syncStream{}}
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range [][2]string{{":method", "POST"}, {":path", diffCopyMethod}, {"dir-name", "dockerfile"}, {"followpaths", "Dockerfile"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	var daemon bytes.Buffer
	daemon.WriteString(http2.ClientPreface)
	http2.NewFramer(&daemon, nil).WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true})
	s.fromDaemon(&daemon)
	return s
}

func TestSessionRelayFrames(t *testing.T) {
	for _, chunk := range []int{1, 7, 16 << 10} {
		c := newSessionClient()
		c.file(1, "Dockerfile", "FROM scratch\nCOPY a /a\n", chunk)
		var up bytes.Buffer
		s := newTestSession(&up, io.Discard)
		s.fromClient(bytes.NewReader(c.buf.Bytes()))
		if !bytes.Equal(up.Bytes(), c.buf.Bytes()) {
			t.Errorf("chunk %d: a plain Dockerfile's frames were not forwarded byte for byte", chunk)
		}

		c = newSessionClient()
		c.file(1, "Dockerfile", "FROM scratch\nADD https://x/y /y\n", chunk)
		up.Reset()
		var client bytes.Buffer
		s = newTestSession(&up, &client)
		s.fromClient(bytes.NewReader(c.buf.Bytes()))
		if bytes.Contains(up.Bytes(), []byte("https://x/y")) {
			t.Errorf("chunk %d: the refused Dockerfile's bytes reached the daemon", chunk)
		}
		if st, msg := grpcStatus(t, up.Bytes(), 1); st != "7" || !strings.Contains(msg, "builds.remote_sources") {
			t.Errorf("chunk %d: the daemon got status %q %q, want 7 naming builds.remote_sources", chunk, st, msg)
		}
		var reset bool
		for _, f := range frames(t, client.Bytes()) {
			if r, ok := f.(*http2.RSTStreamFrame); ok && r.StreamID == 1 {
				reset = true
			}
		}
		if !reset {
			t.Errorf("chunk %d: the client got no RST_STREAM", chunk)
		}
	}
}

// FuzzSessionRelay feeds the relay a client's frames on a "dockerfile"
// stream with a judge that refuses files with an ADD line, and checks that
// the daemon receives no such file whole, nor the DATA of a file not yet
// judged, whatever the framing.
func FuzzSessionRelay(f *testing.F) {
	for _, seed := range sessionSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var up bytes.Buffer
		s := newTestSession(io.Discard, io.Discard)
		s.up = &up
		s.fromClient(bytes.NewReader(in))
		fr := http2.NewFramer(nil, bytes.NewReader(up.Bytes()))
		fr.SetMaxReadFrameSize(maxClientFrame)
		fr.ReadMetaHeaders = hpack.NewDecoder(maxHeaderTable, nil)
		var msgs []byte
		open := map[uint32][]byte{}
		for {
			fm, err := fr.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("the daemon received frames it cannot read: %v", err)
			}
			d, ok := fm.(*http2.DataFrame)
			if !ok || d.StreamID != 1 {
				continue
			}
			msgs = append(msgs, d.Data()...)
			for {
				msg, rest, err := grpcMessageOf(msgs)
				if err != nil || msg == nil {
					break
				}
				msgs = rest
				var p fstypes.Packet
				if proto.Unmarshal(msg, &p) != nil || p.Type != fstypes.Packet_PACKET_DATA {
					continue
				}
				if len(p.Data) > 0 {
					open[p.ID] = append(open[p.ID], p.Data...)
					continue
				}
				if bytes.Contains(open[p.ID], []byte("ADD ")) {
					t.Fatalf("a refused file reached the daemon whole: %q", open[p.ID])
				}
				delete(open, p.ID)
			}
		}
		// The relay forwards a "dockerfile" stream's DATA only where no
		// message and no file is incomplete.
		if len(open) > 0 || len(msgs) > 0 {
			t.Fatalf("DATA of a file not yet judged reached the daemon (%d files open, %d message bytes)", len(open), len(msgs))
		}
	})
}

// sessionSeeds are client frame sequences: a plain and a fetching
// Dockerfile in small and large frames, padding, a reset, a compressed
// message.
func sessionSeeds() [][]byte {
	var seeds [][]byte
	add := func(build func(c *sessionClient)) {
		c := newSessionClient()
		build(c)
		seeds = append(seeds, c.buf.Bytes())
	}
	add(func(c *sessionClient) { c.file(1, "Dockerfile", "FROM scratch\n", 1<<10) })
	add(func(c *sessionClient) { c.file(1, "Dockerfile", "FROM scratch\nADD http://x/y /y\n", 5) })
	add(func(c *sessionClient) {
		c.headers(1, [][2]string{{":status", "200"}}, false)
		c.fr.WriteDataPadded(1, false, []byte{0, 0, 0, 0, 2}, []byte{0, 0})
		c.packet(1, &fstypes.Packet{Type: fstypes.Packet_PACKET_DATA, Data: []byte("ADD x")}, 3)
		c.fr.WriteRSTStream(1, http2.ErrCodeCancel)
	})
	add(func(c *sessionClient) {
		c.headers(1, [][2]string{{":status", "200"}}, false)
		c.fr.WriteData(1, false, []byte{1, 0, 0, 0, 1, 0})
	})
	add(func(c *sessionClient) {
		c.headers(1, [][2]string{{":status", "200"}}, false)
		c.packet(1, &fstypes.Packet{Type: fstypes.Packet_PACKET_DATA, ID: 3, Data: []byte("FROM a\n")}, 4)
		c.headers(1, [][2]string{{"grpc-status", "0"}}, true)
	})
	return seeds
}

// sessionControl counts the session bytes its Control/Session calls
// receive.
type sessionControl struct {
	fakeControl
	messages atomic.Int32
}

func (c *sessionControl) Session(s grpc.BidiStreamingServer[controlapi.BytesMessage, controlapi.BytesMessage]) error {
	for {
		if _, err := s.Recv(); err != nil {
			return err
		}
		c.messages.Add(1)
	}
}

// TestGRPCRelaySessionCall: a session opened inside the gRPC connection
// (Control/Session) never reaches the daemon for a role whose sessions
// the gateway reads.
func TestGRPCRelaySessionCall(t *testing.T) {
	clientEnd, relayClient := tcpPair(t)
	relayUp, daemonEnd := tcpPair(t)
	control := &sessionControl{}
	srv := grpc.NewServer()
	controlapi.RegisterControlServer(srv, control)
	ln := &oneConnListener{conns: make(chan net.Conn, 1), done: make(chan struct{})}
	ln.conns <- daemonEnd
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	judge := func(msg proto.Message) policy.SolveVerdict {
		if _, ok := msg.(*controlapi.BytesMessage); ok {
			return policy.SolveVerdict{Effect: policy.Deny, Message: "dockgate: denied grpc.serve for ci-7 (role ci): a BuildKit session inside the gRPC connection; builds.remote_sources"}
		}
		return policy.SolveVerdict{Effect: policy.Allow}
	}
	relayed := make(chan []policy.SolveVerdict, 1)
	go func() {
		_, _, refused := pipeGRPC(relayClient, relayClient, relayUp, relayUp, judge, slog.New(slog.DiscardHandler))
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
	s, err := c.Session(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&controlapi.BytesMessage{Data: []byte(http2.ClientPreface)}); err != nil {
		t.Fatal(err)
	}
	_, err = s.Recv()
	if st, _ := status.FromError(err); st.Code() != codes.PermissionDenied || !strings.Contains(st.Message(), "builds.remote_sources") {
		t.Fatalf("Control/Session: err = %v, want PermissionDenied naming builds.remote_sources", err)
	}
	if _, err := c.Solve(context.Background(), &controlapi.SolveRequest{Ref: "after"}); err != nil {
		t.Fatalf("Solve after the refused session: %v", err)
	}
	cc.Close()
	<-relayed
	// The daemon saw the call's headers and its reset, none of its bytes.
	if n := control.messages.Load(); n != 0 {
		t.Errorf("the daemon received %d messages of a refused Control/Session call", n)
	}
}
