package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/store"
)

// serveFlags are the command-line overrides of the config file.
type serveFlags struct {
	configPath  string
	listen      string
	adminListen string
	upstream    string
	serverCert  string
	// fromStore: the config is the store's latest version (config push),
	// not a file; storeURL is then the store it comes from.
	fromStore bool
	storeURL  string
	hostName  string
	labels    []string
	enroll    enrollFlags // enroll_wiring.go
	join      joinFlags   // join.go
}

func (f *serveFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "YAML config file (env DOCKGATE_CONFIG)")
	fl.StringVar(&f.listen, "listen", "", "address for Docker clients (default :2376)")
	fl.StringVar(&f.adminListen, "admin-listen", "", `address for /metrics, /healthz, /readyz, or "off" (default 127.0.0.1:2378)`)
	fl.StringVar(&f.upstream, "upstream", "", "Docker daemon: unix:///PATH or tcp://HOST:PORT (default unix:///var/run/docker.sock)")
	fl.StringVar(&f.serverCert, "server-cert", "", `name of the server certificate in the state dir (default "gateway")`)
	fl.BoolVar(&f.fromStore, "config-from-store", false, "run the latest config version pushed to the store ('dockgate config push'), reloading on each push, instead of a file")
	fl.StringVar(&f.hostName, "host-name", "", `this host's name in the host registry (default: the server certificate's name, or the hostname when that is "gateway")`)
	fl.StringArrayVar(&f.labels, "label", nil, "a label of this host, KEY=VALUE, for client rules with hosts: (repeatable; over the config's host.labels)")
	fl.StringVar(&f.join.token, "join", "", "join the fleet with a host token ('dockgate token create NAME --host'): get this host's server certificate and the CA certificate from a gateway that signs, then serve")
	fl.StringArrayVar(&f.join.sans, "san", nil, sansHelp)
}

