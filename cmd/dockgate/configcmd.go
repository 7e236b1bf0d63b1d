package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rogpeppe/go-internal/diff"
	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/store"
)

// hintNoConfig is what to do when the store holds no config version.
const hintNoConfig = "push one with 'dockgate config push FILE'"

func newConfigCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Keep the serve config in the store, versioned, for every gateway of a fleet",
		Long: `config keeps versions of the serve config in the store (--store,
DOCKGATE_STORE, or store.url of the file DOCKGATE_CONFIG names). Gateways
started with 'serve --config-from-store' run the latest version and reload
within 2 s of a push. Every version is kept; rollback pushes an old one
again.`,
	}
	cmd.AddCommand(newConfigPushCmd(a), newConfigHistoryCmd(a), newConfigShowCmd(a),
		newConfigDiffCmd(a), newConfigRollbackCmd(a))
	return cmd
}

func newConfigPushCmd(a *app) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "push FILE",
		Short: "Validate a serve config and store it as the new latest version",
		Long: `push validates FILE as serve does (every field, the roles compiled) and
refuses it with the same errors when it has a problem. A valid file becomes
the new latest version, unless its text is the latest version's already.
Gateways started with --config-from-store apply it within 2 s; fields that
need a restart (listen addresses, the audit log, ...) are logged by each
gateway as such. store.url in a stored version is ignored: each gateway
keeps the store it started with.`,
		Example: `  dockgate config push /etc/dockgate/config.yaml --comment "deny exec to ci"
  DOCKGATE_STORE=postgres://dockgate@db.example.net/dockgate dockgate config push fleet.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.configPush(cmd.Context(), args[0], comment)
		},
	}
	cmd.Flags().StringVar(&comment, "comment", "", "why this version: kept in the history")
	return cmd
}

func newConfigHistoryCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "history",
		Short:   "List the stored config versions, newest first",
		Example: "  dockgate config history\n  dockgate config history --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.configHistory(cmd.Context(), asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "one JSON object per version, without the text")
	return cmd
}

func newConfigShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "show [N]",
		Short:   "Print a stored config version's text (default the latest)",
		Example: "  dockgate config show\n  dockgate config show 3 > config.yaml",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := versionArgs(args)
			if err != nil {
				return err
			}
			return a.withConfigStore(func(st *store.Store) error {
				v, err := configVersion(cmd.Context(), st, n[0])
				if err != nil {
					return err
				}
				fmt.Fprint(a.stdout, v.YAML)
				return nil
			})
		},
	}
}

func newConfigDiffCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "diff [A] [B]",
		Short: "Unified diff between two config versions (default the previous and the latest)",
		Long: `diff prints what changed from version A to version B as a unified diff of
their text. Without B it compares A with the latest; without A, the version
before the latest with the latest. Nothing printed: the texts are equal.`,
		Example: "  dockgate config diff\n  dockgate config diff 3\n  dockgate config diff 3 5",
		Args:    cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := versionArgs(args)
			if err != nil {
				return err
			}
			return a.configDiff(cmd.Context(), args, n)
		},
	}
}

func newConfigRollbackCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "rollback N",
		Short: "Push version N's text again as the new latest version",
		Long: `rollback stores version N's text as a new version, with the comment
