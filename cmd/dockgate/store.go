package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/store"
)

// hintStore is where the inventory's URL comes from.
const hintStore = "check that PostgreSQL runs and that the URL (--store, DOCKGATE_STORE or store.url in the config) is right"

// storeURL picks the inventory: serve and up take store.url from their
// config, which the flag and the environment already overrode; the other
// commands take --store, then $DOCKGATE_STORE, then store.url of the file
// $DOCKGATE_CONFIG names. "" is SQLite in the state directory.
func (a *app) storeURL(cfg *config.Config) (string, error) {
	if cfg != nil {
		return cfg.Store.URL, nil
	}
	if a.storeFlag != "" {
		return a.storeFlag, nil
	}
	if u := a.getenv("DOCKGATE_STORE"); u != "" {
		return u, nil
	}
	path := a.getenv("DOCKGATE_CONFIG")
	if path == "" {
		return "", nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", withHint(fmt.Errorf("failed to read config: %w", err), "check DOCKGATE_CONFIG")
	}
	c, err := config.Parse(bytes.NewReader(data))
	if err != nil {
		return "", withHint(fmt.Errorf("%s: %w", path, err), "see docs/CONFIG.md for the format")
	}
	return c.Store.URL, nil
}

// openStore opens the state directory dir with the inventory storeURL
// picks. Messages name a PostgreSQL store without its password.
func (a *app) openStore(dir string, cfg *config.Config) (*store.Store, error) {
	u, err := a.storeURL(cfg)
	if err != nil {
		return nil, err
	}
	if u != "" && !store.IsPostgresURL(u) {
		return nil, usageErrorf("the store %s is not a postgres:// URL", store.RedactURL(u))
	}
	st, err := store.OpenWith(dir, store.Options{URL: u})
	if errors.Is(err, store.ErrUnreachable) {
		return nil, withHint(err, hintStore)
	}
	return st, err
}

func newStoreCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Move the certificate inventory to a PostgreSQL database several gateways share",
	}
	cmd.AddCommand(newStoreMigrateCmd(a))
	return cmd
}

func newStoreMigrateCmd(a *app) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "migrate --to postgres://...",
		Short: "Copy this host's inventory (certificates, revocations, tokens) into PostgreSQL",
		Long: `migrate copies every certificate row (with its revocation or supersession),
every token and the CRL number from this host's inventory (the state
directory's SQLite, or --store) into the PostgreSQL database --to names.
Nothing is issued again: the rows are the same certificates.

Running it again is harmless: rows already there are counted, not copied.
A row the database holds differently (a token used, or a certificate
revoked, on one side only since the last copy) is reported and left as the
database has it; so is a valid certificate whose name already has another
valid certificate there. A database that holds another CA's inventory is
refused.

The CA's certificate and encrypted key stay in the state directory: the
database never holds a key. Copy the state directory's ca/ to every host
that signs (enrollment, renewal); gateways that only check need ca.pem.`,
		Example: `  dockgate store migrate --to postgres://dockgate@db.example.net/dockgate
  DOCKGATE_STORE=postgres://dockgate@db.example.net/dockgate dockgate serve`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runStoreMigrate(cmd.Context(), to)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "postgres:// URL of the database to copy into (required)")
	return cmd
}

func (a *app) runStoreMigrate(ctx context.Context, to string) error {
	if to == "" {
		return usageErrorf("--to is required: the postgres:// URL of the database to copy into")
	}
	if !store.IsPostgresURL(to) {
		return usageErrorf("--to %s is not a postgres:// URL", store.RedactURL(to))
	}
	src, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer src.Close()
	if src.Backend() == "postgres" && store.RedactURL(to) == src.Where() {
		return usageErrorf("--to names the store the inventory is already in")
	}
	if _, err := authority.LoadCert(src); err != nil {
		return caFileError(err, src)
	}
	// Pending rows are settled first, so that none is copied as pending.
	if err := authority.Recover(ctx, src, a.noticeLogger()); err != nil {
		return err
	}
	dst, err := store.OpenWith(src.Dir(), store.Options{URL: to})
	if errors.Is(err, store.ErrUnreachable) {
		return withHint(err, "check that PostgreSQL runs and that --to is right")
	}
	if err != nil {
		return err
	}
	defer dst.Close()
	r, err := store.Copy(ctx, src, dst, time.Now())
	if errors.Is(err, store.ErrOtherCA) {
		return withHint(err, "copy into a database of its own, or into the one of the CA in %s", src.Dir())
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Copied %d certificate(s) and %d token(s) from %s to %s (%d and %d were already there).\n",
		r.CertsCopied, r.TokensCopied, src.Where(), dst.Where(), r.CertsPresent, r.TokensPresent)
	fmt.Fprintf(a.stdout, "The CA's certificate and key stay in %s: the database holds no key.\n", filepath.Dir(authority.CACertPath(src.Dir())))
	for _, c := range r.Conflicts {
		fmt.Fprintf(a.stderr, "dockgate: conflict: %s\n", c)
	}
	if n := len(r.Conflicts); n > 0 {
		return withHint(fmt.Errorf("%d row(s) conflict and were not copied; the database keeps its own", n),
			"check each with 'dockgate certs' and 'dockgate token ls' on both stores, then revoke what should not stay valid")
	}
	fmt.Fprintln(a.stdout, "Next: point every gateway at it (store.url in the config, --store or DOCKGATE_STORE).")
	return nil
}
