package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/store"
)

func newTokenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke one-time enrollment tokens",
		Long: `A token lets a new machine get a client certificate without a private key
ever being copied: on that machine, 'dockgate login TOKEN' makes the key,
checks the gateway's CA against the token, and writes a docker context.`,
	}
	cmd.AddCommand(newTokenCreateCmd(a), newTokenLsCmd(a), newTokenRevokeCmd(a))
	return cmd
}

type tokenCreateFlags struct {
	groups     []string
	ttl        time.Duration
	uses       int
	certDays   int
	addresses  []string
	configPath string
	offline    bool
	host       bool
}

func newTokenCreateCmd(a *app) *cobra.Command {
	var f tokenCreateFlags
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a token for a new client; the token alone goes to standard output",
		Long: `create makes a one-time token for a client called NAME. The token is printed
alone on standard output (messages go to standard error), so it can be piped
or captured. The state directory keeps only a hash of its secret.

The token carries the enrollment addresses (by default every name and
address in the gateway's server certificate, with the enrollment port), the
SHA-256 of the CA's public key, and the secret. Certificates it yields are
named NAME (then NAME-2, NAME-3, ... while NAME has a valid certificate).

A token is useless until a gateway that can sign (one given the CA
passphrase) serves enrollment, so create first checks that one answers on
this host's enrollment port, and refuses otherwise; --offline skips that.

With --host the token joins a new host NAME to the fleet instead: on that
host, 'dockgate serve --store URL --join TOKEN' (or 'dockgate up --join')
gets a server certificate named NAME for the host's names and addresses,
and the CA certificate (never its key). A host token is single use, valid
1 hour by default, and yields no client certificate.`,
		Example: `  dockgate token create alice --group admins
  dockgate token create dock2 --host   # then on dock2: dockgate serve --store URL --join TOKEN
  dockgate token create ci --group builders --uses 5 --ttl 1h --cert-days 1
  dockgate token create bob --address dock1.example.net:2386
  dockgate token create carol --offline   # the gateway starts later`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.host {
				if len(f.groups) > 0 || cmd.Flags().Changed("uses") {
					return usageErrorf("--host makes a single-use token for a server certificate: --group and --uses do not apply")
				}
				if !cmd.Flags().Changed("ttl") {
					f.ttl = enroll.DefaultHostTokenTTL
				}
				if !cmd.Flags().Changed("cert-days") {
					f.certDays = enroll.DefaultHostCertDays
				}
			}
			return a.runTokenCreate(cmd.Context(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.groups, "group", nil, "group of the client's certificate (repeatable)")
	fl.DurationVar(&f.ttl, "ttl", enroll.DefaultTokenTTL, "how long the token can be used")
	fl.IntVar(&f.uses, "uses", enroll.DefaultUses, "how many machines may enroll with it")
	fl.IntVar(&f.certDays, "cert-days", enroll.DefaultCertDays, "validity of the certificates it yields, in days")
	fl.StringArrayVar(&f.addresses, "address", nil, "HOST:PORT of the enrollment listener (repeatable; default: the server certificate's names with the enrollment port)")
	fl.StringVar(&f.configPath, "config", "", "gateway config file, for the server certificate and enrollment port (env DOCKGATE_CONFIG)")
	fl.BoolVar(&f.offline, "offline", false, "create the token although no gateway on this host serves enrollment yet")
	fl.BoolVar(&f.host, "host", false, "a host token: joins the host NAME to the fleet ('serve --join'), single use, --ttl 1h and --cert-days 397 by default")
	return cmd
}

func (a *app) runTokenCreate(ctx context.Context, name string, f tokenCreateFlags) error {
	if err := authority.ValidateName(name); err != nil {
		return nameError(err)
	}
	if f.ttl <= 0 || f.uses < 1 || f.certDays < 1 {
		return usageErrorf("--ttl must be positive, and --uses and --cert-days at least 1")
	}
	cfg, err := a.loadConfig(&serveFlags{configPath: f.configPath})
	if err != nil {
		return err
	}
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	ca, err := authority.LoadCert(st)
	if err != nil {
		return caFileError(err, st)
	}
	addrs, err := a.tokenAddresses(st, cfg.ServerCert, cfg.EnrollListen(), f.addresses)
	if err != nil {
		return err
	}
	if !f.offline {
		if err := checkEnrollmentServed(ctx, cfg, ca, addrs); err != nil {
			return err
		}
	}
	tok, err := enroll.CreateToken(ctx, st, enroll.TokenSpec{Name: name, Host: f.host, Groups: f.groups, TTL: f.ttl,
		Uses: f.uses, CertDays: f.certDays, Addresses: addrs, CA: ca})
	if errors.Is(err, store.ErrDuplicateToken) {
		return withHint(fmt.Errorf("a usable token named %q already exists", name), "use it, or 'dockgate token revoke %s' first (a revoked, used or expired token's name is free)", name)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, tok.String())
	a.describeToken(tok, f, cfg.Enroll.Enabled)
	a.noteNameInUse(ctx, st, name, f.host)
	return nil
}

// enrollCheckTimeout bounds the check that a gateway serves enrollment; a
// loopback answer takes milliseconds.
const enrollCheckTimeout = 5 * time.Second

// checkEnrollmentServed makes sure a gateway on this host can sign for the
// token: its enrollment listener answers with this CA.
// With an ephemeral enrollment port (0) it checks the token's first
// address instead.
func checkEnrollmentServed(ctx context.Context, cfg *config.Config, ca *x509.Certificate, tokenAddrs []string) error {
	if !cfg.Enroll.Enabled {
		return withHint(errors.New("enrollment is disabled in the gateway config (enroll.enabled: false), so nobody could use the token"),
			"set enroll.enabled: true and restart the gateway, or pass --offline")
	}
	addr := localAddress(cfg.EnrollListen())
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		addr = tokenAddrs[0]
	}
	ctx, cancel := context.WithTimeout(ctx, enrollCheckTimeout)
	defer cancel()
	if err := enroll.CheckListener(ctx, addr, ca); err != nil {
		return withHint(fmt.Errorf("no gateway serves enrollment for this CA at %s, so the token could not be used: %w", addr, err),
			"start the gateway with the CA passphrase ('dockgate up', or 'dockgate serve --passphrase-file FILE'), "+
				"or pass --offline to create the token anyway")
	}
	return nil
}

