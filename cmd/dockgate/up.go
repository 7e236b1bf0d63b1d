package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// What `up` creates when it is missing.
const (
	upClientName  = "admin"
	upContextName = "dockgate"
)

type upFlags struct {
	serve                serveFlags
	passphraseFile       string
	insecureNoPassphrase bool
	passphrase           []byte // for a new CA, read once
}

func newUpCmd(a *app) *cobra.Command {
	var f upFlags
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Set everything up on embedded defaults and run the gateway",
		Long: `up is the one-command main job. Whatever is missing it creates, then it serves:
  - the CA (passphrase as for 'dockgate init'),
  - a server certificate for this host (the config's server_cert, "gateway"),
  - a client certificate "admin" in group "admins",
  - a docker context "dockgate" that uses it (rewritten when the address
    or the admin certificate changed).
Running it again reuses everything. up always serves enrollment, so on every
run it needs the CA passphrase: --passphrase-file, $DOCKGATE_CA_PASSPHRASE,
or the terminal. It binds its ports first: a port in use stops it before
anything is written.

With --join TOKEN (a host token from 'dockgate token create NAME --host')
and --store URL, up joins this host to a fleet instead: it makes no CA, no
admin certificate and no context, gets its server certificate and the CA
certificate from a gateway that signs, and serves (as 'serve --join').`,
		Example: `  dockgate up
  docker --context dockgate ps
  dockgate up --store postgres://dockgate@db.example.net/dockgate --join dgt1.…   # a new host of a fleet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runUp(cmd.Context(), &f)
		},
	}
	f.serve.register(cmd)
	f.serve.enroll.registerListen(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
	fl.BoolVar(&f.insecureNoPassphrase, "insecure-no-passphrase", false, "when creating the CA, store its key unencrypted")
	return cmd
}

func (a *app) runUp(ctx context.Context, f *upFlags) error {
	if f.insecureNoPassphrase && f.passphraseFile != "" {
		return usageErrorf("--insecure-no-passphrase and --passphrase-file contradict each other")
	}
	if f.serve.join.token != "" {
		return a.runUpJoin(ctx, f)
	}
	cfg, err := a.loadConfig(&f.serve)
	if err != nil {
		return err
	}
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	if !caFilesExist(dir) {
		// Asked before the state directory exists, so a refusal leaves nothing.
		if err := a.checkUpPassphrase(f); err != nil {
			return err
		}
	} else if err := a.unlockUpCA(dir, cfg, f); err != nil {
		return err
	}
	// Bound before anything is written: a port in use stops up with
	// nothing created, and "Ready" is printed only once clients can connect.
	ls, err := bindGateway(cfg)
	if err != nil {
		return err
	}
	host, err := a.prepareUp(ctx, f, cfg, dir, ls)
	if err != nil {
		ls.close()
		return err
	}
	f.serve.enroll = enrollFlags{passphraseFile: f.passphraseFile, passphrase: f.passphrase, listen: f.serve.enroll.listen}
	return a.runGateway(ctx, cfg, &f.serve, ls, func(ctx context.Context, log *slog.Logger, auth *authority.Authority) {
		fmt.Fprintf(a.stdout, "\nReady: the gateway listens on %s. From this machine, run:\n  docker --context %s ps\n\n", host, upContextName)
		if auth != nil {
			go a.keepAdminRenewed(ctx, auth, dir, host, log.With("component", "up"))
		}
	})
}

// runUpJoin is up on a host joining a fleet: no CA, no admin certificate
// and no context are made here (the CA key stays with the gateways that
// sign); the host gets its server certificate with the token and serves.
func (a *app) runUpJoin(ctx context.Context, f *upFlags) error {
	if f.insecureNoPassphrase {
		return usageErrorf("--insecure-no-passphrase and --join contradict each other: a joining host makes no CA")
	}
	if err := a.parseJoin(&f.serve); err != nil {
		return err
	}
	cfg, err := a.loadConfig(&f.serve)
	if err != nil {
		return err
	}
	f.serve.enroll = enrollFlags{passphraseFile: f.passphraseFile, listen: f.serve.enroll.listen}
	return a.runGateway(ctx, cfg, &f.serve, nil, func(context.Context, *slog.Logger, *authority.Authority) {
		fmt.Fprintf(a.stdout, "\nReady: host %q serves on %s with the fleet's inventory. Clients log in on a gateway that signs; 'dockgate login' writes a context for this host too.\n\n",
			cfg.Host.Name, cfg.Listen)
	})
}

// keepAdminRenewed renews up's admin certificate at two thirds of its
// lifetime while up serves, and rewrites the context "dockgate" with it,
// so the context up printed keeps working without anyone running renew.
func (a *app) keepAdminRenewed(ctx context.Context, auth *authority.Authority, dir, host string, log *slog.Logger) {
	cert, err := readCertFile(filepath.Join(authority.BundleDir(dir, pki.KindClient, upClientName), authority.BundleCertFile))
	if err != nil {
		log.Error("the admin certificate will not be renewed", "err", err)
		return
	}
	w := &enroll.Watcher{
		Renew: a.upAdminRenewal(auth, dir, host),
		Logf:  func(format string, args ...any) { log.Info("admin certificate: " + fmt.Sprintf(format, args...)) },
	}
	if err := w.Run(ctx, cert); err != nil {
		log.Error("admin certificate renewal stopped", "err", err)
	}
}

// upAdminRenewal renews the admin certificate in the state directory and
// points up's context at the new one.
func (a *app) upAdminRenewal(auth *authority.Authority, dir, host string) func(context.Context) (*x509.Certificate, error) {
	return func(ctx context.Context) (*x509.Certificate, error) {
		// The old certificate stays valid for the overlap, so that what runs
		// on it (a logs -f, an exec) can finish.
		is, err := auth.Renew(ctx, upClientName, authority.RenewOverlap, time.Now())
		if err != nil {
			return nil, err
		}
		if err := a.ensureUpContext(dir, host); err != nil {
			return nil, err
		}
		return is.Cert, nil
	}
}

// prepareUp creates what is missing (CA, certificates, context) and
// returns the address the context dials.
func (a *app) prepareUp(ctx context.Context, f *upFlags, cfg *config.Config, dir string, ls *gatewayListeners) (string, error) {
	st, err := a.openStore(dir, cfg)
	if err != nil {
		return "", err
	}
	defer st.Close()
	auth, err := a.ensureCA(st, f)
	if err != nil {
		return "", err
	}
	unlock := func() (*authority.Authority, error) {
		if auth == nil {
			if auth, err = authority.Load(st, f.passphrase); err != nil {
				return nil, caFileError(err, st)
			}
		}
		return auth, nil
	}
	if err := a.ensureUpCerts(ctx, st, cfg, unlock); err != nil {
		return "", err
	}
	host := "tcp://" + localAddress(ls.api.Addr().String())
	return host, a.ensureUpContext(dir, host)
}

// checkUpPassphrase reads the passphrase for a new CA up front.
func (a *app) checkUpPassphrase(f *upFlags) error {
	if f.insecureNoPassphrase {
		return nil
	}
	p, err := readPassphrase(a.passphraseSource(f.passphraseFile), true)
	if err != nil {
		return initPassphraseError(err)
	}
	f.passphrase = p
	return nil
}

// unlockUpCA reads the passphrase of an existing encrypted CA and checks
// it, before anything else happens. up serves enrollment and renewal, which
// sign with the CA key: without the passphrase they would be off and every
// token useless, so up asks (or stops) instead of carrying on without.
func (a *app) unlockUpCA(dir string, cfg *config.Config, f *upFlags) error {
	st, err := a.openStore(dir, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	encrypted, err := authority.KeyIsEncrypted(st)
	if err != nil || !encrypted {
		return err
	}
	p, err := readPassphrase(a.passphraseSource(f.passphraseFile), false)
	if errors.Is(err, errNoPassphrase) {
		return withHint(errNoPassphrase, "up serves enrollment, which signs with the CA key: %s; "+
			"or run 'dockgate serve' to serve without enrollment", passphraseSourcesHint)
	}
	if err != nil {
		return err
	}
	if _, err := authority.Load(st, p); err != nil {
		return caFileError(err, st)
	}
	f.passphrase = p
	return nil
}

// ensureCA creates the CA when there is none. It returns the unlocked CA
// when it made one, so the passphrase is asked for only once.
func (a *app) ensureCA(st *store.Store, f *upFlags) (*authority.Authority, error) {
	if caFilesExist(st.Dir()) {
		return nil, nil
	}
	auth, err := authority.Init(st, authority.InitOptions{CN: authority.DefaultCN(), Passphrase: f.passphrase})
	if err != nil {
		return nil, err
	}
	if f.insecureNoPassphrase {
		fmt.Fprintln(a.stderr, "dockgate: warning: the CA key is stored UNENCRYPTED: anyone who can read it can issue certificates")
	}
	a.printCA(auth.Cert(), st, f.passphrase != nil)
	return auth, nil
}

// ensureUpCerts issues the server certificate and the admin client
// certificate when they are missing.
func (a *app) ensureUpCerts(ctx context.Context, st *store.Store, cfg *config.Config, unlock func() (*authority.Authority, error)) error {
	wanted := []authority.Request{
		{Kind: pki.KindServer, Name: cfg.ServerCert, SANs: authority.DefaultSANs(ctx)},
		{Kind: pki.KindClient, Name: upClientName, Groups: []string{config.DefaultAdminGroup}},
	}
	for _, req := range wanted {
		if bundleExists(st.Dir(), req.Kind, req.Name) {
			continue
		}
		auth, err := unlock()
		if err != nil {
			return err
		}
		is, err := auth.Issue(ctx, req)
		if err != nil {
			return issueError(err, req.Kind, req.Name)
		}
		a.printIssued(is, "")
	}
	return nil
}

func bundleExists(stateDir string, kind pki.Kind, name string) bool {
	_, err := os.Stat(filepath.Join(authority.BundleDir(stateDir, kind, name), authority.BundleCertFile))
	return err == nil
}

// ensureUpContext writes the docker context "dockgate" for the admin
// client, and rewrites it when it no longer matches: another address
// (--listen changed), another CA or a renewed admin certificate. The
// context is up's own; a stale one would send the next command to an old
// address, or to another gateway.
func (a *app) ensureUpContext(stateDir, host string) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	files := dockerconf.FilesIn(authority.BundleDir(stateDir, pki.KindClient, upClientName))
	ca, cert, key, err := files.Load()
	if err != nil {
		return err
	}
	want := dockerconf.Context{Name: upContextName, Description: "dockgate gateway on this host (client admin)", Host: host, CA: ca, Cert: cert, Key: key}
	old, err := dockerconf.ReadContext(configDir, upContextName)
	switch {
	case errors.Is(err, dockerconf.ErrContextNotFound):
	case err != nil:
		return err
	case sameEndpoint(old, want):
		return nil
	}
	if err := dockerconf.WriteContext(configDir, want, true); err != nil {
		return err
	}
	verb := "Created"
	if old.Name != "" {
		verb = "Updated"
	}
	fmt.Fprintf(a.stdout, "%s docker context %q for %s in %s\n", verb, upContextName, host, configDir)
	return nil
}

// sameEndpoint reports whether two contexts dial the same address with
// the same TLS material.
func sameEndpoint(a, b dockerconf.Context) bool {
	return a.Host == b.Host && !a.SkipTLSVerify && bytes.Equal(a.CA, b.CA) && bytes.Equal(a.Cert, b.Cert) && bytes.Equal(a.Key, b.Key)
}

// localAddress is how a client on this host reaches the listen address:
// a wildcard listener is reached on 127.0.0.1, which the server
// certificate carries as an IP SAN.
func localAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
