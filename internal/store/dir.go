// Package store owns dockgate's state directory and its inventory of
// issued certificates, revocations and tokens.
//
// # Backends
//
// The inventory is SQLite in the state directory by default, or a
// PostgreSQL database several gateways share (Options.URL; docs/FLEET.md).
// Both run the same queries through one small dialect (dialect.go): the
// placeholders, the schema's types, how a write transaction serialises,
// and on PostgreSQL a NOTIFY in every transaction that changes a
// certificate, which Store.Changes turns into a channel. The CA's files
// stay in the state directory either way.
//
// # Files
//
// The state directory and its private directories are 0700. Files in it
// are written with package atomicfile.
package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ResolveDir picks the state directory: the flag value, then $DOCKGATE_HOME,
// then $XDG_DATA_HOME/dockgate, then ~/.local/share/dockgate.
func ResolveDir(flag string, getenv func(string) string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if d := getenv("DOCKGATE_HOME"); d != "" {
		return filepath.Abs(d)
	}
	// The XDG base directory spec: a relative value is invalid and ignored.
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "dockgate"), nil
	}
	home := getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return "", fmt.Errorf("failed to find a state directory: %w", err)
		}
	}
	if home == "" {
		return "", errors.New("failed to find a state directory: HOME is not set")
	}
	return filepath.Join(home, ".local", "share", "dockgate"), nil
}
