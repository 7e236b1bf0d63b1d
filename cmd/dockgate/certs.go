package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/store"
)

// shortSerialLength is how much of a serial the table shows: 12 hex digits
// (48 bits) keep collisions between a CA's certificates negligible and are
// accepted back by revoke as a unique prefix.
const shortSerialLength = 12

func newCertsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "List the CA's certificates with their status",
		Long: `List every certificate the CA has issued: name, kind, short serial, time
to expiry, status and groups (clients) or SANs (servers).

A certificate is "expiring" when less than a third of its lifetime is left
(the point at which 'renew --watch' renews); renew it with 'dockgate renew NAME'.
It is "pending" while its issuance has not completed: an issuance that was
interrupted (a crash, kill -9) leaves it so, and the gateway refuses it. The
next issue or renew revokes it; 'dockgate revoke SERIAL' does so at once. It
is "superseded" once a renewal replaced it (after the --keep-old window).`,
		Example: `  dockgate certs
  dockgate certs --json | jq -r '.[] | select(.status == "expiring") | .name'
  dockgate certs --json | jq '.[] | select(.status == "pending")'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runCerts(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print all fields as JSON")
	return cmd
}

func (a *app) runCerts(ctx context.Context, asJSON bool) error {
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := authority.LoadCert(st); err != nil {
		return caFileError(err, st)
	}
	certs, err := st.Certs(ctx)
	if err != nil {
		return err
	}
	now := time.Now()
	if asJSON {
		return writeCertsJSON(a.stdout, certs, now)
	}
	if err := writeCertsTable(a.stdout, certs, now); err != nil {
		return err
	}
	if n := countPending(certs); n > 0 {
		fmt.Fprintf(a.stderr, "%d certificate(s) pending: an issuance was interrupted. The gateway refuses them; the next issue or renew revokes them, or run 'dockgate revoke SERIAL'.\n", n)
	}
	return nil
}

func countPending(certs []store.Cert) int {
	n := 0
	for _, c := range certs {
		if c.Pending() && !c.Revoked() {
			n++
		}
	}
	return n
}

func writeCertsTable(w io.Writer, certs []store.Cert, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tSERIAL\tEXPIRES-IN\tSTATUS\tGROUPS/SANS")
	for _, c := range certs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Kind, shortSerial(c.Serial),
			expiresIn(c.NotAfter.Sub(now)), c.Status(now), groupsOrSANs(c))
	}
	return tw.Flush()
}

func shortSerial(s string) string {
	if len(s) > shortSerialLength {
		return s[:shortSerialLength]
	}
	return s
}

// expiresIn renders the time left in the largest whole unit: "29d", "5h",
// "12m", or "3d ago" once expired.
func expiresIn(d time.Duration) string {
	if d < 0 {
		return roughDuration(-d) + " ago"
	}
	return roughDuration(d)
}

func roughDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return "<1m"
}

func groupsOrSANs(c store.Cert) string {
	switch c.Kind {
	case store.KindClient:
		return strings.Join(c.Groups, ",")
	case store.KindServer:
		return strings.Join(c.SANs, ",")
	}
	return ""
}

// certJSON is one certificate in `certs --json`: every inventory field but
// the PEM, plus the computed status.
type certJSON struct {
	Name         string     `json:"name"`
	Kind         string     `json:"kind"`
	Serial       string     `json:"serial"`
	Status       string     `json:"status"`
	NotBefore    time.Time  `json:"not_before"`
	NotAfter     time.Time  `json:"not_after"`
	Groups       []string   `json:"groups"`
	SANs         []string   `json:"sans"`
	Fingerprint  string     `json:"fingerprint_sha256"`
	State        string     `json:"state"` // "pending" or "issued"
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	SupersededAt *time.Time `json:"superseded_at,omitempty"`
	SupersededBy string     `json:"superseded_by,omitempty"`
}

func writeCertsJSON(w io.Writer, certs []store.Cert, now time.Time) error {
	out := make([]certJSON, 0, len(certs))
	for _, c := range certs {
		j := certJSON{
			Name: c.Name, Kind: c.Kind, Serial: c.Serial, Status: c.Status(now),
			NotBefore: c.NotBefore, NotAfter: c.NotAfter,
			Groups: nonNil(c.Groups), SANs: nonNil(c.SANs),
			Fingerprint: c.Fingerprint, Reason: c.Reason, State: c.State,
			SupersededBy: c.SupersededBy,
		}
		if c.Revoked() {
			at := c.RevokedAt
			j.RevokedAt = &at
		}
		if !c.SupersededAt.IsZero() {
			at := c.SupersededAt
			j.SupersededAt = &at
		}
		out = append(out, j)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// nonNil makes an empty list encode as [] rather than null, so consumers
// need not special-case it.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