func newServeCmd(a *app) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mTLS gateway in front of the Docker socket",
		Example: `  dockgate serve --passphrase-file /etc/dockgate/ca-passphrase
  dockgate serve --config /etc/dockgate/config.yaml --listen 192.0.2.10:2376
  dockgate serve --listen 127.0.0.1:0 --admin-listen off   # ephemeral port, logged
  dockgate serve --config-from-store --store postgres://dockgate@db.example.net/dockgate --server-cert dock2
  dockgate serve --store postgres://dockgate@db.example.net/dockgate --join dgt1.…   # join a fleet`,
		Long: `serve runs the gateway: mutual TLS on :2376 in front of the Docker API.
Every client needs a certificate from this CA and a matching clients: entry.
SIGHUP (or a change of the certificate or config files) reloads; SIGTERM drains.

With --config-from-store the config is the latest version pushed with
'dockgate config push' to the store (--store, DOCKGATE_STORE, or store.url of
the file DOCKGATE_CONFIG names); a push reloads it within 2 s. DOCKGATE_*
variables and the flags still override single fields on each host.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.serve(cmd.Context(), &f)
		},
	}
	f.register(cmd)
	f.enroll.register(cmd)
	return cmd
}

// configFile is the config file serve reads: --config, else
// $DOCKGATE_CONFIG; "" is none.
func (a *app) configFile(f *serveFlags) string {
	if f.configPath != "" {
		return f.configPath
	}
	return a.getenv("DOCKGATE_CONFIG")
}

// loadConfig reads the config file (if any), then env, then flags.
func (a *app) loadConfig(f *serveFlags) (*config.Config, error) {
	cfg := config.Default()
	if path := a.configFile(f); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, withHint(fmt.Errorf("failed to read config: %w", err), "check --config or DOCKGATE_CONFIG")
		}
		if cfg, err = config.Parse(bytes.NewReader(data)); err != nil {
			return nil, withHint(fmt.Errorf("%s: %w", path, err), "see docs/CONFIG.md for the format")
		}
	}
	return a.overrideConfig(cfg, f)
}

// loadStoredConfig reads the store's latest config version, then env,
// then flags. The store stays the one the gateway opened, whatever
// store.url the version says.
func (a *app) loadStoredConfig(ctx context.Context, st *store.Store, f *serveFlags) (*config.Config, error) {
	v, err := configVersion(ctx, st, 0)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(strings.NewReader(v.YAML))
	if err != nil {
		return nil, withHint(fmt.Errorf("config version %d in %s: %w", v.Version, st.Where(), err), "push a fixed config with 'dockgate config push FILE'")
	}
	// The store is the one given on this host (flag, env), never the
	// version's store.url; overrideConfig applies the same flag and env.
	cfg.Store.URL = f.storeURL
	return a.overrideConfig(cfg, f)
}

// overrideConfig applies env and flags over cfg and validates the result.
func (a *app) overrideConfig(cfg config.Config, f *serveFlags) (*config.Config, error) {
	cfg.ApplyEnv(a.getenv)
	setIf(&cfg.Listen, f.listen)
	setIf(&cfg.AdminListen, f.adminListen)
	setIf(&cfg.Upstream.URL, f.upstream)
	setIf(&cfg.ServerCert, f.serverCert)
	setIf(&cfg.Enroll.Listen, f.enroll.listen)
	setIf(&cfg.Store.URL, a.storeFlag)
	if err := applyHostFlags(&cfg, f); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, withHint(fmt.Errorf("invalid config: %w", err), "fix the fields named above")
	}
	return &cfg, nil
}

// applyHostFlags sets the host's name and labels from --host-name and
// --label over the config's host:, and names the host by default.
func applyHostFlags(cfg *config.Config, f *serveFlags) error {
	setIf(&cfg.Host.Name, f.hostName)
	if len(f.labels) > 0 {
		labels := maps.Clone(cfg.Host.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		for _, l := range f.labels {
			k, v, err := config.ParseLabel(l)
			if err != nil {
				return withHint(&usageError{err: fmt.Errorf("--label %w", err)}, "give --label KEY=VALUE, e.g. --label env=prod")
			}
			labels[k] = v
		}
		cfg.Host.Labels = labels
	}
	if cfg.Host.Name == "" {
		cfg.Host.Name = config.DefaultHostName(cfg.ServerCert, os.Hostname)
	}
	return nil
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func (a *app) serve(ctx context.Context, f *serveFlags) error {
	if err := a.parseJoin(f); err != nil {
		return err
	}
	if f.fromStore {
		return a.serveFromStore(ctx, f)
	}
	cfg, err := a.loadConfig(f)
	if err != nil {
		return err
	}
	return a.runGateway(ctx, cfg, f, nil, nil)
}

// serveFromStore runs the gateway on the store's latest config version.
func (a *app) serveFromStore(ctx context.Context, f *serveFlags) error {
	if f.configPath != "" {
		return usageErrorf("--config and --config-from-store exclude each other: the config comes from the store")
	}
	u, err := a.storeURL(nil)
	if err != nil {
		return err
	}
	f.storeURL = u
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	st, err := a.openStore(dir, nil)
	if err != nil {
		return err
	}
	cfg, err := a.loadStoredConfig(ctx, st, f)
	st.Close()
	if err != nil {
		return err
	}
	return a.runGateway(ctx, cfg, f, nil, nil)
}

// readyFunc runs once the gateway's ports are bound, just before it serves.
type readyFunc func(ctx context.Context, log *slog.Logger, auth *authority.Authority)

// gatewayListeners are the gateway's sockets; admin is nil when off.
type gatewayListeners struct{ api, admin net.Listener }

// bindGateway opens the Docker API and admin listeners, so that a port in
// use is found before anything else happens.
func bindGateway(cfg *config.Config) (*gatewayListeners, error) {
	api, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, listenError(cfg.Listen, "--listen", err)
	}
	ls := &gatewayListeners{api: api}
	if cfg.AdminListen != "" && cfg.AdminListen != "off" {
		if ls.admin, err = net.Listen("tcp", cfg.AdminListen); err != nil {
			api.Close()
			return nil, listenError(cfg.AdminListen, "--admin-listen", err)
		}
	}
	return ls, nil
}

func (ls *gatewayListeners) close() {
	ls.api.Close()
	if ls.admin != nil {
		ls.admin.Close()
	}
}

// listenError says why a port could not be bound and how to pick another.
func listenError(addr, flag string, err error) error {
	if oe := (*net.OpError)(nil); errors.As(err, &oe) {
		err = oe.Err // "bind: address already in use", without the address again
	}
	err = fmt.Errorf("failed to listen on %s: %w", addr, err)
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return withHint(err, "another program (another gateway?) uses that port: stop it, or pass %s HOST:PORT with a free port", flag)
	case errors.Is(err, syscall.EACCES):
		return withHint(err, "ports below 1024 need root: run as root, or pass %s HOST:PORT with a higher port", flag)
	}
	return withHint(err, "pass %s HOST:PORT with an address of this host", flag)
}

// runGateway serves until SIGTERM or SIGINT, reloading on SIGHUP, on ls
// (nil: it binds them itself). ready, if set, runs once clients can connect,
// with the gateway's logger and its unlocked CA (nil when it cannot sign).
func (a *app) runGateway(ctx context.Context, cfg *config.Config, f *serveFlags, ls *gatewayListeners, ready readyFunc) error {
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	st, err := a.openStore(dir, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	if f.join.tok != nil {
		if err := a.joinFleet(ctx, st, cfg.ServerCert, &f.join); err != nil {
			return err
		}
	}
	src := a.materialSource(f, cfg.ServerCert, st)
	if _, err := os.Stat(src.CACert); errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("no CA in %s", dir), "run 'dockgate init' (or 'dockgate up', which does everything)")
	}
	if _, err := os.Stat(src.ServerCert); errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("no server certificate %q in %s", cfg.ServerCert, dir),
			"run 'dockgate issue server %s' or pass --server-cert NAME", cfg.ServerCert)
	}
	if ls == nil {
		if ls, err = bindGateway(cfg); err != nil {
			return err
		}
	}
	defer ls.close()
	log := newLogger(a.stderr, cfg.Log.Format, cfg.Log.Level)
	watch := src.Files()
	if path := a.configFile(f); path != "" && !f.fromStore {
		watch = append(watch, path)
	}
	alog, err := openAudit(cfg, dir, st, log)
	if err != nil {
		return err
	}
	if alog != nil {
		defer alog.Close()
	}
	enr := a.prepareEnrollment(cfg, st, &f.enroll, log)
	// A shared store announces every change, so a revocation made through
	// any gateway or host reaches this one at once; polls stay the fallback.
	listenCtx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	if st.Backend() != "sqlite" {
		log.Info("certificate inventory", "store", st.Where())
	}
	var configChanged <-chan struct{}
	if f.fromStore {
		configChanged = st.ConfigChanges(listenCtx, storedConfigPoll, func(err error) {
			log.Warn("cannot read the config versions; keeping the current config until the store answers", "err", err)
		})
		log.Info("config from the store", "store", st.Where())
	}
	g, err := gateway.New(gateway.Options{
		Load:      src.Load,
		Inventory: st.ClientStandings,
		InventoryChanged: st.Changes(listenCtx, func(err error) {
			log.Warn("not notified of inventory changes; polling until the store answers", "err", err)
		}),
		ConfigChanged: configChanged,
		WatchFiles:    watch,
		Logger:        log,
		Local:         localAPI(enr.local(), a.hostList(st, cfg.Host.Name, f)),
		Audit:         alog,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	go reloadOnHUP(ctx, g, alog, log)
	enrollAddr := enr.start(ctx, g)
	go a.heartbeat(ctx, st, cfg, src, ls.api.Addr(), enrollAddr, log)
	if ready != nil {
		ready(ctx, log, enr.auth)
	}
	return g.ServeListeners(ctx, ls.api, ls.admin)
}

// materialSource names the files the gateway loads and reloads; the config
// is re-read (file, env, flags) at each reload.
func (a *app) materialSource(f *serveFlags, serverCert string, st *store.Store) gateway.FileSource {
	serverDir := st.Path("servers", serverCert)
	load := func() (*config.Config, error) { return a.loadConfig(f) }
	if f.fromStore {
		load = func() (*config.Config, error) {
			ctx, cancel := context.WithTimeout(context.Background(), storedConfigTimeout)
			defer cancel()
			return a.loadStoredConfig(ctx, st, f)
		}
	}
	return gateway.FileSource{
		CACert:     st.Path("ca", "ca.pem"),
		ServerCert: filepath.Join(serverDir, "cert.pem"),
		ServerKey:  filepath.Join(serverDir, "key.pem"),
		Config:     load,
	}
}

// storedConfigPoll is how often a gateway on --config-from-store reads the
// latest version number when no notification comes (SQLite, or LISTEN
// failing): a push applies within 2 s either way. storedConfigTimeout
// bounds a reload's read, so a store that hangs keeps the current config.
const (
	storedConfigPoll    = time.Second
	storedConfigTimeout = 5 * time.Second
)

// auditBatchInterval is how long records gather before one INSERT when
// they go to the store (audit.sink: postgres).
const auditBatchInterval = 100 * time.Millisecond

// openAudit opens the audit log: the store's audit_records table for
// audit.sink postgres, else the file; nil for audit: {path: off}.
// Lost records are logged by the log itself, at most every ten seconds.
func openAudit(c *config.Config, dir string, st *store.Store, log *slog.Logger) (*audit.Log, error) {
	cfg := c.Audit
	if cfg.Sink == config.AuditSinkPostgres {
		host := auditHost(cfg)
		alog, err := audit.OpenSink(st.AuditSink(host), audit.Options{
			Queue:         cfg.Queue,
			OnFull:        audit.OnFull(cfg.OnFull),
			BatchInterval: auditBatchInterval,
			Logger:        log.With("component", "audit", "sink", "postgres"),
		})
		if err != nil {
			return nil, err
		}
		log.Info("audit log", "sink", "postgres", "store", st.Where(), "host", host, "on_full", cfg.OnFull, "queue", cfg.Queue)
		return alog, nil
	}
	path := c.AuditPath(dir)
	if path == "" {
		log.Warn("audit log is off (audit.path: off)")
		return nil, nil
	}
	alog, err := audit.Open(path, audit.Options{
		Queue:  cfg.Queue,
		OnFull: audit.OnFull(cfg.OnFull),
		Sync:   cfg.Sync,
		Logger: log.With("component", "audit", "path", path),
	})
	if err != nil {
		return nil, withHint(fmt.Errorf("failed to open the audit log: %w", err), "set audit.path in the config to a writable file, or \"-\" for stdout")
	}
	log.Info("audit log", "path", path, "on_full", cfg.OnFull, "queue", cfg.Queue, "sync", cfg.Sync)
	return alog, nil
}

// auditHost names this gateway in a shared audit table: audit.host, else
// the machine's host name.
func auditHost(cfg config.Audit) string {
	if cfg.Host != "" {
		return cfg.Host
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return "unknown-host"
}

// reloadOnHUP reloads certificates and config, and reopens the audit log
// (after logrotate moved it), on SIGHUP.
func reloadOnHUP(ctx context.Context, g *gateway.Gateway, alog *audit.Log, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			// The audit log first: requests served with the reloaded
			// config are recorded in the new file.
			if alog != nil {
				if err := alog.Reopen(); err != nil {
					log.Error("failed to reopen the audit log", "err", err)
				}
			}
			g.Reload() // logs failures and keeps the old state
		}
	}
}
