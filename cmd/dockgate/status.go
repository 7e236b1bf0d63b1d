package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
)

// statusTimeout bounds the whoami round trip: a gateway answers it in
// milliseconds, and status must not hang on a dead network.
const statusTimeout = 10 * time.Second

func newStatusCmd(a *app) *cobra.Command {
	var contextName string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the current docker context's identity, role, expiry and gateway",
		Example: `  dockgate status
  docker --context alice gate status
  dockgate status --context alice --json`,
		Long: `status reads the current docker context (or --context), shows the identity
in its client certificate and when it expires, and asks the gateway how it
sees this client (its role). It exits non-zero when the gateway cannot be
reached or the certificate has expired. 'docker gate status' runs this.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runStatus(cmd.Context(), contextName, asJSON)
		},
	}
	cmd.Flags().StringVar(&contextName, "context", "", "docker context to show (default: the one the docker CLI would use)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// statusReport is what status shows.
type statusReport struct {
	Context   string    `json:"context"`
	Host      string    `json:"host"`
	CN        string    `json:"cn"`
	Groups    []string  `json:"groups"`
	Serial    string    `json:"serial"`
	NotAfter  time.Time `json:"not_after"`
	Expired   bool      `json:"expired"`
	Reachable bool      `json:"reachable"`
	Role      string    `json:"role,omitempty"`
	Error     string    `json:"error,omitempty"`
}

func (a *app) runStatus(ctx context.Context, name string, asJSON bool) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	if name == "" {
		if name, err = dockerconf.ActiveContext(configDir, a.getenv); err != nil {
			return err
		}
	}
	if name == dockerconf.DefaultContextName {
		return withHint(errors.New("the current docker context is \"default\", not a dockgate gateway"),
			"pass --context NAME, or 'docker context use NAME' (contexts from 'dockgate login')")
	}
	c, err := dockerconf.ReadContext(configDir, name)
	if err != nil {
		return withHint(err, "list contexts with 'docker context ls'")
	}
	r, err := a.statusOf(ctx, name, c)
	if err != nil {
		return err
	}
	if err := a.writeStatus(r, asJSON); err != nil {
		return err
	}
	switch {
	case r.Expired:
		return withHint(fmt.Errorf("the client certificate of %q has expired", name), hintEnrollAgain, name)
	case !r.Reachable:
		return withHint(fmt.Errorf("the gateway at %s cannot be used: %s", r.Host, r.Error), "run 'dockgate doctor --context %s' for a diagnosis", name)
	}
	return nil
}

func (a *app) statusOf(ctx context.Context, name string, c dockerconf.Context) (statusReport, error) {
	r := statusReport{Context: name, Host: c.Host}
	cert, err := pki.ParseCertPEM(c.Cert)
	if err != nil {
		return r, withHint(fmt.Errorf("context %q has no client certificate: %w", name, err), "is it a dockgate context? ('dockgate login' writes them)")
	}
	r.CN, r.Groups, r.Serial, r.NotAfter = cert.Subject.CommonName, cert.Subject.Organization, pki.SerialHex(cert.SerialNumber), cert.NotAfter
	if r.Groups == nil {
		r.Groups = []string{}
	}
	r.Expired = !time.Now().Before(cert.NotAfter)
	gw, err := enroll.NewGateway(c.Host, c.CA, c.Cert, c.Key)
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	defer gw.Close()
	ctx, cancel := context.WithTimeout(ctx, statusTimeout)
	defer cancel()
	who, err := gw.Whoami(ctx)
	if err != nil {
		r.Error = err.Error()
		return r, nil
	}
	r.Reachable, r.Role = true, who.Role
	return r, nil
}

func (a *app) writeStatus(r statusReport, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "context\t%s (%s)\n", r.Context, r.Host)
	fmt.Fprintf(tw, "identity\tCN=%s groups=[%s] serial %s\n", r.CN, strings.Join(r.Groups, ","), r.Serial)
	fmt.Fprintf(tw, "certificate\t%s\n", expiryText(r.NotAfter, time.Now()))
	switch {
	case r.Reachable && r.Role == "":
		fmt.Fprintf(tw, "gateway\treachable; no clients: entry matches this identity, so Docker API calls get 403\n")
	case r.Reachable:
		fmt.Fprintf(tw, "gateway\treachable; role %s\n", r.Role)
	default:
		fmt.Fprintf(tw, "gateway\tunreachable: %s\n", r.Error)
	}
	return tw.Flush()
}

func expiryText(notAfter, now time.Time) string {
	at := notAfter.Local().Format(time.DateTime)
	if !now.Before(notAfter) {
		return "expired at " + at
	}
	return fmt.Sprintf("expires %s (in %s)", at, expiresIn(notAfter.Sub(now)))
}
