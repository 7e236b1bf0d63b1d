package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerconf"
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
  - a docker context "dockgate" that uses it.
Running it again reuses everything.`,
		Example: `  dockgate up
  docker --context dockgate ps`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runUp(cmd.Context(), &f)
		},
	}
	f.serve.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
	fl.BoolVar(&f.insecureNoPassphrase, "insecure-no-passphrase", false, "when creating the CA, store its key unencrypted")
	return cmd
}

func (a *app) runUp(ctx context.Context, f *upFlags) error {
	if f.insecureNoPassphrase && f.passphraseFile != "" {
		return usageErrorf("--insecure-no-passphrase and --passphrase-file contradict each other")
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
	}
	st, err := store.Open(dir)
	if err != nil {
		return err
	}
	auth, err := a.ensureCA(st, f)
	if err != nil {
		st.Close()
		return err
	}
	unlock := func() (*authority.Authority, error) {
		if auth == nil {
			auth, err = a.loadAuthority(st, f.passphraseFile)
		}
		return auth, err
	}
	err = a.ensureUpCerts(ctx, st, cfg, unlock)
	st.Close()
	if err != nil {
		return err
	}
	if err := a.ensureUpContext(dir, cfg.Listen); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nReady. From this machine, run:\n  docker --context %s ps\n\n", upContextName)
	f.serve.enroll = enrollFlags{passphraseFile: f.passphraseFile, passphrase: f.passphrase}
	return a.runGateway(ctx, cfg, &f.serve)
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
// client when there is none; an existing one is left as it is.
func (a *app) ensureUpContext(stateDir, listen string) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	exists, err := dockerconf.ContextExists(configDir, upContextName)
	if err != nil || exists {
		return err
	}
	files := dockerconf.FilesIn(authority.BundleDir(stateDir, pki.KindClient, upClientName))
	ca, cert, key, err := files.Load()
	if err != nil {
		return err
	}
	host := "tcp://" + localAddress(listen)
	c := dockerconf.Context{Name: upContextName, Description: "dockgate gateway on this host (client admin)", Host: host, CA: ca, Cert: cert, Key: key}
	if err := dockerconf.WriteContext(configDir, c, false); err != nil && !errors.Is(err, dockerconf.ErrContextExists) {
		return err
	}
	fmt.Fprintf(a.stdout, "Created docker context %q for %s in %s\n", upContextName, host, configDir)
	return nil
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
