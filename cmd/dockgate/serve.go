package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/audit"
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
	enroll      enrollFlags // enroll_wiring.go
}

func (f *serveFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "YAML config file (env DOCKGATE_CONFIG)")
	fl.StringVar(&f.listen, "listen", "", "address for Docker clients (default :2376)")
	fl.StringVar(&f.adminListen, "admin-listen", "", `address for /metrics, /healthz, /readyz, or "off" (default 127.0.0.1:2378)`)
	fl.StringVar(&f.upstream, "upstream", "", "Docker daemon: unix:///PATH or tcp://HOST:PORT (default unix:///var/run/docker.sock)")
	fl.StringVar(&f.serverCert, "server-cert", "", `name of the server certificate in the state dir (default "gateway")`)
}

func newServeCmd(a *app) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the mTLS gateway in front of the Docker socket",
		Long: `serve runs the gateway: mutual TLS on :2376 in front of the Docker API.
Every client needs a certificate from this CA and a matching clients: entry.
SIGHUP (or a change of the certificate or config files) reloads; SIGTERM drains.`,
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
	cfg.ApplyEnv(a.getenv)
	setIf(&cfg.Listen, f.listen)
	setIf(&cfg.AdminListen, f.adminListen)
	setIf(&cfg.Upstream.URL, f.upstream)
	setIf(&cfg.ServerCert, f.serverCert)
	setIf(&cfg.Enroll.Listen, f.enroll.listen)
	if err := cfg.Validate(); err != nil {
		return nil, withHint(fmt.Errorf("invalid config: %w", err), "fix the fields named above")
	}
	return &cfg, nil
}

func setIf(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func (a *app) serve(ctx context.Context, f *serveFlags) error {
	cfg, err := a.loadConfig(f)
	if err != nil {
		return err
	}
	return a.runGateway(ctx, cfg, f)
}

// runGateway serves until SIGTERM or SIGINT, reloading on SIGHUP.
func (a *app) runGateway(ctx context.Context, cfg *config.Config, f *serveFlags) error {
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	defer st.Close()
	src := a.materialSource(f, cfg.ServerCert, st)
	if _, err := os.Stat(src.CACert); errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("no CA in %s", dir), "run 'dockgate init' (or 'dockgate up', which does everything)")
	}
	if _, err := os.Stat(src.ServerCert); errors.Is(err, fs.ErrNotExist) {
		return withHint(fmt.Errorf("no server certificate %q in %s", cfg.ServerCert, dir),
			"run 'dockgate issue server %s' or pass --server-cert NAME", cfg.ServerCert)
	}
	log := newLogger(a.stderr, cfg.Log.Format, cfg.Log.Level)
	watch := src.Files()
	if path := a.configFile(f); path != "" {
		watch = append(watch, path)
	}
	alog, err := openAudit(cfg.AuditPath(dir), cfg.Audit, log)
	if err != nil {
		return err
	}
	if alog != nil {
		defer alog.Close()
	}
	enr := a.prepareEnrollment(cfg, st, &f.enroll, log)
	g, err := gateway.New(gateway.Options{
		Load:       src.Load,
		Revoked:    st.RevokedSerials,
		WatchFiles: watch,
		Logger:     log,
		Local:      enr.local(),
		Audit:      alog,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	go reloadOnHUP(ctx, g, alog, log)
	enr.start(ctx, g)
	return g.Serve(ctx)
}

// materialSource names the files the gateway loads and reloads; the config
// is re-read (file, env, flags) at each reload.
func (a *app) materialSource(f *serveFlags, serverCert string, st *store.Store) gateway.FileSource {
	serverDir := st.Path("servers", serverCert)
	return gateway.FileSource{
		CACert:     st.Path("ca", "ca.pem"),
		ServerCert: filepath.Join(serverDir, "cert.pem"),
		ServerKey:  filepath.Join(serverDir, "key.pem"),
		Config:     func() (*config.Config, error) { return a.loadConfig(f) },
	}
}

// openAudit opens the audit log; "" (audit: {path: off}) means none.
// Lost records are logged by the log itself, at most every ten seconds.
func openAudit(path string, cfg config.Audit, log *slog.Logger) (*audit.Log, error) {
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
