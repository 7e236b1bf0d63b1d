package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/policy"
)

// serveHTTP is the gateway's request path: identity, revocation, client
// rules, policy, then the proxy (plain or hijacked), and an audit record.
func (g *Gateway) serveHTTP(w http.ResponseWriter, r *http.Request) {
	rw := newStatusRecorder(w)
	defer rw.release()
	rec := audit.Record{Time: time.Now(), Method: r.Method, RawPath: r.URL.EscapedPath(), Remote: r.RemoteAddr}
	label := g.handle(rw, r, &rec)
	rec.Status, rec.BytesOut = rw.status, rec.BytesOut+rw.written
	rec.Duration = time.Since(rec.Time)
	g.metrics.observe(label, rw.status, rec.Time)
	if g.opts.Audit != nil {
		rec.RequestID = audit.NewRequestID()
		g.opts.Audit.Write(&rec)
	}
}

// handle answers one request and returns its metrics label: the
// operation, or what stopped it.
func (g *Gateway) handle(w *statusRecorder, r *http.Request, rec *audit.Record) string {
	cc := connFrom(r.Context())
	var id *Identity
	if cc != nil {
		var first bool
		if id, first = cc.identity(r.TLS); first {
			g.log.Info("client connected", "remote", cc.remote, "cn", id.CN, "serial", id.Serial,
				"groups", id.Groups, "tls", tls.VersionName(r.TLS.Version))
		}
	}
	if id == nil {
		// Unreachable through the TLS listener, which refuses clients
		// without a verified certificate; kept as a fail-closed guard.
		rec.Decision, rec.Reason = "deny", "no verified client certificate"
		writeError(w, http.StatusForbidden, "dockgate: a verified client certificate is required")
		return "denied"
	}
	rec.CN, rec.Serial, rec.Groups = id.CN, id.Serial, id.Groups
	if _, revoked := (*g.revoked.Load())[id.Serial]; revoked {
		rec.Decision, rec.Reason = "deny", "certificate revoked"
		w.Header().Set("Connection", "close")
		writeError(w, http.StatusForbidden, fmt.Sprintf("dockgate: certificate %s (serial %s) is revoked", id.CN, id.Serial))
		return "denied"
	}
	m := g.material.Load()
	role, ok := m.Config.MatchClient(id.CN, id.Groups)
	rec.Role = role
	if strings.HasPrefix(r.URL.Path, LocalPrefix) {
		rec.Decision, rec.Operation = "allow", "dockgate.local"
		g.serveLocal(w, r, id, role)
		return "local"
	}
	if !ok {
		// The record says what was asked even though nothing is decided.
		if req, err := policy.ParseRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery); err == nil {
			rec.Path, rec.Operation, rec.Target = req.Route.Path, req.Route.Op.String(), req.Route.Target
		}
		rec.Decision, rec.Reason = "deny", "no clients: entry matches"
		writeError(w, http.StatusForbidden, fmt.Sprintf(
			"dockgate: access denied for CN=%q groups=%v (serial %s): no clients: entry matches this identity; add one with cn: or group: in the gateway config",
			id.CN, id.Groups, id.Serial))
		return "denied"
	}
	route, allowed := g.authorize(w, r, id, role, m.Policy, rec)
	if !allowed {
		return "denied"
	}
	switch {
	case isHijack(route.Op, r):
		in, out := g.daemon.hijack(w, r, cc)
		rec.BytesIn += in
		rec.BytesOut += out
	case route.Op.Body() == dockerapi.BodyRaw:
		g.daemon.stream(w, r) // streams the body while the daemon answers
	default:
		g.daemon.forward(w, r) // no body, or a checked JSON body held in memory
	}
	return route.Op.String()
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

type identityKey struct{}

// IdentityFrom returns the verified client identity of a request that
// reached Options.Local.
func IdentityFrom(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// serveLocal answers the gateway's own paths: whoami, then Options.Local.
func (g *Gateway) serveLocal(w http.ResponseWriter, r *http.Request, id *Identity, role string) {
	if r.URL.Path == WhoamiPath && r.Method == http.MethodGet {
		g.serveWhoami(w, id, role)
		return
	}
	if g.opts.Local == nil {
		writeError(w, http.StatusNotFound, "dockgate: no such endpoint "+r.URL.Path)
		return
	}
	g.opts.Local.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
}

// ServerCertificate returns the server certificate in force, for other
// listeners (enrollment) that must present the same one across reloads.
func (g *Gateway) ServerCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return &g.material.Load().ServerCert, nil
}
