package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// enrollFlags are serve's flags for enrollment and renewal, which sign
// with the CA key.
type enrollFlags struct {
	passphraseFile string
	passphrase     []byte // set by `up` when it has just created the CA
	listen         string
}

func (f *enrollFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.passphraseFile, "passphrase-file", "",
		"CA key passphrase (first line of this file; or env "+passphraseEnv+"), for enrollment and renewal")
	f.registerListen(cmd)
}

// registerListen adds --enroll-listen alone, for up, which has its own
// --passphrase-file.
func (f *enrollFlags) registerListen(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.listen, "enroll-listen", "", "address of the enrollment listener (default: the --listen host, port "+config.DefaultEnrollPort+")")
}

// enrollment is what serve runs besides the gateway when it can sign:
// the enrollment listener, the renewal endpoint and the renewal of its own
// server certificate. A nil auth means none of it runs.
type enrollment struct {
	cfg    *config.Config
	st     *store.Store
	auth   *authority.Authority
	server *enroll.Server
	log    *slog.Logger
}

// prepareEnrollment unlocks the CA without asking anyone: serve may run
// unattended. Without a passphrase for an encrypted key it says so once
// and serve goes on without enrollment and renewal.
func (a *app) prepareEnrollment(cfg *config.Config, st *store.Store, f *enrollFlags, log *slog.Logger) *enrollment {
	e := &enrollment{cfg: cfg, st: st, log: log.With("component", "enroll")}
	if _, err := os.Lstat(authority.CAKeyPath(st.Dir())); errors.Is(err, fs.ErrNotExist) {
		e.log.Info("this host has no CA key (it joined the fleet): it serves its clients; enrollment and renewal are on the gateways that hold the key")
		return e
	}
	auth, err := a.unlockForServe(st, f)
	if err != nil {
		e.log.Warn("enrollment and certificate renewal are disabled: "+err.Error(),
			"fix", "pass --passphrase-file FILE or set "+passphraseEnv)
		return e
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	e.auth = auth
	e.server = &enroll.Server{
		Authority:   auth,
		GatewayPort: port,
		Limiter:     enroll.NewLimiter(cfg.Enroll.MaxFailures, cfg.Enroll.FailureWindow),
		Logger:      e.log,
	}
	return e
}

var errNoServePassphrase = errors.New("the CA key is encrypted and no passphrase was given")

func (a *app) unlockForServe(st *store.Store, f *enrollFlags) (*authority.Authority, error) {
	encrypted, err := authority.KeyIsEncrypted(st)
	if err != nil {
		return nil, err
	}
	var passphrase []byte
	if encrypted {
		if passphrase = f.passphrase; passphrase == nil {
			src := a.passphraseSource(f.passphraseFile)
			src.ask = nil // never prompt: serve runs unattended
			if passphrase, err = readPassphrase(src, false); errors.Is(err, errNoPassphrase) {
				return nil, errNoServePassphrase
			} else if err != nil {
				return nil, err
			}
		}
	}
	auth, err := authority.Load(st, passphrase)
	if errors.Is(err, pki.ErrWrongPassphrase) {
		return nil, errors.New("wrong CA passphrase")
	}
	return auth, err
}

// local is the gateway's handler for its own API (renewal), nil when the
// CA cannot sign.
func (e *enrollment) local() http.Handler {
	if e.server == nil {
		return nil
	}
	return e.server.RenewHandler()
}

// start runs the enrollment listener and the server certificate's renewal
// until ctx ends, and returns the enrollment listener's address (nil when
// there is none). A listener that cannot bind is logged and left off: the
// gateway keeps serving the clients it has.
func (e *enrollment) start(ctx context.Context, g *gateway.Gateway) net.Addr {
	if e.auth == nil {
		return nil
	}
	go e.renewServerCert(ctx, g)
	if !e.cfg.Enroll.Enabled {
		e.log.Info("enrollment listener disabled by config (enroll.enabled: false)")
		return nil
	}
	addr := e.cfg.EnrollListen()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		e.log.Error("enrollment is off: failed to listen", "addr", addr, "err", err,
			"fix", "free the port or set enroll.listen / --enroll-listen")
		return nil
	}
	go func() {
		if err := e.server.Serve(ctx, ln, g.ServerCertificate); err != nil {
			e.log.Error("enrollment listener stopped", "err", err)
		}
	}()
	return ln.Addr()
}

// renewServerCert renews the gateway's own certificate at two thirds of
// its lifetime and reloads the gateway with it.
func (e *enrollment) renewServerCert(ctx context.Context, g *gateway.Gateway) {
	name := e.cfg.ServerCert
	certPath := filepath.Join(authority.BundleDir(e.st.Dir(), pki.KindServer, name), authority.BundleCertFile)
	cert, err := readCertFile(certPath)
	if err != nil {
		e.log.Error("the server certificate will not be renewed", "err", err)
		return
	}
	w := &enroll.Watcher{
		Renew: func(ctx context.Context) (*x509.Certificate, error) {
			// No overlap: only client certificates are checked against the
			// inventory, and the gateway reloads the new one at once.
			is, err := e.auth.Renew(ctx, name, 0, time.Now())
			if err != nil {
				return nil, err
			}
			g.Reload() // the file watcher would notice too; this is at once
			return is.Cert, nil
		},
		Logf: func(format string, args ...any) { e.log.Info("server certificate: " + fmt.Sprintf(format, args...)) },
	}
	if err := w.Run(ctx, cert); err != nil {
		e.log.Error("server certificate renewal stopped", "err", err)
	}
}

func readCertFile(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return pki.ParseCertPEM(data)
}
