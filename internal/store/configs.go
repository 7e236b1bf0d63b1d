package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// ConfigNotifyChannel is the PostgreSQL channel every config push
// notifies on commit; gateways that load their config from the store
// LISTEN on it.
const ConfigNotifyChannel = "dockgate_config"

// ConfigVersion is one pushed version of the serve config.
type ConfigVersion struct {
	Version   int64
	YAML      string
	SHA256    string // hex, of YAML
	Author    string // who pushed it: user@host
	CreatedAt time.Time
	Comment   string
}

// ConfigSHA256 is the hex SHA-256 of a config's text, as stored.
func ConfigSHA256(yaml string) string {
	sum := sha256.Sum256([]byte(yaml))
	return hex.EncodeToString(sum[:])
}

// PushConfig stores yaml as a new version, unless it is the text of the
// latest version already: then it returns that version and created
// false. The caller validates yaml first; the store keeps any text. On
// PostgreSQL the transaction notifies ConfigNotifyChannel on commit.
func (s *Store) PushConfig(ctx context.Context, yaml, author, comment string, now time.Time) (v ConfigVersion, created bool, err error) {
	sum := ConfigSHA256(yaml)
	err = s.inTx(ctx, func(tx tx) error {
		latest, err := latestConfig(ctx, tx)
		switch {
		case err == nil && latest.SHA256 == sum:
			v = latest
			return nil
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		v = ConfigVersion{YAML: yaml, SHA256: sum, Author: author, CreatedAt: time.Unix(now.Unix(), 0), Comment: comment}
		if err := tx.QueryRowContext(ctx,
			`INSERT INTO config_versions (yaml, sha256, author, created_at, comment) VALUES (?, ?, ?, ?, ?) RETURNING version`,
			yaml, sum, author, now.Unix(), comment).Scan(&v.Version); err != nil {
			return fmt.Errorf("failed to store the config version: %w", err)
		}
		if s.pg != nil {
			if _, err := tx.ExecContext(ctx, `SELECT pg_notify('`+ConfigNotifyChannel+`', '')`); err != nil {
				return fmt.Errorf("failed to announce the config version: %w", err)
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return ConfigVersion{}, false, err
	}
	return v, created, nil
}

const configColumns = `version, yaml, sha256, author, created_at, comment`

func scanConfig(row interface{ Scan(...any) error }) (ConfigVersion, error) {
	var v ConfigVersion
	var created int64
	if err := row.Scan(&v.Version, &v.YAML, &v.SHA256, &v.Author, &created, &v.Comment); err != nil {
		return ConfigVersion{}, err
	}
	v.CreatedAt = time.Unix(created, 0)
	return v, nil
}

func latestConfig(ctx context.Context, q conn) (ConfigVersion, error) {
	v, err := scanConfig(q.QueryRowContext(ctx,
		`SELECT `+configColumns+` FROM config_versions ORDER BY version DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return ConfigVersion{}, fmt.Errorf("no config version in the store: %w", ErrNotFound)
	}
	if err != nil {
		return ConfigVersion{}, fmt.Errorf("failed to read the latest config version: %w", err)
	}
	return v, nil
}

// ConfigVersionAt returns version n, or the latest version when n is 0.
// A store without that version fails with ErrNotFound.
func (s *Store) ConfigVersionAt(ctx context.Context, n int64) (ConfigVersion, error) {
	if n == 0 {
		v, err := latestConfig(ctx, s.q)
		return v, s.connErr(err)
	}
	v, err := scanConfig(s.q.QueryRowContext(ctx,
		`SELECT `+configColumns+` FROM config_versions WHERE version = ?`, n))
	if errors.Is(err, sql.ErrNoRows) {
		return ConfigVersion{}, fmt.Errorf("no config version %d in the store: %w", n, ErrNotFound)
	}
	if err != nil {
		return ConfigVersion{}, s.connErr(fmt.Errorf("failed to read config version %d: %w", n, err))
	}
	return v, nil
}

// ConfigVersions lists every version, oldest first.
func (s *Store) ConfigVersions(ctx context.Context) ([]ConfigVersion, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+configColumns+` FROM config_versions ORDER BY version`)
	if err != nil {
		return nil, s.connErr(fmt.Errorf("failed to list config versions: %w", err))
	}
	defer rows.Close()
	var out []ConfigVersion
	for rows.Next() {
		v, err := scanConfig(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to list config versions: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.connErr(fmt.Errorf("failed to list config versions: %w", err))
	}
	return out, nil
}

// LatestConfigNumber is the latest version's number, 0 when none; one
// index read, for polling.
func (s *Store) LatestConfigNumber(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	if err := s.q.QueryRowContext(ctx, `SELECT MAX(version) FROM config_versions`).Scan(&n); err != nil {
		return 0, s.connErr(fmt.Errorf("failed to read the latest config version: %w", err))
	}
	return n.Int64, nil
}

// ConfigChanges returns a channel that receives a value whenever the
// latest config version differs from the one seen before (the first is
// the one at the call). It polls every poll and, on PostgreSQL, reads at
// once when a push notifies ConfigNotifyChannel. Sends never block.
// onErr (may be nil) is told of failed reads, once per outage.
func (s *Store) ConfigChanges(ctx context.Context, poll time.Duration, onErr func(error)) <-chan struct{} {
	out := make(chan struct{}, 1)
	var notified <-chan struct{}
	if s.pg != nil {
		notified = s.notifications(ctx, ConfigNotifyChannel, onErr)
	}
	last, err := s.LatestConfigNumber(ctx)
	failing := err != nil
	if failing && onErr != nil {
		onErr(err)
	}
	go func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-notified:
			}
			n, err := s.LatestConfigNumber(ctx)
			if err != nil {
				if !failing && onErr != nil && ctx.Err() == nil {
					onErr(err)
				}
				failing = true
				continue
			}
			failing = false
			if n != last {
				last = n
				poke(out)
			}
		}
	}()
	return out
}
