package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
)

func newIssueCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "issue",
		Short: "Issue a server or client certificate",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newIssueServerCmd(a), newIssueClientCmd(a))
	return cmd
}

// issueOptions are the flags shared by `issue server` and `issue client`.
type issueOptions struct {
	days           int
	keyType        string
	out            string
	passphraseFile string
	sans, groups   []string
}

func addIssueFlags(cmd *cobra.Command, opts *issueOptions, kind pki.Kind) {
	f := cmd.Flags()
	f.IntVar(&opts.days, "days", int(pki.DefaultValidity(kind)/(24*time.Hour)), "validity in days")
	f.StringVar(&opts.keyType, "key-type", string(pki.DefaultKeyType), keyTypeFlagHelp)
	f.StringVar(&opts.out, "out", "", "also write ca.pem, cert.pem and key.pem to this directory (Docker's DOCKER_CERT_PATH layout)")
	f.StringVar(&opts.passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
}

func newIssueServerCmd(a *app) *cobra.Command {
	var opts issueOptions
	cmd := &cobra.Command{
		Use:   "server NAME",
		Short: "Issue a server certificate (serverAuth) for dockerd or the gateway",
		Long: `Issue a server certificate, good for TLS server authentication only.

Clients check the address they dial against the certificate's subject
alternative names. Without --san, the certificate names this host: its host
name, FQDN, interface addresses, localhost, 127.0.0.1 and ::1.`,
		Example: `  dockgate issue server dock1
  dockgate issue server dock1 --san dock1.example.net --san 192.0.2.10 --out /etc/docker/tls`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runIssue(cmd.Context(), pki.KindServer, args[0], opts)
		},
	}
	addIssueFlags(cmd, &opts, pki.KindServer)
	cmd.Flags().StringArrayVar(&opts.sans, "san", nil, "DNS name or IP address the server is reached by (repeatable)")
	return cmd
}

func newIssueClientCmd(a *app) *cobra.Command {
	var opts issueOptions
	cmd := &cobra.Command{
		Use:   "client NAME",
		Short: "Issue a client certificate (clientAuth) for a user or machine",
		Long: `Issue a client certificate, good for TLS client authentication only, with
CN=NAME and the groups in the subject's Organization.`,
		Example: `  dockgate issue client alice --group dev
  dockgate issue client ci --group deploy --days 7 --out ./ci-certs`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runIssue(cmd.Context(), pki.KindClient, args[0], opts)
		},
	}
	addIssueFlags(cmd, &opts, pki.KindClient)
	cmd.Flags().StringArrayVar(&opts.groups, "group", nil, "group the client belongs to, for the gateway's policy (repeatable)")
	return cmd
}

func (a *app) runIssue(ctx context.Context, kind pki.Kind, name string, opts issueOptions) error {
	req, err := a.issueRequest(ctx, kind, name, opts)
	if err != nil {
		return err
	}
	if err := checkOutDirFree(opts.out); err != nil {
		return err
	}
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	auth, err := a.loadAuthority(st, opts.passphraseFile)
	if err != nil {
		return err
	}
	is, err := auth.Issue(ctx, req)
	if err != nil {
		return issueError(err, kind, name)
	}
	if err := writeOut(opts.out, is); err != nil {
		return err
	}
	a.printIssued(is, opts.out)
	return nil
}

// issueRequest validates the arguments and flags before anything touches
// the state directory or asks for a passphrase.
func (a *app) issueRequest(ctx context.Context, kind pki.Kind, name string, opts issueOptions) (authority.Request, error) {
	if err := authority.ValidateName(name); err != nil {
		return authority.Request{}, nameError(err)
	}
	validity, err := daysFlag("days", opts.days)
	if err != nil {
		return authority.Request{}, err
	}
	kt, err := keyTypeFlag(opts.keyType)
	if err != nil {
		return authority.Request{}, err
	}
	req := authority.Request{Kind: kind, Name: name, Validity: validity, KeyType: kt}
	if kind == pki.KindClient {
		req.Groups, err = checkGroups(opts.groups)
		return req, err
	}
	req.SANs, err = a.serverSANs(ctx, opts.sans)
	return req, err
}

