// Package gateway owns dockgate's network side: the mutual-TLS listener in
// front of the Docker API, client identity, revocation, the one client for
// the Docker daemon (daemon.go: plain, streamed and hijacked requests over
// one pool of expiring connections), hot reload and metrics. It applies
// the policy's verdict, the answer included: environment values the
// verdict says to redact are replaced before the client sees the answer
// (redact.go), and the Solve calls of a BuildKit connection the verdict
// says to inspect are read from its HTTP/2 frames and judged one by one
// (grpcrelay.go), as are the Dockerfiles a BuildKit session sends the
// daemon (sessionrelay.go).
//
// # Connections
//
// Every client must present a certificate that chains to the CA in force,
// carries the clientAuth extended key usage explicitly, and whose serial the
// inventory knows as issued: a certificate signed with the CA key outside
// dockgate is refused ("unknown_serial"). The gateway verifies it itself in
// tls.Config.VerifyConnection so that every refusal has a reason for the
// metrics, and so that a reloaded CA applies to resumed sessions too.
//
// A certificate the inventory knows as revoked or superseded, and that
// passes every other check, completes the handshake: the docker CLI shows a
// handshake refusal only as "bad certificate". Its connection is marked
// refused, and every request on it is answered 403 with one sentence that
// names the certificate and the fix; nothing on it is forwarded. The
// inventory is polled; when a certificate stops being valid, the
// connections it had been accepted on are closed, hijacked streams and
// connections that have not sent a request yet included.
//
// A request with a chunked body is answered with the connection closed
// after it (RFC 9112 section 6.1; see serveHTTP).
//
// Each client (certificate CN, or uid on the local socket) has caps of its
// own on connections, requests in flight, hijacked streams and request
// rate, from its role (limits.go, internal/fairshare), so that one client
// cannot use up limits.max_connections or the daemon for the others; over
// a cap it gets 429.
//
// The local socket (listen_unix, unix.go) serves the same handler and
// policy to processes on the gateway's host, identified by the kernel's
// peer credentials instead of a certificate.
//
// # Reload
//
// The server certificate, the CA and the client rules form one Material,
// swapped atomically. A failed reload keeps the old Material. Live
// connections keep going across a reload.
//
// # Knowing itself
//
// The policy keeps every role but admin away from the gateway's own
// container and state volume. The gateway tells it which they are, on the
// answers of its Host (self.go): the container it runs in, by the ID
// /proc/self/mountinfo or /proc/self/cgroup shows, any container labelled
// dockgate.self=true, and the volumes those containers mount.
package gateway

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/fairshare"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/policy"
	"github.com/dockgate/dockgate/internal/store"
)

// Material is everything that may change on reload.
type Material struct {
	ServerCert tls.Certificate // Leaf must be set
	CA         *CA
	Config     *config.Config
	Policy     *policy.Policy // compiled from Config when nil
}

// Loader reads fresh Material, e.g. from the state directory.
type Loader func() (*Material, error)

// InventorySource returns the standing of every client certificate in the
// inventory by serial (lower-case hex), e.g. store.ClientStandings.
type InventorySource func(ctx context.Context) (map[string]store.Standing, error)

// Options configure a Gateway. Listen addresses, upstream and limits come
// from the Material loaded at start and are not changed by a reload.
type Options struct {
	Load Loader
	// Inventory is the positive check: only client certificates it knows
	// as valid are accepted. Nil turns the check off, so that any
	// certificate the CA signed for clientAuth is accepted and nothing is
	// ever revoked; only tests do that.
	Inventory InventorySource
	// RevocationPoll is how often Inventory is read; 250ms keeps the
	// "cut within 1 s" promise with room for a slow query.
	RevocationPoll time.Duration
	// InventoryChanged, when it receives, makes the gateway read Inventory
	// at once instead of at the next poll (e.g. store.Store.Changes, a
	// PostgreSQL LISTEN shared by several gateways). Nil: polls only.
	InventoryChanged <-chan struct{}
	// ConfigChanged, when it receives, triggers Reload (e.g.
	// store.Store.ConfigChanges for a config kept in the store). Nil:
	// only file changes and SIGHUP reload.
	ConfigChanged <-chan struct{}
	// WatchFiles are polled every WatchPoll; a change triggers Reload.
	WatchFiles []string
	WatchPoll  time.Duration
	Logger     *slog.Logger
	// Now is the clock used for certificate checks; nil means time.Now.
	Now func() time.Time
	// Local serves the gateway's own API under LocalPrefix on the mTLS
	// port (e.g. certificate renewal), for any verified client, matched by
	// a clients: entry or not; identity.FromContext(r.Context()) says who asks.
	// Nil: those paths answer 404.
	Local http.Handler
	// Audit receives one record per request; nil: no audit log.
	Audit *audit.Log
}

