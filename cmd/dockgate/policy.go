package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/policy"
)

// newPolicyCmd groups the commands that check and explain the roles of a
// serve config without running the gateway.
func newPolicyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check a config's roles and explain decisions",
		Long: `policy checks the roles and clients of a serve config and explains what the
gateway would decide for a request, without a daemon.

  dockgate policy check FILE
  dockgate policy explain --config FILE --cn ci-7 POST /containers/create --body create.json`,
	}
	cmd.AddCommand(newPolicyCheckCmd(a), newPolicyExplainCmd(a))
	return cmd
}

func newPolicyCheckCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "check FILE",
		Short:   "Validate a serve config, its roles and clients",
		Example: `  dockgate policy check /etc/dockgate/config.yaml`,
		Long: `check reads a serve config file, validates every field (roles: operation
globs, modes, bind paths, capabilities; clients: the roles they name) and
compiles the roles. It lists every problem with its field path, or each
role and clients: entry. Exit status 1 when the file has a problem.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, p, err := readPolicy(args[0])
			if err != nil {
				return err
			}
			writeCheckReport(a.stdout, args[0], cfg, p)
			return nil
		},
	}
}

// readPolicy reads, validates and compiles a config file; every problem
// is reported at once.
func readPolicy(path string) (*config.Config, *policy.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("failed to read config: %w", err), "pass the serve config file")
	}
	return checkPolicy(path, data, "")
}

// checkPolicy validates and compiles a config's text, as serve does before
// it applies a config; path says where the text is from in messages.
// storeURL, when set, is the store a gateway would run it on (serve
// --config-from-store keeps its own store, whatever store.url says).
func checkPolicy(path string, data []byte, storeURL string) (*config.Config, *policy.Policy, error) {
	cfg, err := config.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("%s: %w", path, err), "see docs/CONFIG.md and docs/POLICY.md for the format")
	}
	if storeURL != "" {
		cfg.Store.URL = storeURL
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, withHint(fmt.Errorf("%s is invalid:\n%s", path, indent(err)), "fix the fields named above")
	}
	p, err := policy.Compile(&cfg)
	if err != nil {
		return nil, nil, withHint(fmt.Errorf("%s: roles do not compile:\n%s", path, indent(err)), "fix the fields named above")
	}
	return &cfg, p, nil
}

// indent puts each line of a joined error on its own indented line.
func indent(err error) string {
	return "  " + strings.ReplaceAll(err.Error(), "\n", "\n  ")
}

func writeCheckReport(w io.Writer, path string, cfg *config.Config, p *policy.Policy) {
	fmt.Fprintf(w, "%s: ok\n", path)
	used := map[string]bool{}
	for _, r := range cfg.Clients {
		used[r.Role] = true
	}
	fmt.Fprintln(w, "roles:")
	for _, name := range cfg.RoleNames() {
		fmt.Fprintf(w, "  %-12s %s\n", name, describeRole(cfg, p, name, used[name]))
	}
	fmt.Fprintln(w, "clients (first match wins; anyone else is refused):")
	for i, r := range cfg.Clients {
		fmt.Fprintf(w, "  clients[%d]  %s\n", i, r)
	}
}

func describeRole(cfg *config.Config, p *policy.Policy, name string, used bool) string {
	n := len(p.Allowed(name))
	var s string
	if config.IsBuiltinRole(name) {
		s = fmt.Sprintf("built-in, %d operations", n)
	} else {
		spec := cfg.Roles[name]
		mode := spec.Mode
		if mode == "" {
			mode = config.ModeEnforce
		}
		s = fmt.Sprintf("%s, %d operations", mode, n)
		if spec.Preset != "" {
			s = fmt.Sprintf("%s, preset %s, %d operations", mode, spec.Preset, n)
		}
		if spec.OwnerIsolation {
			s += ", owner isolation"
		}
		if relaxed := spec.Relaxed(); len(relaxed) > 0 {
			s += "; allows " + strings.Join(relaxed, ", ")
		}
		if len(spec.Images.Allow) > 0 {
			s += "; images only " + strings.Join(spec.Images.Allow, ", ")
		}
	}
	if !used {
		s += " (no clients: entry uses it)"
	}
	return s
}

// explainFlags are the identity and inputs of a request to explain.
type explainFlags struct {
	configPath string
	cn         string
	groups     []string
	bodyPath   string
	peer       peerFlags
	hostName   string
	labels     []string
}

func newPolicyExplainCmd(a *app) *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain (--cn CN [--group G]... | --uid UID [--user NAME] [--unix-group G]...) METHOD PATH[?QUERY] [--body FILE]",
		Short: "Show what the gateway would decide for a request",
		Long: `explain decides one request as the gateway would for a client certificate
