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
	"github.com/dockgate/dockgate/internal/store"
)

// clientConn is one client connection as the gateway tracks it.
type clientConn struct {
	tls      *tls.Conn
	raw      *trackedConn // the TCP connection under tls
	remote   string
	opened   time.Time
	id       atomic.Pointer[identity.Identity] // set on the first request, after the handshake
	hijacked atomic.Bool

	// peer is the client certificate's identity, set during the handshake
	// once the certificate is accepted (connTLSConfig), so that the
	// inventory sweep reaches connections that have not sent a request yet.
	peer atomic.Pointer[identity.Identity]

	// refused is set when the connection's certificate is revoked or
	// superseded: at the handshake, which then completes so that every
	// request can be answered a 403 that says why. Nothing on such a
	// connection reaches the daemon, so the sweep leaves it alone.
	refused atomic.Pointer[finalRefusal]
	// share is the connection's slot in its client's fair share (limits.go).
	share connShare
}

// certIdentity is whom the connection's certificate names: from its first
// request on, or from its handshake before that; nil mid-handshake.
func (c *clientConn) certIdentity() *identity.Identity {
	if id := c.id.Load(); id != nil {
		return id
	}
	return c.peer.Load()
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
	tc.client = cc // for checkClientHello, which binds verification to cc
	tc.onClose = func() {
		l.g.conns.remove(conn)
		cc.releaseConn()
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

// connTLSConfig is the gateway's TLS config with verification bound to cc,
// returned from GetConfigForClient (crypto/tls then keeps using the base
// config's session ticket keys).
// A revoked or superseded certificate completes the handshake with cc
// marked refused. An accepted one has its identity recorded after the
// check, and its standing read once more from the inventory in force: a
// sweep that starts after that read sees the identity, and one that
// started before it stored the inventory the read sees, so no handshake
// slips between a revocation and its sweep.
func (g *Gateway) connTLSConfig(cc *clientConn) *tls.Config {
	cfg := g.tls.Clone()
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		final, err := g.verifyConnectionFrom(cs, cc.remote)
		if err != nil {
			return err
		}
		if len(cs.PeerCertificates) == 0 {
			return nil // unreachable: verifyClient refuses a missing certificate
		}
		id := identity.FromCertificate(cs.PeerCertificates[0])
		if final == nil {
			cc.peer.Store(id)
			final = g.currentFinalRefusal(id.Serial)
		}
		if final != nil {
			cc.refused.Store(final)
			g.log.Info("client certificate no longer valid: its requests will be refused", "remote", cc.remote,
				"reason", final.reason, "cn", id.CN, "serial", id.Serial)
		}
		// A refused certificate's connection holds a slot too, so that it
		// cannot hold more than its client's cap while it is told why.
		g.admitConn(cc, id)
		return nil
	}
	return cfg
}

// currentFinalRefusal is the final refusal of serial by the inventory in
// force, or nil.
func (g *Gateway) currentFinalRefusal(serial string) *finalRefusal {
	inv := g.inventory.Load()
	if inv == nil {
		return nil
	}
	st, ok := (*inv)[serial]
	if !ok {
		return nil
	}
	return finalRefusalOf(st, g.opts.Now())
}

// trackedConn runs onClose exactly once when the connection closes.
type trackedConn struct {
	net.Conn
	once    sync.Once
	onClose func()
	client  *clientConn
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

// pollRevocations re-reads the inventory, at every poll and whenever
// InventoryChanged says it changed, and cuts the connections of
// certificates that stopped being valid since the last read. While the
// inventory cannot be read, the last one read stays in force: the gateway
// keeps serving the certificates it knew as valid and refusing the ones it
// knew as revoked, and catches up at the first read that succeeds.
func (g *Gateway) pollRevocations(ctx context.Context) {
	if g.opts.Inventory == nil {
		return
	}
	t := time.NewTicker(g.opts.RevocationPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-g.opts.InventoryChanged:
		}
		rctx, cancel := context.WithTimeout(ctx, inventoryReadTimeout)
		err := g.refreshRevocations(rctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		g.noteInventoryRead(err)
	}
}

// noteInventoryRead logs the start and the end of an inventory outage.
func (g *Gateway) noteInventoryRead(err error) {
	switch {
	case err != nil && !g.inventoryDown.Swap(true):
		g.log.Error("failed to read the certificate inventory; enforcing the last one read until it answers", "err", err)
	case err == nil && g.inventoryDown.Swap(false):
		g.log.Info("the certificate inventory answers again; revocations made meanwhile are enforced now")
	}
}

// refreshRevocations reads the inventory, makes it the one handshakes and
// requests check, then sweeps the live connections. Superseding happens at
// a time, not by a write, so the sweep runs on every poll.
func (g *Gateway) refreshRevocations(ctx context.Context) error {
	if g.opts.Inventory == nil {
		return nil
	}
	inv, err := g.opts.Inventory(ctx)
	if err != nil {
		return err
	}
	now := g.opts.Now()
	g.inventory.Store(&inv)
	if refused := refusedSerials(inv, now); !maps.Equal(refused, *g.revoked.Load()) {
		g.revoked.Store(&refused)
	}
	g.cutInvalid(inv, now)
	return nil
}

// refusedSerials maps the serials the inventory refuses for good at now
// (revoked, superseded) to why and since when; requests check it. Pending
// and unknown serials are left out: they are refused at the handshake
// (which reads the inventory afresh before refusing), and a poll that read
// a row just before it was completed must not refuse a certificate the
// handshake accepted after.
func refusedSerials(inv map[string]store.Standing, now time.Time) map[string]finalRefusal {
	refused := make(map[string]finalRefusal)
	for serial, st := range inv {
		if final := finalRefusalOf(st, now); final != nil {
			refused[serial] = *final
		}
	}
	return refused
}

// cutInvalid closes every live connection whose certificate the inventory
// revoked or superseded, including connections past their handshake that
// have not sent a request yet. Connections that were refused from their
// handshake on forward nothing and stay, so that their requests are
// answered why.
func (g *Gateway) cutInvalid(inv map[string]store.Standing, now time.Time) {
	for _, cc := range g.conns.snapshot() {
		if cc.refused.Load() != nil {
			continue
		}
		id := cc.certIdentity()
		if id == nil {
			continue // mid-handshake: its check reads the inventory just stored
		}
		// Only what is final: a serial this snapshot does not know yet, or
		// knows as pending, may have been completed since the poll read it;
		// the handshake refused it if it was not.
		why := inventoryRefusal(inv[id.Serial], now)
		if why != reasonRevoked && why != reasonSuperseded {
			continue
		}
		g.log.Warn("closing connection of a certificate no longer valid", "reason", why, "cn", id.CN,
			"serial", id.Serial, "remote", cc.remote, "hijacked", cc.hijacked.Load(), "requests_seen", cc.id.Load() != nil)
		g.metrics.revokedCuts.Inc()
		cc.raw.Close() // no close_notify: cut at once, even mid-write
	}
}
