package gateway

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/policy"
)

// serveHTTP is the gateway's request path: identity and revocation, one
// policy evaluation against the Material in force when the request
// started, then the daemon client (plain, streamed or hijacked); the
// answer the gateway gives itself, the metrics and the audit record all
// come from one outcome.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if slices.Contains(r.TransferEncoding, "chunked") {
		// A message with both Transfer-Encoding and Content-Length may be
		// an attempt at request smuggling, and RFC 9112 section 6.1 says
		// the server must close the connection after answering it.
		// net/http takes the chunked framing but deletes Content-Length
		// before the handler runs, so this one cannot tell such a message
		// from a plain chunked one: every request with a chunked body gets
		// its answer with the connection closed after it, so that nothing
		// a client framed after the body is read as a next request. Docker
		// clients send chunked bodies (cp, build, load) on connections of
		// their own, which they then close anyway.
		w.Header().Set("Connection", "close")
	}
	rw := newStatusRecorder(w)
	defer rw.release()
	out := g.handle(rw, r, g.material.Load())
	g.metrics.observe(out.label, rw.status, start)
	if g.opts.Audit != nil {
		rec := out.record(r, start)
		rec.Status, rec.BytesOut = rw.status, out.bytesOut+rw.written
		rec.Duration = time.Since(start)
		g.opts.Audit.Write(&rec)
	}
}

// outcome is what became of one request: who asked, the verdict (a
// refusal the gateway answered itself, or what was forwarded), and the
// bytes a hijacked stream carried.
type outcome struct {
	id      *identity.Identity
	verdict policy.Verdict
	// label is the metrics label: the operation, or what stopped it.
	label string
	// local: the gateway answered one of its own paths (LocalPrefix).
	local             bool
	bytesIn, bytesOut int64
	// closeConn: close the connection after the refusal; retryAfter, when
	// set, is sent as Retry-After (limits.go).
	closeConn  bool
	retryAfter time.Duration
}

// record makes the audit record of an outcome.
func (o *outcome) record(r *http.Request, start time.Time) audit.Record {
	v := &o.verdict
	rec := audit.Record{
		Time: start, RequestID: audit.NewRequestID(), Method: r.Method, RawPath: r.URL.EscapedPath(), Remote: r.RemoteAddr,
		Decision: v.Effect.String(), Role: v.Role, Rule: v.Rule, Reason: v.Reason,
		BytesIn: v.BytesIn + o.bytesIn,
	}
	if o.id != nil {
		rec.CN, rec.Serial, rec.Groups = o.id.CN, o.id.Serial, o.id.Groups
	}
	if o.local {
		rec.Operation = "dockgate.local"
	} else if v.Route.Path != "" {
		rec.Path, rec.Operation, rec.Target = v.Route.Path, v.Route.Op.String(), v.Route.Target
	}
	return rec
}

// refused is a request the gateway refuses before the policy sees it.
func refused(id *identity.Identity, status int, message, reason string) outcome {
	return outcome{id: id, label: "denied", verdict: policy.Verdict{Effect: policy.Deny, Status: status, Message: message, Reason: reason}}
}

// handle answers one request and says what became of it.
func (g *Gateway) handle(w *statusRecorder, r *http.Request, m *Material) outcome {
	cc := connFrom(r.Context())
	id := g.identify(cc, r)
	if id == nil {
		// Unreachable through the TLS listener, which refuses clients
		// without a verified certificate; kept as a fail-closed guard.
		return g.refuse(w, refused(nil, http.StatusForbidden, "dockgate: a verified client certificate is required", "no verified client certificate"))
	}
	if final := cc.refused.Load(); final != nil {
		return g.refuseCertificate(w, id, final)
	}
	if final, ok := (*g.revoked.Load())[id.Serial]; ok {
		// Accepted at its handshake, refused since: the sweep cuts the
		// connection, and this answer closes it if the sweep has not.
		w.Header().Set("Connection", "close")
		return g.refuseCertificate(w, id, &final)
	}
	share, limited := g.admitRequest(cc, id, m)
	if limited != nil {
		return g.refuse(w, *limited)
	}
	defer share.done() // also when the handler panics, or after a hijacked stream
	if g.opts.Audit != nil && !g.opts.Audit.Admit() {
		return g.refuse(w, refused(id, http.StatusServiceUnavailable,
			"dockgate: the audit log cannot record requests right now (audit.on_full: deny), so the gateway refuses them; see the gateway's log",
			"the audit log cannot take records"))
	}
	if strings.HasPrefix(r.URL.Path, LocalPrefix) {
		role, _ := m.Policy.RoleOf(*id)
		g.serveLocal(w, r, id, role)
		return outcome{id: id, label: "local", local: true, verdict: policy.Verdict{Effect: policy.Allow, Role: role}}
	}
	v := m.Policy.Evaluate(r.Context(), policy.Input{
		Identity: *id, Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"), Body: r.Body,
	}, g.host)
	out := outcome{id: id, verdict: v, label: "denied"}
	if v.Err != nil {
		g.log.Error("ownership lookup failed", "cn", id.CN, "op", v.Route.Op.String(), "err", v.Err)
	}
	if !v.Forward() {
		return g.refuse(w, out)
	}
	if v.Effect == policy.WouldDeny {
		g.log.Warn("audit mode: forwarding a request the role would deny", "cn", id.CN, "role", v.Role, "op", v.Route.Op.String(), "reason", v.Reason)
	}
	if isHijack(v.Route.Op, r) {
		if limited := share.toStream(id); limited != nil {
			return g.refuse(w, *limited)
		}
	}
	out.label = v.Route.Op.String()
	g.forwardVerdict(w, r, cc, &out, streamJudges{solve: buildKitJudge(m.Policy, id, &v, g.log), dockerfile: sessionJudge(m.Policy, id, &v, g.log)})
	return out
}

