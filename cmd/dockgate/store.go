package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

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