// LocalPrefix is the path prefix the gateway answers itself, never
// forwarded to the daemon (which has no such routes).
const LocalPrefix = "/dockgate/"

// Gateway is the running server.
type Gateway struct {
	opts     Options
	log      *slog.Logger
	material atomic.Pointer[Material]
	revoked  atomic.Pointer[map[string]finalRefusal]
	conns    *registry
	share    *fairshare.Limiter // per-client caps (limits.go)
	metrics  *metrics
	daemon   *daemon
	tls      *tls.Config
	// host is what the policy asks of the daemon and its host.
	host daemonHost

	server *http.Server
	admin  *http.Server
	// serverLog is the servers' error log (one line per refused handshake).
	serverLog *serverLog
	unix      *unixSocket // nil while listen_unix is off (unix.go)

	reloadMu sync.Mutex

	// inventory is the last standing read from opts.Inventory; nil while
	// there is no inventory check. revoked holds the serials it refuses.
	inventory atomic.Pointer[map[string]store.Standing]
	// inventoryDown is set while reading the inventory fails, so that an
	// outage is logged when it starts and when it ends, not at every poll.
	inventoryDown atomic.Bool
}

// New loads the initial Material and prepares the servers. It does not
// listen yet.
func New(opts Options) (*Gateway, error) {
	if opts.Load == nil {
		return nil, errors.New("gateway: no loader")
	}
	if opts.RevocationPoll <= 0 {
		opts.RevocationPoll = 250 * time.Millisecond
	}
	if opts.WatchPoll <= 0 {
		opts.WatchPoll = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m, err := load(opts.Load, opts.Logger)
	if err != nil {
		return nil, err
	}
	// The fair share runs on the wall clock, not opts.Now, which tests
	// pin for certificate checks.
	g := &Gateway{opts: opts, log: opts.Logger, conns: newRegistry(), serverLog: newServerLog(opts.Logger), share: fairshare.New(nil)}
	g.material.Store(m)
	empty := map[string]finalRefusal{}
	g.revoked.Store(&empty)
	g.metrics = newMetrics(g)
	for _, r := range inventoryReasons {
		g.metrics.handshakeFailures.WithLabelValues(r) // exported at zero from the start
	}
	if g.daemon, err = newDaemon(m.Config.Upstream, opts.Logger); err != nil {
		return nil, err
	}
	g.daemon.onStream = g.trackStream
	g.host = daemonHost{call: g.daemon.call, resolve: HostPathResolver(m.Config.Upstream), self: SelfContainerID()}
	g.tls = g.newTLSConfig()
	g.server = g.newServer(m.Config)
	g.admin = g.newAdminServer()
	if err := g.refreshRevocations(context.Background()); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *Gateway) newServer(cfg *config.Config) *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(g.serveHTTP),
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
		// HTTP/1.1 only: Docker's attach and exec hijack the connection,
		// which HTTP/2 cannot do.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ConnContext:  g.conns.connContext,
		ErrorLog:     g.serverLog.logger(),
	}
}

// Serve listens on the configured addresses and serves until ctx is done,
// then drains for up to the configured shutdown timeout.
func (g *Gateway) Serve(ctx context.Context) error {
	cfg := g.material.Load().Config
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("failed to listen on %s: %w", cfg.Listen, err)
	}
	var adminLn net.Listener
	if cfg.AdminListen != "" && cfg.AdminListen != "off" {
		if adminLn, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			ln.Close()
			return fmt.Errorf("failed to listen on %s: %w", cfg.AdminListen, err)
		}
	}
	return g.ServeListeners(ctx, ln, adminLn)
}