// refuseCertificate answers a request of a revoked or superseded
// certificate: a 403 whose message names the certificate and the way out,
// and a header that says why for programs (doctor).
func (g *Gateway) refuseCertificate(w http.ResponseWriter, id *identity.Identity, final *finalRefusal) outcome {
	g.metrics.refusedCertRequests.WithLabelValues(final.reason).Inc()
	w.Header().Set(identity.RefusedHeader, final.reason)
	return g.refuse(w, refused(id, http.StatusForbidden, final.message(id), final.auditReason()))
}

// identify returns the verified identity of the request's connection,
// logging the connection's first request.
func (g *Gateway) identify(cc *clientConn, r *http.Request) *identity.Identity {
	if cc == nil {
		return nil
	}
	id, first := cc.identity(r.TLS)
	if first {
		g.log.Info("client connected", "remote", cc.remote, "cn", id.CN, "serial", id.Serial,
			"groups", id.Groups, "tls", tls.VersionName(r.TLS.Version))
	}
	return id
}

// refuse answers a refusal with Docker's error shape.
func (g *Gateway) refuse(w http.ResponseWriter, out outcome) outcome {
	if out.closeConn {
		w.Header().Set("Connection", "close")
	}
	if out.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(out.retryAfter))
	}
	writeError(w, out.verdict.Status, out.verdict.Message)
	return out
}

// forwardVerdict sends the request as the verdict says (path, query and
// JSON body, or the client's raw body streamed) and relays the answer.
func (g *Gateway) forwardVerdict(w http.ResponseWriter, r *http.Request, cc *clientConn, out *outcome, judge streamJudges) {
	v := &out.verdict
	r.URL.Path, r.URL.RawPath, r.URL.RawQuery = unescapedPath(v.Path), v.Path, v.RawQuery
	switch v.Route.Op.Body() {
	case dockerapi.BodyRaw:
		if v.Stream != nil {
			// The stream begins with the v.BytesIn bytes the policy read,
			// which the outcome counts already.
			out.bytesIn = -v.BytesIn
			r.Body = readCloser{Reader: v.Stream, Closer: r.Body}
		}
		r.Body = &countingReader{ReadCloser: r.Body, n: &out.bytesIn}
	default:
		setBody(r, v.Body)
	}
	switch {
	case v.Redact.Env():
		// Before the hijack case: an Upgrade header must not carry the
		// answer past the redaction (the daemon sees a plain request).
		g.daemon.forwardRedacted(w, r, &v.Redact)
	case isHijack(v.Route.Op, r):
		in, n, refused := g.daemon.hijack(w, r, cc, judge)
		out.bytesIn += in
		out.bytesOut += n
		what := "BuildKit Solve call(s)"
		if judge.dockerfile != nil {
			what = "Dockerfile(s) of the BuildKit session"
		}
		out.noteRefusedCalls(what, refused)
	case v.Route.Op.Body() == dockerapi.BodyRaw:
		g.daemon.stream(w, r) // streams the body while the daemon answers
	default:
		g.daemon.forward(w, r) // no body, or a checked JSON body held in memory
	}
}

// noteRefusedCalls puts what became of the BuildKit calls the gateway
// refused on a stream into its audit record: the stream itself was
// allowed, so the record says how many calls were refused and why the
// first was.
func (o *outcome) noteRefusedCalls(what string, refused []policy.SolveVerdict) {
	if len(refused) == 0 {
		return
	}
	first := refused[0]
	o.verdict.Reason = fmt.Sprintf("%d %s %s on the stream; the first: %s", len(refused), what, verbOf(first.Effect), first.Reason)
	if o.verdict.Rule == "" || first.Rule != "" {
		o.verdict.Rule = first.Rule
	}
}

func verbOf(e policy.Effect) string {
	if e == policy.WouldDeny {
		return "would be denied"
	}
	return "denied"
}

