package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
)

const hintEnrollAgain = "enroll again: get a new token ('dockgate token create NAME' on the gateway), then 'dockgate login TOKEN --context %s --force'"

// withContextRenewal teaches `renew` to renew a docker context's client
// certificate over mutual TLS (--context, --watch), next to renewing a
// certificate in the state directory with the CA key.
func withContextRenewal(a *app, cmd *cobra.Command) *cobra.Command {
	var contextName string
	var watch, install bool
	localArgs, localRun := cmd.Args, cmd.RunE
	cmd.Use = "renew NAME | renew --context CONTEXT [--watch]"
	cmd.Long += `

With --context, renew runs on a client instead: it renews the client
certificate of that docker context over mutual TLS with the gateway, using
the current certificate (which must not have expired or been revoked), and
rewrites the context's files atomically. The key is made here. The gateway
keeps accepting the previous certificate for an hour, so that what is
running on it can finish, and refuses it after that. With --watch it keeps
running and renews at two thirds of each certificate's lifetime. With
--install it installs that watch as a per-user service that starts at
login: a systemd user unit on Linux (enabled and started), a launchd agent
on macOS (loaded); on Windows it prints the schtasks command.`
	cmd.Example += `
  dockgate renew --context prod
  dockgate renew --context prod --watch
  dockgate renew --context prod --install`
	cmd.Args = func(c *cobra.Command, args []string) error {
		if contextName != "" {
			return exactArgs(0, "no NAME with --context")(c, args)
		}
		return localArgs(c, args)
	}
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if contextName == "" {
			if watch || install {
				return usageErrorf("--watch and --install need --context")
			}
			return localRun(c, args)
		}
		for _, local := range []string{"revoke-old", "keep-old", "passphrase-file"} {
			if c.Flags().Changed(local) {
				return usageErrorf("--%s renews in the state directory and does not go with --context", local)
			}
		}
		if install {
			if watch {
				return usageErrorf("--install and --watch contradict each other: the service it installs runs the watch")
			}
			return a.installRenewService(c.Context(), contextName)
		}
		if watch {
			return a.watchContext(c.Context(), contextName)
		}
		_, err := a.renewContext(c.Context(), contextName)
		return err
	}
	cmd.Flags().StringVar(&contextName, "context", "", "renew this docker context's client certificate over mutual TLS with the gateway")
	cmd.Flags().BoolVar(&watch, "watch", false, "with --context: keep renewing at 2/3 of each certificate's lifetime")
	cmd.Flags().BoolVar(&install, "install", false, "with --context: install --watch as a per-user service (systemd, launchd) that starts at login")
	return cmd
}

// renewContext renews once and rewrites the context.
func (a *app) renewContext(ctx context.Context, name string) (*x509.Certificate, error) {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return nil, err
	}
	c, err := dockerconf.ReadContext(configDir, name)
	if err != nil {
		return nil, withHint(err, "list contexts with 'docker context ls'")
	}
	gw, err := enroll.NewGateway(c.Host, c.CA, c.Cert, c.Key)
	if err != nil {
		return nil, withHint(fmt.Errorf("context %q has no usable TLS material: %w", name, err), hintEnrollAgain, name)
	}
	defer gw.Close()
	creds, err := gw.Renew(ctx, time.Now())
	if err != nil {
		return nil, renewError(err, name)
	}
	c.Cert, c.Key = creds.CertPEM, creds.KeyPEM
	if err := dockerconf.WriteContext(configDir, c, true); err != nil {
		return nil, err
	}
	old := gw.Cert.Leaf
	fmt.Fprintf(a.stdout, "Renewed context %q: serial %s -> %s, valid until %s\n", name,
		pki.SerialHex(old.SerialNumber), pki.SerialHex(creds.Cert.SerialNumber), creds.Cert.NotAfter.Local().Format(time.DateTime))
	return creds.Cert, nil
}

func renewError(err error, contextName string) error {
	if errors.Is(err, enroll.ErrCertExpired) || errors.Is(err, enroll.ErrCertRevoked) || errors.Is(err, enroll.ErrCertSuperseded) {
		return withHint(err, hintEnrollAgain, contextName)
	}
	return withHint(err, "check that the gateway is reachable ('dockgate doctor --context %s')", contextName)
}

// watchContext renews the context's certificate for as long as it runs;
// SIGTERM or SIGINT end it cleanly.
func (a *app) watchContext(ctx context.Context, name string) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	c, err := dockerconf.ReadContext(configDir, name)
	if err != nil {
		return withHint(err, "list contexts with 'docker context ls'")
	}
	cert, err := pki.ParseCertPEM(c.Cert)
	if err != nil {
		return withHint(fmt.Errorf("context %q: %w", name, err), hintEnrollAgain, name)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	w := &enroll.Watcher{
		Renew: func(ctx context.Context) (*x509.Certificate, error) { return a.renewContext(ctx, name) },
		Fatal: func(err error) bool {
			return errors.Is(err, enroll.ErrCertExpired) || errors.Is(err, enroll.ErrCertRevoked) || errors.Is(err, enroll.ErrCertSuperseded)
		},
		Logf: func(format string, args ...any) {
			fmt.Fprintf(a.stderr, "%s %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
		},
	}
	if err := w.Run(ctx, cert); err != nil {
		if errors.Is(err, enroll.ErrWatchExpired) {
			return withHint(err, hintEnrollAgain, name)
		}
		return err
	}
	return nil
}