"rollback to N", so the history keeps every step. The text is validated
again first: a version this dockgate no longer accepts is refused.`,
		Example: "  dockgate config history\n  dockgate config rollback 3",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := versionArgs(args)
			if err != nil {
				return err
			}
			return a.configRollback(cmd.Context(), n[0])
		},
	}
}

// versionArgs parses version numbers; it always returns at least one
// element, 0 meaning "not given".
func versionArgs(args []string) ([]int64, error) {
	out := make([]int64, max(len(args), 1))
	for i, s := range args {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return nil, usageErrorf("%q is not a config version: want a number from 'dockgate config history'", s)
		}
		out[i] = n
	}
	return out, nil
}

// withConfigStore opens the store the config commands work on.
func (a *app) withConfigStore(fn func(*store.Store) error) error {
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	st, err := a.openStore(dir, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}

// configVersion reads version n (0: the latest) with a hint when absent.
func configVersion(ctx context.Context, st *store.Store, n int64) (store.ConfigVersion, error) {
	v, err := st.ConfigVersionAt(ctx, n)
	if errors.Is(err, store.ErrNotFound) {
		if n == 0 {
			return v, withHint(err, hintNoConfig)
		}
		return v, withHint(err, "list the versions with 'dockgate config history'")
	}
	return v, err
}

// configAuthor names who pushes: the user and host running the command.
func (a *app) configAuthor() string {
	name := a.getenv("USER")
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	if name == "" {
		name = "unknown-user"
	}
	return name + "@" + host
}

func (a *app) configPush(ctx context.Context, path, comment string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return withHint(fmt.Errorf("failed to read config: %w", err), "pass the serve config file")
	}
	u, err := a.storeURL(nil)
	if err != nil {
		return err
	}
	if _, _, err := checkPolicy(path, data, u); err != nil {
		return err
	}
	return a.withConfigStore(func(st *store.Store) error {
		return a.pushConfigText(ctx, st, string(data), comment)
	})
}

func (a *app) pushConfigText(ctx context.Context, st *store.Store, text, comment string) error {
	v, created, err := st.PushConfig(ctx, text, a.configAuthor(), comment, time.Now())
	if err != nil {
		return err
	}
	if !created {
		fmt.Fprintf(a.stdout, "Unchanged: the latest version %d in %s has this text already.\n", v.Version, st.Where())
		return nil
	}
	fmt.Fprintf(a.stdout, "Pushed config version %d (sha256 %s) to %s.\n", v.Version, v.SHA256[:12], st.Where())
	return nil
}

// configVersionJSON is one line of 'config history --json'.
type configVersionJSON struct {
	Version   int64     `json:"version"`
	SHA256    string    `json:"sha256"`
	Author    string    `json:"author"`
	CreatedAt time.Time `json:"created_at"`
	Comment   string    `json:"comment"`
}

func (a *app) configHistory(ctx context.Context, asJSON bool) error {
	return a.withConfigStore(func(st *store.Store) error {
		all, err := st.ConfigVersions(ctx)
		if err != nil {
			return err
		}
		if len(all) == 0 && !asJSON {
			fmt.Fprintf(a.stdout, "No config version in %s: %s.\n", st.Where(), hintNoConfig)
			return nil
		}
		if asJSON {
			enc := json.NewEncoder(a.stdout)
			for i := len(all) - 1; i >= 0; i-- {
				v := all[i]
				if err := enc.Encode(configVersionJSON{v.Version, v.SHA256, v.Author, v.CreatedAt.UTC(), v.Comment}); err != nil {
					return err
				}
			}
			return nil
		}
		tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tCREATED\tAUTHOR\tSHA256\tCOMMENT")
		for i := len(all) - 1; i >= 0; i-- {
			v := all[i]
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", v.Version, v.CreatedAt.UTC().Format(time.RFC3339),
				v.Author, v.SHA256[:12], strings.ReplaceAll(v.Comment, "\n", " "))
		}
		return tw.Flush()
	})
}

func (a *app) configDiff(ctx context.Context, args []string, n []int64) error {
	return a.withConfigStore(func(st *store.Store) error {
		var from, to store.ConfigVersion
		var err error
		switch len(args) {
		case 0:
			if to, err = configVersion(ctx, st, 0); err != nil {
				return err
			}
			all, err := st.ConfigVersions(ctx)
			if err != nil {
				return err
			}
			if len(all) < 2 {
				return withHint(errors.New("the store holds one config version: nothing to compare it with"),
					"'dockgate config show' prints it")
			}
			from = all[len(all)-2]
		case 1:
			if from, err = configVersion(ctx, st, n[0]); err != nil {
				return err
			}
			if to, err = configVersion(ctx, st, 0); err != nil {
				return err
			}
		default:
			if from, err = configVersion(ctx, st, n[0]); err != nil {
				return err
			}
			if to, err = configVersion(ctx, st, n[1]); err != nil {
				return err
			}
		}
		a.stdout.Write(diff.Diff(fmt.Sprintf("version %d", from.Version), []byte(from.YAML),
			fmt.Sprintf("version %d", to.Version), []byte(to.YAML)))
		return nil
	})
}

func (a *app) configRollback(ctx context.Context, n int64) error {
	return a.withConfigStore(func(st *store.Store) error {
		v, err := configVersion(ctx, st, n)
		if err != nil {
			return err
		}
		u, err := a.storeURL(nil)
		if err != nil {
			return err
		}
		if _, _, err := checkPolicy(fmt.Sprintf("config version %d", n), []byte(v.YAML), u); err != nil {
			return err
		}
		return a.pushConfigText(ctx, st, v.YAML, fmt.Sprintf("rollback to %d", n))
	})
}
