package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/store"
)

func newHostsCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "hosts",
		Short: "List the gateways registered in the store, with their health",
		Long: `List the hosts whose gateways ('dockgate serve' or 'up') registered in the
store: name, labels, addresses clients dial, version, when each was last seen
and its health. A gateway registers at start and records a heartbeat every
10 s; it is "healthy" while its last heartbeat is less than 30 s old (three
heartbeats), else "stale" (stopped, cut off from the store, or gone). On a
PostgreSQL store (--store, DOCKGATE_STORE or store.url) that is the whole
fleet; on SQLite, this host alone.`,
		Example: `  dockgate hosts
  dockgate hosts --store postgres://dockgate@db.example.net/dockgate
  dockgate hosts --json | jq -r '.[] | select(.health == "stale") | .name'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runHosts(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print all fields as JSON")
	return cmd
}

func (a *app) runHosts(ctx context.Context, asJSON bool) error {
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	hosts, err := st.Hosts(ctx)
	if err != nil {
		return withHint(err, "check the store (--store, DOCKGATE_STORE or store.url)")
	}
	now := time.Now()
	if asJSON {
		return writeHostsJSON(a.stdout, hosts, now)
	}
	if len(hosts) == 0 {
		fmt.Fprintf(a.stderr, "No host is registered in %s: a gateway registers when 'dockgate serve' or 'dockgate up' starts on this store.\n", st.Where())
		return nil
	}
	return writeHostsTable(a.stdout, hosts, now)
}

func hostHealth(h store.Host, now time.Time) string {
	if h.Healthy(now) {
		return "healthy"
	}
	return "stale"
}

// lastSeen renders how long ago a host was seen: "4s ago", "3m ago".
func lastSeen(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("%ds ago", max(d/time.Second, 0))
	}
	return roughDuration(d) + " ago"
}

func writeHostsTable(w io.Writer, hosts []store.Host, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tHEALTH\tLAST-SEEN\tLABELS\tADDRESS\tVERSION")
	for _, h := range hosts {
		addr := "-"
		if len(h.Addresses) > 0 {
			addr = h.Addresses[0]
		}
		labels := config.Host{Labels: h.Labels}.LabelString()
		if len(h.Labels) == 0 {
			labels = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, hostHealth(h, now), lastSeen(now.Sub(h.LastSeen)),
			labels, addr, h.Version)
	}
	return tw.Flush()
}

// hostJSON is one host in `hosts --json`: the registry's row and its
// health at the time of the listing.
type hostJSON struct {
	store.Host
	Health          string  `json:"health"`
	LastSeenSeconds float64 `json:"last_seen_seconds_ago"`
}

func writeHostsJSON(w io.Writer, hosts []store.Host, now time.Time) error {
	out := make([]hostJSON, 0, len(hosts))
	for _, h := range hosts {
		out = append(out, hostJSON{Host: h, Health: hostHealth(h, now), LastSeenSeconds: now.Sub(h.LastSeen).Seconds()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
