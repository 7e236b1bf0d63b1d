package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/config"
)

type auditQueryFlags struct {
	configPath string
	file       string
	client     string
	host       string
	op         string
	decision   string
	since      time.Duration
	limit      int
	json       bool
}

func newAuditCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Search the audit records of one gateway or of a whole fleet",
	}
	cmd.AddCommand(newAuditQueryCmd(a))
	return cmd
}

func newAuditQueryCmd(a *app) *cobra.Command {
	var f auditQueryFlags
	cmd := &cobra.Command{
		Use:   "query [--client CN] [--host H] [--op GLOB] [--decision deny] [--since 1h] [--limit N] [--json]",
		Short: "List audit records, newest first",
		Long: `query searches the audit records where the gateway's config sends them:
the store's audit_records table for audit.sink postgres (every gateway of
the fleet), else the JSON-lines file audit.path names (this host only).
The config is --config, else DOCKGATE_CONFIG; without one, a PostgreSQL
store (--store, DOCKGATE_STORE) is searched, else the default file in the
state directory. --file searches another JSON-lines file.`,
		Example: `  dockgate audit query --decision deny --since 1h
  dockgate audit query --client ci --op 'container.*' --limit 20
  dockgate audit query --host dock2 --json | jq .reason`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.auditQuery(cmd.Context(), &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "the gateway's config file, which says where its records go (env DOCKGATE_CONFIG)")
	fl.StringVar(&f.file, "file", "", "search this JSON-lines audit file instead")
	fl.StringVar(&f.client, "client", "", "only this client certificate's CN")
	fl.StringVar(&f.host, "host", "", "only records of the gateway on this host (audit.host)")
	fl.StringVar(&f.op, "op", "", "only operations matching this glob, e.g. 'container.*'")
	fl.StringVar(&f.decision, "decision", "", "only allow, deny or would_deny")
	fl.DurationVar(&f.since, "since", 0, "only records of the last DURATION, e.g. 1h")
	fl.IntVar(&f.limit, "limit", 100, "at most N records, the newest; 0 for all")
	fl.BoolVar(&f.json, "json", false, "one JSON object per record, as the file sink writes it, with its host")
	return cmd
}

func (a *app) auditQuery(ctx context.Context, f *auditQueryFlags) error {
	switch f.decision {
	case "", "allow", "deny", "would_deny":
	default:
		return usageErrorf("--decision %q is not allow, deny or would_deny", f.decision)
	}
	if f.limit < 0 || f.since < 0 {
		return usageErrorf("--limit and --since cannot be negative")
	}
	filter := audit.Filter{CN: f.client, Host: f.host, Op: f.op, Decision: f.decision, Limit: f.limit}
	if f.since > 0 {
		filter.Since = time.Now().Add(-f.since)
	}
	entries, err := a.findAudit(ctx, f, filter)
	if err != nil {
		return err
	}
	if f.json {
		for _, e := range entries {
			a.stdout.Write(withHost(e))
		}
		return nil
	}
	if len(entries) == 0 {
		fmt.Fprintln(a.stdout, "No audit record matches.")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tHOST\tCLIENT\tROLE\tOPERATION\tDECISION\tSTATUS\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.UTC().Format(time.RFC3339Nano), e.Host, e.CN,
			e.Role, e.Operation, e.Decision, e.Status, e.Reason)
	}
	return tw.Flush()
}

// withHost is the record's JSON line with "host" first.
func withHost(e audit.Entry) []byte {
	line := bytes.TrimSpace(e.JSON)
	out := []byte(`{"host":` + strconv.Quote(e.Host))
	if len(line) > 2 {
		out = append(out, ',')
	}
	out = append(out, bytes.TrimPrefix(line, []byte("{"))...)
	return append(out, '\n')
}

// findAudit searches where the records are: see auditQuery's help.
func (a *app) findAudit(ctx context.Context, f *auditQueryFlags, filter audit.Filter) ([]audit.Entry, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	host := auditHost(config.Audit{})
	if f.file != "" {
		return audit.QueryFile(f.file, host, filter)
	}
	path := f.configPath
	if path == "" {
		path = a.getenv("DOCKGATE_CONFIG")
	}
	cfg := config.Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, withHint(fmt.Errorf("failed to read config: %w", err), "check --config or DOCKGATE_CONFIG")
		}
		if cfg, err = config.Parse(bytes.NewReader(data)); err != nil {
			return nil, withHint(fmt.Errorf("%s: %w", path, err), "see docs/CONFIG.md for the format")
		}
	}
	cfg.ApplyEnv(a.getenv)
	setIf(&cfg.Store.URL, a.storeFlag)
	toStore := cfg.Audit.Sink == config.AuditSinkPostgres || (path == "" && cfg.Store.URL != "")
	if toStore {
		if cfg.Store.URL == "" {
			return nil, withHint(fmt.Errorf("audit.sink is postgres, but no store is named"), hintStore)
		}
		st, err := a.openStore(dir, &cfg)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		return st.QueryAudit(ctx, filter)
	}
	file := cfg.AuditPath(dir)
	switch file {
	case "":
		return nil, withHint(fmt.Errorf("the audit log is off (audit.path: off)"), "nothing was recorded; set audit.path or audit.sink")
	case audit.Stdout:
		return nil, withHint(fmt.Errorf("the audit log goes to standard output (audit.path: -)"), "search where the gateway's output is kept, or pass --file")
	}
	if cfg.Audit.Host != "" {
		host = cfg.Audit.Host
	}
	entries, err := audit.QueryFile(file, host, filter)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return nil, withHint(err, "the gateway has recorded nothing yet, or its audit.path is another file: pass --config or --file")
	}
	return entries, err
}
