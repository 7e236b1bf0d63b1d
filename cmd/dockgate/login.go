package main

import (
	"context"
	"crypto/sha256"
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
	context       string
	use           bool
	useGiven      bool // --use or --use=false was given
	force         bool
	contextPrefix string
	useHost       string
	refresh       bool
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
  dockgate login "$TOKEN" --use=false   # write the context, keep the current one
  docker gate login dgt1.AbC...`,
		Args: func(cmd *cobra.Command, args []string) error {
			if f.refresh {
				return exactArgs(0, "no TOKEN with --refresh")(cmd, args)
			}
			return exactArgs(1, "TOKEN")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			f.useGiven = cmd.Flags().Changed("use")
			if f.refresh {
				return a.runLoginRefresh(cmd.Context(), f)
			}
			return a.runLogin(cmd.Context(), args[0], f)
		},
	}
	cmd.Long += `

The context is named after the token. Logging in again with a new token for
the same gateway (a re-enrollment) replaces that context; a context of the
same name for anything else is kept unless --force. Without --use, the new
context becomes the current one only while none is chosen (the docker CLI
uses "default").

When the gateway belongs to a fleet (several gateways on one store) and more
than one of its hosts lets this client in, login writes one context per such
host, named after the host (--context-prefix P: P<host>), all with the one
certificate and pinned to the CA; the context of the host it enrolled at
becomes current (--use-host NAME picks another). --context NAME writes one
context, as for a single host. 'dockgate login --refresh' adds the contexts
of hosts that joined later, using the certificate of the current context (or
--context NAME), and updates the others after a renewal.`
	cmd.Example += `
  dockgate login "$TOKEN" --context-prefix corp-   # corp-dock1, corp-dock2, ...
  dockgate login --refresh                          # hosts that joined since`
	fl := cmd.Flags()
	fl.StringVar(&f.context, "context", "", "name of the docker context to write (default: the token's name)")
	fl.BoolVar(&f.use, "use", false, `make it the docker CLI's current context (default: when the current one is "default")`)
	fl.BoolVar(&f.force, "force", false, "replace an existing context of that name")
	fl.StringVar(&f.contextPrefix, "context-prefix", "", "with several hosts, name each context PREFIX<host>")
	fl.StringVar(&f.useHost, "use-host", "", "with several hosts, make this host's context the current one (default: the host enrolled at)")
	fl.BoolVar(&f.refresh, "refresh", false, "with an existing context's certificate, write the contexts of every host it may use (no token)")
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
	configDir, replaces, err := a.checkContextFree(name, tok, f.force)
	if err != nil {
		return err
	}
	use := f.use
	if !f.useGiven {
		use = noContextChosen(configDir)
	}
	fmt.Fprintf(a.stderr, "Enrolling as %q with the gateway at %s\n", tok.Name, strings.Join(tok.Addresses, ", "))
	creds, err := enroll.Login(ctx, tok, enroll.LoginOptions{
		Progress: func(format string, args ...any) { fmt.Fprintf(a.stderr, "  "+format+"\n", args...) },
	})
	if err != nil {
		return loginError(err)
	}
	answer := a.listFleet(ctx, creds)
	if answer != nil && len(answer.Hosts) > 1 && f.context == "" {
		return a.writeFleet(fleetLogin{configDir: configDir, creds: creds, prefix: f.contextPrefix,
			useHost: f.useHost, use: use || f.useHost != "", force: f.force}, answer)
	}
	if answer != nil && len(answer.Hosts) == 1 {
		// One host lets this client in: the context goes there, even
		// when the client enrolled through another.
		if h := answer.Hosts[0]; h.Name != answer.Self && len(h.Addresses) > 0 {
			creds.Host = "tcp://" + h.Addresses[0]
		}
	}
	if err := writeCredentials(configDir, name, creds); err != nil {
		return err
	}
	if use {
		if err := dockerconf.UseContext(configDir, name); err != nil {
			return err
		}
	}
	a.printLoggedIn(name, creds, use, replaces)
	return nil
}

// noContextChosen reports whether the docker CLI uses its "default"
// context because nobody chose another: then the new context may be made
// current without taking anything away.
func noContextChosen(configDir string) bool {
	cur, err := dockerconf.CurrentContext(configDir)
	return err == nil && (cur == "" || cur == dockerconf.DefaultContextName)
}

// checkContextFree refuses an existing context before the token is spent,
// unless it is the same client's at the same gateway (its CA is the
// token's, its certificate has the token's name): that is a re-enrollment,
// and replaces reports it.
func (a *app) checkContextFree(name string, tok enroll.Token, force bool) (configDir string, replaces bool, err error) {
	if err := dockerconf.ValidateContextName(name); err != nil {
		return "", false, &usageError{err: err}
	}
	if configDir, err = dockerconf.ConfigDir(a.getenv); err != nil {
		return "", false, err
	}
	old, err := dockerconf.ReadContext(configDir, name)
	switch {
	case errors.Is(err, dockerconf.ErrContextNotFound):
		return configDir, false, nil
	case err != nil && !force:
		return "", false, err
	case force || reEnrollment(old, tok):
		return configDir, true, nil
	}
	return "", false, withHint(fmt.Errorf("docker context %q already exists", name),
		"pick another with --context NAME, or replace it with --force")
}

// reEnrollment reports whether the context c is the token's client at the
// token's gateway: its CA is the pinned one and its certificate is named
// after the token (NAME, or NAME-2, NAME-3, ... for further machines).
func reEnrollment(c dockerconf.Context, tok enroll.Token) bool {
	ca, err := pki.ParseCertPEM(c.CA)
	if err != nil || sha256.Sum256(ca.RawSubjectPublicKeyInfo) != tok.CAPin {
		return false
	}
	cert, err := pki.ParseCertPEM(c.Cert)
	if err != nil {
		return false
	}
	cn := cert.Subject.CommonName
	suffix, numbered := strings.CutPrefix(cn, tok.Name+"-")
	return cn == tok.Name || numbered && suffix != "" && strings.Trim(suffix, "0123456789") == ""
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
	return withHint(err, "check that the gateway runs with its CA passphrase (without it, enrollment is off: "+
		"'dockgate up', or 'dockgate serve --passphrase-file FILE') and that its enrollment port is reachable from here")
}

func (a *app) printLoggedIn(name string, creds *enroll.Credentials, used, replaced bool) {
	c := creds.Cert
	groups := "no groups"
	if len(c.Subject.Organization) > 0 {
		groups = "groups " + strings.Join(c.Subject.Organization, ", ")
	}
	fmt.Fprintf(a.stdout, "Logged in as %q (%s) at %s\n", creds.Name, groups, creds.Host)
	fmt.Fprintf(a.stdout, "  certificate: serial %s, valid until %s\n", pki.SerialHex(c.SerialNumber), c.NotAfter.Local().Format(time.DateTime))
	written := "written"
	if replaced {
		written = "replaced"
	}
	if used {
		written += ", now the current context"
	}
	fmt.Fprintf(a.stdout, "  docker context %q %s\n", name, written)
	fmt.Fprintf(a.stdout, "Keep it renewed:  dockgate renew --context %s --install   (a service; or --watch in a terminal)\n", name)
	if used {
		fmt.Fprintf(a.stdout, "Next:  docker ps\n")
		return
	}
	fmt.Fprintf(a.stdout, "Next:  docker --context %s ps\n", name)
}