with the given CN and groups: which clients: entry and role apply, the
decision, the rule that made it, and for a denial the reason, the field and
the setting that would allow it. With owner isolation it also lists what
the gateway does to the request (owner label, list filter, ownership
checks). --uid (with --user and --unix-group as the user database would
give them) decides for a user of the local socket (listen_unix) instead.

The config is --config FILE, else $DOCKGATE_CONFIG, else the defaults.
PATH is the request path as the client sends it, with its query:
'/v1.47/containers/json?all=1'. --body FILE ('-' for standard input) is
the JSON body, or a build's context tar. Exit status 0 when the gateway would forward the request
(allow, or would_deny in audit mode), 1 when it would refuse it.`,
		Example: `  dockgate policy explain --cn alice --group devs GET /v1.47/containers/json
  dockgate policy explain --cn ci-7 POST /containers/create --body create.json
  dockgate policy explain --uid 1001 --user alice --unix-group developers GET /_ping
  dockgate policy explain --cn dana --group dev --host-name dock1 --label env=prod GET /_ping`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.explain(&f, args[0], args[1])
		},
	}
	fl := cmd.Flags()
	f.peer.register(fl)
	fl.StringVar(&f.configPath, "config", "", "serve config file (env DOCKGATE_CONFIG; default: built-in defaults)")
	fl.StringVar(&f.cn, "cn", "", "the client certificate's CN (required)")
	fl.StringArrayVar(&f.groups, "group", nil, "a group (O) of the client certificate; repeat for several")
	fl.StringVar(&f.bodyPath, "body", "", "file holding the JSON request body (a build: its context tar), - for standard input")
	fl.StringVar(&f.hostName, "host-name", "", "decide as the gateway of this host (for clients: entries with hosts: name=...; default: the config's host.name)")
	fl.StringArrayVar(&f.labels, "label", nil, "decide as a gateway with this label, KEY=VALUE (repeatable; over the config's host.labels)")
	return cmd
}

func (a *app) explain(f *explainFlags, method, target string) error {
	id, err := f.identity()
	if err != nil {
		return err
	}
	cfg, p, err := a.explainPolicy(f.configPath, &serveFlags{hostName: f.hostName, labels: f.labels})
	if err != nil {
		return err
	}
	body, err := a.readBody(f.bodyPath)
	if err != nil {
		return err
	}
	escapedPath, rawQuery, _ := strings.Cut(target, "?")
	in := policy.Input{Identity: id, Method: strings.ToUpper(method), Path: escapedPath, RawQuery: rawQuery}
	if body != nil {
		in.ContentType, in.Body = "application/json", bytes.NewReader(body)
	}
	v := p.Evaluate(context.Background(), in, dryRunHost{cn: id.CN, resolve: gateway.HostPathResolver(cfg.Upstream)})
	if refusedBeforePolicy(&v) {
		return withHint(fmt.Errorf("the gateway refuses %s %s before any policy (%d): %s", method, target, v.Status, v.Reason),
			"dockgate reads paths and bodies as dockerd does and refuses whatever it could read differently")
	}
	writeVerdict(a.stdout, cfg, id, &v)
	if !v.Forward() {
		return fmt.Errorf("%s would be refused with %d", v.Route.Op, v.Status)
	}
	return nil
}

// refusedBeforePolicy: the request was refused for how it is written
// (path, query or body), before a role judged it; a client without a
// matching rule is explained as a decision.
func refusedBeforePolicy(v *policy.Verdict) bool {
	return v.Matched && v.Effect == policy.Deny && v.Rule == "" && v.Status != http.StatusForbidden
}

// dryRunHost answers explain's lookups as if every object the request
// names existed and were the caller's: explain lists the ownership checks
// the gateway would make (the owner lines) instead of asking a daemon.
// Host paths are resolved as the gateway would resolve them.
type dryRunHost struct {
	cn      string
	resolve func(string) (string, error)
}

func (h dryRunHost) Inspect(_ context.Context, _ policy.ObjectKind, ref string) (policy.Object, error) {
	return policy.Object{ID: ref, ContainerID: ref, Labels: map[string]string{policy.OwnerLabel: h.cn}}, nil
}

func (h dryRunHost) CreateVolume(_ context.Context, name string, labels map[string]string) (policy.Object, error) {
	return policy.Object{ID: name, Labels: labels}, nil
}

func (h dryRunHost) ResolvePath(p string) (string, error) { return h.resolve(p) }

// explainPolicy reads the config to explain with: --config, then
// $DOCKGATE_CONFIG, then the defaults.
func (a *app) explainPolicy(path string, host *serveFlags) (*config.Config, *policy.Policy, error) {
	if path == "" {
		path = a.getenv("DOCKGATE_CONFIG")
	}
	cfg := config.Default()
	if path != "" {
		c, _, err := readPolicy(path)
		if err != nil {
			return nil, nil, err
		}
		cfg = *c
	}
	if err := applyHostFlags(&cfg, host); err != nil {
		return nil, nil, err
	}
	// As the gateway loads it: allowed bind paths resolved on this host.
	p, err := gateway.LoadPolicy(&cfg, slog.New(slog.DiscardHandler))
	return &cfg, p, err
}

func (a *app) readBody(path string) ([]byte, error) {
	switch path {
	case "":
		return nil, nil
	case "-":
		return io.ReadAll(a.stdin)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read body: %w", err)
	}
	return body, nil
}

func writeVerdict(w io.Writer, cfg *config.Config, id identity.Identity, v *policy.Verdict) {
	line := func(key, value string) {
		if value != "" {
			fmt.Fprintf(w, "%-10s %s\n", key+":", value)
		}
	}
	line("decision", v.Effect.String())
	line("operation", v.Route.Op.String())
	line("role", roleLine(cfg, id, v.Role))
	line("rule", v.Rule)
	line("reason", v.Reason)
	line("field", v.Field)
	line("fix", v.Fix)
	if v.Effect != policy.Allow {
		line("status", fmt.Sprint(v.Status))
		line("message", v.Message)
	}
	for _, s := range ownerLines(id.CN, v) {
		line("owner", s)
	}
	line("answer", redactLine(&v.Redact))
	if v.InspectBuildKit {
		line("buildkit", "each Solve call on the stream is read and judged: entitlements (builds.entitlements), network mode, cgroup parent, push, cache backends (builds.cache_backends)")
	}
	if v.InspectSession {
		line("buildkit", "each Dockerfile the daemon reads through the session is judged: an ADD of a URL or Git repository, or a # syntax= frontend, needs builds.remote_sources")
	}
}

// redactLine says what the gateway replaces in the daemon's answer; ""
// when nothing.
func redactLine(r *policy.Redaction) string {
	if !r.Env() {
		return ""
	}
	paths := make([]string, len(r.Paths))
	for i, p := range r.Paths {
		paths[i] = strings.Join(p, ".")
	}
	each := ""
	if r.List {
		each = " of each entry"
	}
	return fmt.Sprintf("environment values replaced with %s in %s%s (containers.redact_env)", policy.EnvMarker, strings.Join(paths, ", "), each)
}

func roleLine(cfg *config.Config, id identity.Identity, role string) string {
	i, ok := matchRule(cfg, id)
	if !ok {
		return "none: no clients: entry matches"
	}
	return fmt.Sprintf("%s (clients[%d]: %s)", role, i, cfg.Clients[i])
}

// ownerLines says what owner isolation has the gateway do.
func ownerLines(cn string, v *policy.Verdict) []string {
	var out []string
	if v.Owner.Label {
		out = append(out, fmt.Sprintf("label %s=%s on the new object (any client value replaced)", policy.OwnerLabel, cn))
	}
	if v.Owner.Filter {
		out = append(out, fmt.Sprintf("filter label=%s=%s added to the query's filters", policy.OwnerLabel, cn))
	}
	for _, c := range v.Owner.Checks {
		if c.Unique {
			held := " or the caller's " + c.Kind.String() + "'s"
			if c.Kind == policy.KindNetwork {
				held = "" // network names stay unique
			}
			out = append(out, fmt.Sprintf("check the name %q (%s) is free%s, else 409 %q", c.Ref, c.Field, held, c.Conflict()))
			continue
		}
		s := fmt.Sprintf("check %s %q (%s) is the caller's, else %d %q", c.Kind, c.Ref, c.Field, c.Status(v.Route.Op), c.NotFound())
		if c.CreateMissing {
			s += "; created for the caller if missing"
		}
		out = append(out, s)
	}
	return out
}