// ServeListeners is Serve on listeners the caller opened (tests use
// 127.0.0.1:0). adminLn may be nil. The local socket, when listen_unix
// sets one, is created here.
func (g *Gateway) ServeListeners(ctx context.Context, ln, adminLn net.Listener) error {
	cfg := g.material.Load().Config
	if err := g.daemon.checkAccess(ctx); err != nil {
		closeListeners(ln, adminLn)
		return err
	}
	sem := newSemaphore(cfg.Limits.MaxConnections)
	tl := &trackingListener{Listener: ln, g: g, sem: sem}
	unix, err := g.openUnixSocket(cfg, sem)
	if err != nil {
		closeListeners(ln, adminLn)
		return err
	}
	g.unix = unix
	errc := make(chan error, 3)
	go func() { errc <- g.server.Serve(tl) }()
	unix.serve(errc)
	if adminLn != nil {
		go func() { errc <- g.admin.Serve(adminLn) }()
		g.log.Info("admin listener ready", "addr", adminLn.Addr().String())
	}
	bg, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	go g.pollRevocations(bg)
	go g.watchFiles(bg)
	go g.watchConfig(bg)
	g.log.Info("gateway ready", "addr", ln.Addr().String(), "upstream", cfg.Upstream.URL,
		"server_cert", g.material.Load().ServerCert.Leaf.Subject.CommonName)

	select {
	case err := <-errc:
		stopBackground()
		g.closeAll()
		return err
	case <-ctx.Done():
	}
	return g.drain(cfg.Limits.ShutdownTimeout)
}

// closeListeners closes the listeners ServeListeners was given when it
// cannot serve; adminLn may be nil.
func closeListeners(ln, adminLn net.Listener) {
	ln.Close()
	if adminLn != nil {
		adminLn.Close()
	}
}

// drain stops accepting, lets requests finish until the deadline, then
// cuts what is left (hijacked streams have no natural end).
func (g *Gateway) drain(timeout time.Duration) error {
	g.log.Info("draining", "timeout", timeout.String(), "connections", g.conns.count())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	g.admin.Close()
	unixErr := g.unix.shutdown(ctx)
	err := cmp.Or(g.server.Shutdown(ctx), unixErr)
	for g.conns.hijackedCount() > 0 && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	g.closeAll()
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("drain deadline reached, closing remaining connections")
		return nil
	}
	return err
}

func (g *Gateway) closeAll() {
	g.server.Close()
	g.admin.Close()
	g.unix.close()
	g.conns.closeAll()
	g.daemon.close()
}

