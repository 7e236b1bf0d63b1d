package main

import (
	"context"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/store"
)

// registerCompletions teaches shell completion (dockgate completion bash,
// zsh, fish, powershell) the names dockgate knows: certificates and tokens
// from the inventory, docker contexts from the docker CLI's store.
// Completion only reads; a state directory that does not exist completes
// nothing rather than being created.
func registerCompletions(a *app, root *cobra.Command) {
	args := map[string]cobra.CompletionFunc{
		"revoke":         a.completeCerts(""),
		"renew":          a.completeCerts(""),
		"env":            a.completeCerts(store.KindClient),
		"dockerd-config": a.completeCerts(store.KindServer),
		"token revoke":   a.completeTokens,
	}
	for path, fn := range args {
		if cmd, _, err := root.Find(strings.Fields(path)); err == nil {
			cmd.ValidArgsFunction = firstArgOnly(fn)
		}
	}
	flags := map[string]map[string]cobra.CompletionFunc{
		"renew":          {"context": a.completeContexts},
		"status":         {"context": a.completeContexts},
		"doctor":         {"context": a.completeContexts},
		"login":          {"context": a.completeContexts},
		"context create": {"client": a.completeCerts(store.KindClient)},
	}
	for path, byFlag := range flags {
		cmd, _, err := root.Find(strings.Fields(path))
		if err != nil {
			continue
		}
		for flag, fn := range byFlag {
			_ = cmd.RegisterFlagCompletionFunc(flag, fn) // the flags exist; a typo would show in the tests
		}
	}
}

// firstArgOnly completes the first argument and nothing after it.
func firstArgOnly(fn cobra.CompletionFunc) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return fn(cmd, args, toComplete)
	}
}

// completeCerts completes the names of certificates of kind ("": client
// and server) in the inventory.
func (a *app) completeCerts(kind string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var names []string
		a.withExistingStore(cmd.Context(), func(ctx context.Context, st *store.Store) {
			certs, err := st.Certs(ctx)
			if err != nil {
				return
			}
			for _, c := range certs {
				if c.Kind != store.KindCA && (kind == "" || c.Kind == kind) {
					names = append(names, c.Name)
				}
			}
		})
		return matching(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

func (a *app) completeTokens(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []string
	a.withExistingStore(cmd.Context(), func(ctx context.Context, st *store.Store) {
		toks, err := st.Tokens(ctx)
		if err != nil {
			return
		}
		for _, t := range toks {
			if !t.Revoked() {
				names = append(names, t.Name)
			}
		}
	})
	return matching(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

func (a *app) completeContexts(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names, _ := dockerconf.ContextNames(configDir)
	return matching(names, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// withExistingStore runs fn on the state directory's inventory, if there
// is one.
func (a *app) withExistingStore(ctx context.Context, fn func(context.Context, *store.Store)) {
	dir, err := a.stateDir()
	if err != nil {
		return
	}
	if _, err := os.Stat(dir); err != nil {
		return
	}
	st, err := a.openStore(dir, nil)
	if err != nil {
		return
	}
	defer st.Close()
	if ctx == nil {
		ctx = context.Background()
	}
	fn(ctx, st)
}

// matching keeps the distinct names that start with prefix, sorted.
func matching(names []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