// buildKitJudge returns the judge of the Solve calls on a grpc.serve
// stream the verdict says to inspect, with the policy the request was
// decided by; nil for any other request.
func buildKitJudge(p *policy.Policy, id *identity.Identity, v *policy.Verdict, log *slog.Logger) solveJudge {
	if !v.InspectBuildKit {
		return nil
	}
	role := v.Role
	return func(msg proto.Message) policy.SolveVerdict {
		var sv policy.SolveVerdict
		switch req := msg.(type) {
		case *controlapi.SolveRequest:
			sv = p.JudgeSolve(*id, role, req)
		case *gatewaypb.SolveRequest:
			sv = p.JudgeFrontendSolve(*id, role, req)
		case *controlapi.BytesMessage:
			sv = p.JudgeSessionCall(*id, role)
		default:
			sv = p.JudgeSolve(*id, role, nil) // denies
		}
		if sv.Effect != policy.Allow {
			log.Warn("BuildKit Solve refused by the role", "cn", id.CN, "role", role,
				"decision", sv.Effect.String(), "reason", sv.Reason, "rule", sv.Rule)
		}
		return sv
	}
}

// sessionJudge returns the judge of the Dockerfiles a BuildKit session
// (session.start) sends, when the verdict says to read them; nil for any
// other request.
func sessionJudge(p *policy.Policy, id *identity.Identity, v *policy.Verdict, log *slog.Logger) dockerfileJudge {
	if !v.InspectSession {
		return nil
	}
	role := v.Role
	return func(path string, data []byte, ignoreFile bool) policy.SolveVerdict {
		sv := p.JudgeSessionDockerfile(*id, role, path, data, ignoreFile)
		if sv.Effect != policy.Allow {
			log.Warn("BuildKit session Dockerfile refused by the role", "cn", id.CN, "role", role,
				"decision", sv.Effect.String(), "path", path, "reason", sv.Reason, "rule", sv.Rule)
		}
		return sv
	}
}

// unescapedPath is URL.Path for an escaped path the policy accepted.
func unescapedPath(escaped string) string {
	p, err := url.PathUnescape(escaped)
	if err != nil {
		return escaped
	}
	return p
}

// setBody makes r carry exactly body, with a Content-Length, whatever
// framing the client used (chunked, Content-Length, both).
func setBody(r *http.Request, body []byte) {
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
}

// readCloser reads one stream and closes another: a body the policy
// started reading, forwarded whole.
type readCloser struct {
	io.Reader
	io.Closer
}

// countingReader counts the bytes of a streamed request body.
type countingReader struct {
	io.ReadCloser
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	return n, err
}

// isHijack reports whether the request may turn the connection into a raw
// stream: attach and exec start (with "Upgrade: tcp", or the legacy
// hijack without it), websocket attach, BuildKit's h2c /session and /grpc,
// or any other explicit Upgrade.
func isHijack(op dockerapi.Operation, r *http.Request) bool {
	switch op {
	case dockerapi.OpContainerAttach, dockerapi.OpContainerAttachWS, dockerapi.OpExecStart,
		dockerapi.OpSessionStart, dockerapi.OpGRPCServe:
		return true
	}
	return r.Header.Get("Upgrade") != ""
}

// writeError sends Docker's error shape: {"message": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

// copyBuffers recycles the 32 KiB buffers the proxy copies bodies with.
var copyBuffers = &bufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

// statusRecorder remembers the status for metrics and audit. Unwrap lets
// http.ResponseController reach the real writer for Flush and Hijack.
type statusRecorder struct {
	http.ResponseWriter
	status  int
	written int64
}

var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

func newStatusRecorder(w http.ResponseWriter) *statusRecorder {
	rec := recorders.Get().(*statusRecorder)
	rec.ResponseWriter, rec.status, rec.written = w, http.StatusOK, 0
	return rec
}

func (r *statusRecorder) release() {
	r.ResponseWriter = nil
	recorders.Put(r)
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(p []byte) (int, error) {
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	return n, err
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Flush is here for callers that check for http.Flusher rather than use
// http.ResponseController.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serveLocal answers the gateway's own paths: whoami, then Options.Local.
func (g *Gateway) serveLocal(w http.ResponseWriter, r *http.Request, id *identity.Identity, role string) {
	if r.URL.Path == identity.WhoamiPath && r.Method == http.MethodGet {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(id.Whoami(role))
		return
	}
	if g.opts.Local == nil {
		writeError(w, http.StatusNotFound, "dockgate: no such endpoint "+r.URL.Path)
		return
	}
	g.opts.Local.ServeHTTP(w, r.WithContext(identity.NewContext(r.Context(), id)))
}

// ServerCertificate returns the server certificate in force, for other
// listeners (enrollment) that must present the same one across reloads.
func (g *Gateway) ServerCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &g.material.Load().ServerCert, nil
}