// noteNameInUse warns that enrollments will get numbered names, or that a
// host token's join will be refused.
func (a *app) noteNameInUse(ctx context.Context, st *store.Store, name string, host bool) {
	certs, err := st.CertsByName(ctx, name)
	if err != nil {
		return
	}
	now := time.Now()
	for _, c := range certs {
		if host && c.Kind == store.KindServer && !c.Revoked() && !c.Superseded(now) && now.Before(c.NotAfter) {
			fmt.Fprintf(a.stderr, "Note: %q already has a valid server certificate (serial %s); the join is refused until it is revoked ('dockgate revoke %s')\n",
				name, c.Serial, name)
			return
		}
		if !host && c.Kind == store.KindClient && !c.Revoked() && now.Before(c.NotAfter) {
			fmt.Fprintf(a.stderr, "Note: %q already has a valid certificate (serial %s); machines enrolling with this token get %s-2, %s-3, ...\n",
				name, c.Serial, name, name)
			return
		}
	}
}

// tokenAddresses are the --address values, checked, or the defaults from
// the server certificate and the enrollment port.
func (a *app) tokenAddresses(st *store.Store, serverCert, enrollListen string, given []string) ([]string, error) {
	for _, addr := range given {
		if err := enroll.ValidateAddress(addr); err != nil {
			return nil, withHint(&usageError{err: err}, "give --address as HOST:PORT, e.g. dock1.example.net:2386")
		}
	}
	if len(given) > 0 {
		return given, nil
	}
	_, port, _ := net.SplitHostPort(enrollListen)
	if port == "0" {
		return nil, withHint(fmt.Errorf("the enrollment port is chosen when the gateway starts (%s)", enrollListen),
			"pass --address HOST:PORT with the port the gateway logged (\"enrollment listener ready\")")
	}
	cert, err := readCertFile(st.Path("servers", serverCert, "cert.pem"))
	if err != nil {
		return nil, withHint(fmt.Errorf("no server certificate %q to take the addresses from: %w", serverCert, err),
			"pass --address HOST:PORT, or issue the gateway's certificate first ('dockgate issue server %s')", serverCert)
	}
	addrs := enroll.DefaultAddresses(cert, port)
	if len(addrs) == 0 {
		return nil, withHint(errors.New("the server certificate has no name a client can dial"), "pass --address HOST:PORT")
	}
	if addrs = enroll.BoundAddresses(addrs, enrollListen, lookupIPs); len(addrs) == 0 {
		return nil, withHint(fmt.Errorf("no name in the server certificate %q is an address the enrollment listener (%s) binds", serverCert, enrollListen),
			"pass --address HOST:PORT, or set enroll.listen to a host in the certificate (or to \":%s\" for every interface)", port)
	}
	return addrs, nil
}