// Reload reads fresh Material and swaps it in. On error the old Material
// stays in force.
func (g *Gateway) Reload() error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	m, err := load(g.opts.Load, g.log)
	if err != nil {
		g.metrics.reloads.WithLabelValues("error").Inc()
		g.log.Error("reload failed, keeping the current certificates and config", "err", err)
		return err
	}
	old := g.material.Load()
	if changed := staticFieldsChanged(old.Config, m.Config); len(changed) > 0 {
		g.log.Warn("reload: a restart is needed for these changes to apply", "fields", changed)
	}
	g.material.Store(m)
	g.metrics.reloads.WithLabelValues("ok").Inc()
	g.log.Info("reloaded", "server_cert_serial", identity.SerialHex(m.ServerCert.Leaf),
		"server_cert_expires", m.ServerCert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// load reads Material and compiles its policy when the loader did not
// (LoadPolicy), so that no Material without a policy is ever in force.
func load(l Loader, log *slog.Logger) (*Material, error) {
	m, err := l()
	if err != nil {
		return nil, err
	}
	if m.Policy == nil {
		if m.Policy, err = LoadPolicy(m.Config, log); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// LoadPolicy compiles a config's roles as a gateway in front of its
// upstream enforces them: on the daemon's host, the allowed bind paths
// are resolved now (resolveBindPaths), so that a link planted later
// cannot widen them. `policy explain` uses it too.
func LoadPolicy(cfg *config.Config, log *slog.Logger) (*policy.Policy, error) {
	p, err := policy.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("invalid roles: %w", err)
	}
	if resolvesHostPaths(cfg.Upstream) {
		p = resolveBindPaths(p, log)
	}
	return p, nil
}

// restartOnlyFields are the config fields, by YAML path, that a running
// gateway reads only at start: the listeners, the HTTP server's limits, the
// upstream client, the server certificate's files, the logger, the audit
// log and the enrollment listener. Roles (with their limits), clients,
// limits.max_json_body, limits.max_build_prefix and limits.per_client
// apply on Reload; every other field is listed here.
var restartOnlyFields = []struct {
	name  string
	value func(*config.Config) any // comparable
}{
	{"listen", func(c *config.Config) any { return c.Listen }},
	{"admin_listen", func(c *config.Config) any { return c.AdminListen }},
	{"server_cert", func(c *config.Config) any { return c.ServerCert }},
	{"upstream.url", func(c *config.Config) any { return c.Upstream.URL }},
	{"upstream.tls_ca", func(c *config.Config) any { return c.Upstream.TLSCA }},
	{"upstream.tls_cert", func(c *config.Config) any { return c.Upstream.TLSCert }},
	{"upstream.tls_key", func(c *config.Config) any { return c.Upstream.TLSKey }},
	{"upstream.idle_timeout", func(c *config.Config) any { return c.Upstream.IdleTimeout }},
	{"limits.read_header_timeout", func(c *config.Config) any { return c.Limits.ReadHeaderTimeout }},
	{"limits.idle_timeout", func(c *config.Config) any { return c.Limits.IdleTimeout }},
	{"limits.max_header_bytes", func(c *config.Config) any { return c.Limits.MaxHeaderBytes }},
	{"limits.max_connections", func(c *config.Config) any { return c.Limits.MaxConnections }},
	{"limits.shutdown_timeout", func(c *config.Config) any { return c.Limits.ShutdownTimeout }},
	{"log.format", func(c *config.Config) any { return c.Log.Format }},
	{"log.level", func(c *config.Config) any { return c.Log.Level }},
	{"audit.path", func(c *config.Config) any { return c.Audit.Path }},
	{"audit.on_full", func(c *config.Config) any { return c.Audit.OnFull }},
	{"audit.queue", func(c *config.Config) any { return c.Audit.Queue }},
	{"audit.sync", func(c *config.Config) any { return c.Audit.Sync }},
	{"audit.sink", func(c *config.Config) any { return c.Audit.Sink }},
	{"audit.host", func(c *config.Config) any { return c.Audit.Host }},
	{"enroll.enabled", func(c *config.Config) any { return c.Enroll.Enabled }},
	{"enroll.listen", func(c *config.Config) any { return c.Enroll.Listen }},
	{"enroll.max_failures", func(c *config.Config) any { return c.Enroll.MaxFailures }},
	{"enroll.failure_window", func(c *config.Config) any { return c.Enroll.FailureWindow }},
	{"listen_unix", func(c *config.Config) any { return c.ListenUnix }},
	{"listen_unix_mode", func(c *config.Config) any { return c.ListenUnixMode }},
	{"listen_unix_group", func(c *config.Config) any { return c.ListenUnixGroup }},
	{"store.url", func(c *config.Config) any { return c.Store.URL }},
	// The host registers with its name and labels at start; a reload
	// judges client rules' hosts: with the new ones at once.
	{"host.name", func(c *config.Config) any { return c.Host.Name }},
	{"host.labels", func(c *config.Config) any { return c.Host.LabelString() }},
}

// staticFieldsChanged names every field that differs between old and cur
// but takes effect only on restart, in config order.
func staticFieldsChanged(old, cur *config.Config) []string {
	var changed []string
	for _, f := range restartOnlyFields {
		if f.value(old) != f.value(cur) {
			changed = append(changed, f.name)
		}
	}
	return changed
}
