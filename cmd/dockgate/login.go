package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
)

const hintNewToken = "ask the gateway's admin for a new token ('dockgate token create NAME' on the gateway)"

type loginFlags struct {
	context string
	use     bool
	force   bool
}

func newLoginCmd(a *app) *cobra.Command {
	var f loginFlags
	cmd := &cobra.Command{
		Use:   "login TOKEN",
		Short: "Enroll this machine with a token and write a docker context",
		Long: `login trades a one-time token for a client certificate and writes a docker
context for the gateway (the same files 'docker context create' writes).

The private key is made here and never leaves this machine. Before the token's
secret is sent, the gateway's CA is checked against the fingerprint in the
token; a mismatch stops everything (a wrong token, or an interception).`,
		Example: `  dockgate login dgt1.AbC...
  dockgate login "$TOKEN" --context prod --use
  docker gate login dgt1.AbC...`,
		Args: exactArgs(1, "TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runLogin(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.context, "context", "", "name of the docker context to write (default: the token's name)")
	fl.BoolVar(&f.use, "use", false, "make it the docker CLI's current context")
	fl.BoolVar(&f.force, "force", false, "replace an existing context of that name")
	return cmd
}

func (a *app) runLogin(ctx context.Context, raw string, f loginFlags) error {
	tok, err := enroll.ParseToken(raw)
	if err != nil {
		return withHint(&usageError{err: err}, "copy the whole token, starting with %q; or %s", enroll.TokenPrefix, hintNewToken)
	}
	name := f.context
	if name == "" {
		name = tok.Name
	}
	configDir, err := a.checkContextFree(name, f.force)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "Enrolling as %q with the gateway at %s\n", tok.Name, strings.Join(tok.Addresses, ", "))
	creds, err := enroll.Login(ctx, tok, enroll.LoginOptions{
		Progress: func(format string, args ...any) { fmt.Fprintf(a.stderr, "  "+format+"\n", args...) },
	})
	if err != nil {
		return loginError(err)
	}
	if err := writeCredentials(configDir, name, creds); err != nil {
		return err
	}
	if f.use {
		if err := dockerconf.UseContext(configDir, name); err != nil {
			return err
		}
	}
	a.printLoggedIn(name, creds, f.use)
	return nil
}

// checkContextFree refuses an existing context before the token is spent.
func (a *app) checkContextFree(name string, force bool) (string, error) {
	if err := dockerconf.ValidateContextName(name); err != nil {
		return "", &usageError{err: err}
	}
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return "", err
	}
	exists, err := dockerconf.ContextExists(configDir, name)
	if err != nil {
		return "", err
	}
	if exists && !force {
		return "", withHint(fmt.Errorf("docker context %q already exists", name),
			"pick another with --context NAME, or replace it with --force")
	}
	return configDir, nil
}

// writeCredentials writes (or replaces) the context with creds. Whether it
// may be replaced was settled before the token was spent; refusing now
// would throw the new certificate away.
func writeCredentials(configDir, name string, creds *enroll.Credentials) error {
	return dockerconf.WriteContext(configDir, dockerconf.Context{
		Name:        name,
		Description: fmt.Sprintf("dockgate: %s at %s", creds.Name, strings.TrimPrefix(creds.Host, "tcp://")),
		Host:        creds.Host,
		CA:          creds.CAPEM, Cert: creds.CertPEM, Key: creds.KeyPEM,
	}, true)
}

func loginError(err error) error {
	switch {
	case errors.Is(err, enroll.ErrCAMismatch):
		return withHint(err, "check with the gateway's admin that this is their token: 'dockgate init' printed the CA's SPKI SHA-256")
	case errors.Is(err, enroll.ErrTokenUsed), errors.Is(err, enroll.ErrTokenExpired),
		errors.Is(err, enroll.ErrTokenRevoked), errors.Is(err, enroll.ErrUnknownToken):
		return withHint(err, hintNewToken)
	case errors.Is(err, enroll.ErrRateLimited):
		return withHint(err, "wait, then try again with a correct token")
	}
	return withHint(err, "check that 'dockgate serve' runs on the gateway and its enrollment port is reachable from here")
}

func (a *app) printLoggedIn(name string, creds *enroll.Credentials, used bool) {
	c := creds.Cert
	groups := "no groups"
	if len(c.Subject.Organization) > 0 {
		groups = "groups " + strings.Join(c.Subject.Organization, ", ")
	}
	fmt.Fprintf(a.stdout, "Logged in as %q (%s) at %s\n", creds.Name, groups, creds.Host)
	fmt.Fprintf(a.stdout, "  certificate: serial %s, valid until %s\n", pki.SerialHex(c.SerialNumber), c.NotAfter.Local().Format(time.DateTime))
	fmt.Fprintf(a.stdout, "  docker context %q written\n", name)
	fmt.Fprintf(a.stdout, "Keep it renewed:  dockgate renew --context %s --watch\n", name)
	if used {
		fmt.Fprintf(a.stdout, "Next:  docker ps\n")
		return
	}
	fmt.Fprintf(a.stdout, "Next:  docker --context %s ps\n", name)
}
