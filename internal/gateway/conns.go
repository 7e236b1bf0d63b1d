package gateway

import (
	"context"
	"crypto/tls"
	"maps"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
)

// clientConn is one client connection as the gateway tracks it.
type clientConn struct {
	tls      *tls.Conn
	raw      *trackedConn // the TCP connection under tls
	remote   string
	opened   time.Time
	id       atomic.Pointer[identity.Identity] // set on the first request, after the handshake
	hijacked atomic.Bool
}

// identity returns the connection's identity, deriving it once from the
// verified handshake; first is true for the call that derived it.
func (c *clientConn) identity(cs *tls.ConnectionState) (id *identity.Identity, first bool) {
	if id := c.id.Load(); id != nil {
		return id, false
	}
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil, false
	}
	id = identity.FromCertificate(cs.PeerCertificates[0])
	if !c.id.CompareAndSwap(nil, id) {
		return c.id.Load(), false
	}
	return id, true
}

// registry tracks every live client connection, so that revocation and
// shutdown can reach connections net/http no longer sees (hijacked ones).
type registry struct {
	mu       sync.Mutex
	conns    map[*tls.Conn]*clientConn
	hijacked atomic.Int64
}

func newRegistry() *registry {
	return &registry{conns: make(map[*tls.Conn]*clientConn)}
}

type connKey struct{}

// connContext hands each request its clientConn (http.Server.ConnContext).
func (r *registry) connContext(ctx context.Context, c net.Conn) context.Context {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return ctx
	}
	r.mu.Lock()
	cc := r.conns[tc]
	r.mu.Unlock()
	return context.WithValue(ctx, connKey{}, cc)
}

func connFrom(ctx context.Context) *clientConn {
	cc, _ := ctx.Value(connKey{}).(*clientConn)
	return cc
}

func (r *registry) add(cc *clientConn) {
	r.mu.Lock()
	r.conns[cc.tls] = cc
	r.mu.Unlock()
}

func (r *registry) remove(tc *tls.Conn) {
	r.mu.Lock()
	delete(r.conns, tc)
	r.mu.Unlock()
}

func (r *registry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.conns)
}

func (r *registry) hijackedCount() int64 { return r.hijacked.Load() }

// snapshot copies the live connections so callers can act without the lock.
func (r *registry) snapshot() []*clientConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*clientConn, 0, len(r.conns))
	for _, cc := range r.conns {
		out = append(out, cc)
	}
	return out
}

func (r *registry) closeAll() {
	for _, cc := range r.snapshot() {
		cc.tls.Close()
	}
}

// trackingListener wraps accepted connections in TLS and registers them.
type trackingListener struct {
	net.Listener
	g   *Gateway
	sem *semaphore
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.sem.tryAcquire() {
			l.g.metrics.rejectedConns.Inc()
			l.g.log.Warn("connection refused: max_connections reached", "remote", raw.RemoteAddr().String())
			raw.Close()
			continue
		}
		return l.wrap(raw), nil
	}
}

func (l *trackingListener) wrap(raw net.Conn) *tls.Conn {
	tc := &trackedConn{Conn: raw}
	conn := tls.Server(tc, l.g.tls)
	cc := &clientConn{tls: conn, raw: tc, remote: raw.RemoteAddr().String(), opened: time.Now()}
	tc.onClose = func() {
		l.g.conns.remove(conn)
		l.sem.release()
		l.g.metrics.activeConns.Dec()
		if id := cc.id.Load(); id != nil {
			l.g.log.Info("client disconnected", "remote", cc.remote, "cn", id.CN, "serial", id.Serial,
				"duration", time.Since(cc.opened).Round(time.Millisecond).String())
		}
	}
	l.g.conns.add(cc)
	l.g.metrics.activeConns.Inc()
	return conn
}

// trackedConn runs onClose exactly once when the connection closes.
type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// semaphore caps concurrent connections; a nil semaphore is no cap.
type semaphore struct{ slots chan struct{} }

func newSemaphore(n int) *semaphore {
	if n <= 0 {
		return nil
	}
	return &semaphore{slots: make(chan struct{}, n)}
}

func (s *semaphore) tryAcquire() bool {
	if s == nil {
		return true
	}
	select {
	case s.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s *semaphore) release() {
	if s != nil {
		<-s.slots
	}
}

// pollRevocations reloads the revoked serials and cuts connections whose
// certificate was revoked since the last poll.
func (g *Gateway) pollRevocations(ctx context.Context) {
	if g.opts.Revoked == nil {
		return
	}
	t := time.NewTicker(g.opts.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := g.refreshRevocations(ctx); err != nil && ctx.Err() == nil {
			g.log.Error("failed to read revocations", "err", err)
		}
	}
}

func (g *Gateway) refreshRevocations(ctx context.Context) error {
	if g.opts.Revoked == nil {
		return nil
	}
	revoked, err := g.opts.Revoked(ctx)
	if err != nil {
		return err
	}
	if maps.Equal(revoked, *g.revoked.Load()) {
		return nil
	}
	g.revoked.Store(&revoked)
	g.cutRevoked(revoked)
	return nil
}

// cutRevoked closes every live connection of a revoked certificate.
func (g *Gateway) cutRevoked(revoked map[string]time.Time) {
	for _, cc := range g.conns.snapshot() {
		id := cc.id.Load()
		if id == nil {
			continue // not yet past its first request, which checks revocation
		}
		if _, ok := revoked[id.Serial]; ok {
			g.log.Warn("closing connection of revoked certificate", "cn", id.CN, "serial", id.Serial,
				"remote", cc.remote, "hijacked", cc.hijacked.Load())
			g.metrics.revokedCuts.Inc()
			cc.raw.Close() // no close_notify: cut at once, even mid-write
		}
	}
}