// serverSANs checks the --san values, or discovers this host's names when
// there are none.
func (a *app) serverSANs(ctx context.Context, sans []string) ([]string, error) {
	if len(sans) == 0 {
		sans = authority.DefaultSANs(ctx)
		fmt.Fprintf(a.stderr, "dockgate: no --san given; the certificate names this host: %s\n", strings.Join(sans, ", "))
		return sans, nil
	}
	_, ips, err := pki.ParseSANs(sans)
	if err != nil {
		return nil, withHint(&usageError{err: err}, "--san takes one bare DNS name or IP address; repeat it for more")
	}
	for _, ip := range ips {
		if ip.IsUnspecified() {
			return nil, withHint(usageErrorf("--san %s: %s means \"every interface\" to a server, not an address a client can dial, so no client ever checks it", ip, ip),
				"give the names and addresses clients use (--san dock1.example.net --san 192.0.2.10), or no --san for this host's")
		}
	}
	return sans, nil
}

// maxGroupLength is ub-organization-name from RFC 5280 appendix A: groups
// travel in the subject's Organization attribute.
const maxGroupLength = 64

func checkGroups(groups []string) ([]string, error) {
	for _, g := range groups {
		if g == "" || len(g) > maxGroupLength {
			return nil, usageErrorf("--group %q must be 1 to %d characters", g, maxGroupLength)
		}
	}
	return groups, nil
}

// checkOutDirFree refuses an --out directory that already holds a bundle,
// before anything is issued: a certificate must not be recorded whose files
// then cannot be written.
func checkOutDirFree(dir string) error {
	if dir == "" {
		return nil
	}
	for _, name := range []string{authority.BundleCAFile, authority.BundleCertFile, authority.BundleKeyFile} {
		p := dir + string(os.PathSeparator) + name
		if _, err := os.Lstat(p); err == nil {
			return withHint(fmt.Errorf("%s already exists", p), "choose an empty --out directory, or move the old files away")
		}
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return withHint(fmt.Errorf("--out %s is not a directory", dir), "give a directory; it is created if missing")
	}
	return nil
}

func writeOut(dir string, is *authority.Issued) error {
	if dir == "" {
		return nil
	}
	if err := authority.WriteBundle(dir, is, false); err != nil {
		return withHint(fmt.Errorf("issued %s %q, but %w", is.Kind, is.Name, err),
			"the certificate and key are in %s; copy them from there", is.Dir)
	}
	return nil
}

func issueError(err error, kind pki.Kind, name string) error {
	if errors.Is(err, authority.ErrNameInUse) {
		return withHint(err, "run 'dockgate renew %s' for a new certificate, or 'dockgate revoke %s' first", name, name)
	}
	return err
}

func (a *app) printIssued(is *authority.Issued, out string) {
	w := a.stdout
	fmt.Fprintf(w, "Issued %s certificate %q\n", is.Kind, is.Name)
	fmt.Fprintf(w, "  serial:   %s\n", pki.SerialHex(is.Cert.SerialNumber))
	fmt.Fprintf(w, "  expires:  %s\n", is.Cert.NotAfter.UTC().Format(time.RFC3339))
	if is.Kind == pki.KindServer {
		fmt.Fprintf(w, "  SANs:     %s\n", strings.Join(sanList(is), ", "))
	} else {
		fmt.Fprintf(w, "  groups:   %s\n", orNone(is.Cert.Subject.Organization))
	}
	fmt.Fprintf(w, "  files:    %s\n", is.Dir)
	if out != "" {
		fmt.Fprintf(w, "  copy:     %s (DOCKER_CERT_PATH=%s)\n", out, out)
	}
}

func sanList(is *authority.Issued) []string {
	sans := append([]string(nil), is.Cert.DNSNames...)
	for _, ip := range is.Cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	return sans
}

func orNone(values []string) string {
	if len(values) == 0 {
		return "(none)"
	}
	return strings.Join(values, ", ")
}

// exactArgs is cobra.ExactArgs with a message naming the missing argument.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return withHint(usageErrorf("%s takes %s (got %d arguments)", cmd.CommandPath(), names, len(args)),
				"see '%s --help'", cmd.CommandPath())
		}
		return nil
	}
}

func nameError(err error) error {
	return withHint(&usageError{err: err}, "names become directory names, like alice, ci-runner or dock1.example.net")
}