// lookupIPs resolves a name from the server certificate, briefly: a name
// this host cannot resolve is left out of the token's addresses.
func lookupIPs(host string) ([]net.IP, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}

// describeToken tells the admin, on standard error, what the token does.
func (a *app) describeToken(tok enroll.Token, f tokenCreateFlags, enrollEnabled bool) {
	if f.host {
		fmt.Fprintf(a.stderr, "Host token for %q, single use, valid until %s; its server certificate is valid %d days.\n",
			tok.Name, time.Now().Add(f.ttl).Format("2006-01-02 15:04 MST"), f.certDays)
		fmt.Fprintf(a.stderr, "Enrollment addresses: %s\n", strings.Join(tok.Addresses, ", "))
		fmt.Fprintf(a.stderr, "On the new host, run:\n  dockgate serve --store URL --join TOKEN   (or: dockgate up --store URL --join TOKEN)\n")
		return
	}
	uses := "single use"
	if f.uses > 1 {
		uses = fmt.Sprintf("%d uses", f.uses)
	}
	groups := "no groups"
	if len(f.groups) > 0 {
		groups = "groups " + strings.Join(f.groups, ", ")
	}
	fmt.Fprintf(a.stderr, "Token for %q (%s), %s, valid until %s; certificates valid %d days.\n",
		tok.Name, groups, uses, time.Now().Add(f.ttl).Format("2006-01-02 15:04 MST"), f.certDays)
	fmt.Fprintf(a.stderr, "Enrollment addresses: %s\n", strings.Join(tok.Addresses, ", "))
	fmt.Fprintf(a.stderr, "On the new machine, run:\n  dockgate login TOKEN   (or: docker gate login TOKEN)\n")
	if !enrollEnabled {
		fmt.Fprintln(a.stderr, "dockgate: warning: enrollment is disabled in the gateway config (enroll.enabled: false)")
	}
}

func newTokenLsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List tokens and whether they can still be used",
		Example: `  dockgate token ls
  dockgate token ls --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runTokenLs(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// tokenRow is one token as `token ls` shows it; never its secret or hash.
type tokenRow struct {
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // client, or server (a host token)
	Groups    []string  `json:"groups"`
	UsesLeft  int       `json:"uses_left"`
	CertDays  int       `json:"cert_days"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"` // usable, used, expired, revoked
	CreatedAt time.Time `json:"created_at"`
}

func tokenStatus(t store.Token, now time.Time) string {
	switch {
	case t.Revoked():
		return "revoked"
	case t.UsesLeft < 1:
		return "used"
	case !now.Before(t.ExpiresAt):
		return "expired"
	}
	return "usable"
}

func (a *app) runTokenLs(ctx context.Context, asJSON bool) error {
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	toks, err := st.Tokens(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]tokenRow, 0, len(toks))
	for _, t := range toks {
		groups := t.Groups
		if groups == nil {
			groups = []string{}
		}
		rows = append(rows, tokenRow{Name: t.Name, Kind: t.Kind, Groups: groups, UsesLeft: t.UsesLeft, CertDays: t.CertDays,
			ExpiresAt: t.ExpiresAt, Status: tokenStatus(t, now), CreatedAt: t.CreatedAt})
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSTATUS\tUSES LEFT\tEXPIRES\tCERT DAYS\tGROUPS")
	for _, r := range rows {
		kind := "client"
		if r.Kind == store.KindServer {
			kind = "host"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\n", r.Name, kind, r.Status, r.UsesLeft,
			r.ExpiresAt.Local().Format("2006-01-02 15:04"), r.CertDays, strings.Join(r.Groups, ","))
	}
	return tw.Flush()
}

func newTokenRevokeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke a token so nobody can enroll with it",
		Example: `  dockgate token revoke alice`,
		Long: `revoke makes a token unusable at once. Certificates already obtained with
it stay valid: revoke those with 'dockgate revoke NAME'.`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := a.openCAStore()
			if err != nil {
				return err
			}
			defer st.Close()
			err = st.RevokeToken(cmd.Context(), args[0], time.Now())
			switch {
			case errors.Is(err, store.ErrNotFound):
				return withHint(fmt.Errorf("no token named %q", args[0]), "run 'dockgate token ls' to list tokens")
			case errors.Is(err, store.ErrAlreadyRevoked):
				return fmt.Errorf("token %q is already revoked", args[0])
			case err != nil:
				return err
			}
			fmt.Fprintf(a.stdout, "Revoked token %q\n", args[0])
			return nil
		},
	}
}
