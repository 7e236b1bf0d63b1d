package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"time"
)

// RevocationGeneration returns a number that changes whenever a certificate
// is added, completed, superseded or revoked by any process. Reading it is a single-row lookup, so a poller
// can call it often and reload the revoked set only when it moves.
func (s *Store) RevocationGeneration(ctx context.Context) (int64, error) {
	var gen int64
	err := s.q.QueryRowContext(ctx,
		`SELECT value FROM counters WHERE name = 'revocation_generation'`).Scan(&gen)
	if err != nil {
		return 0, fmt.Errorf("failed to read the revocation generation: %w", s.connErr(err))
	}
	return gen, nil
}

// RevokedSerials maps each revoked serial to its revocation time. The
// gateway polls it several times a second, so the set is cached and re-read
// only when RevocationGeneration has moved; each call returns a fresh map
// the caller may keep or modify.
func (s *Store) RevokedSerials(ctx context.Context) (map[string]time.Time, error) {
	s.revokedMu.Lock()
	defer s.revokedMu.Unlock()
	gen, err := s.RevocationGeneration(ctx)
	if err != nil {
		return nil, err
	}
	if !s.revokedValid || gen != s.revokedGen {
		// The generation was read before the set, so a revocation racing
		// this read can only make the cache look older than it is, and the
		// next call reloads it.
		set, err := s.loadRevokedSerials(ctx)
		if err != nil {
			return nil, err
		}
		s.revokedCache, s.revokedGen, s.revokedValid = set, gen, true
	}
	return maps.Clone(s.revokedCache), nil
}

func (s *Store) loadRevokedSerials(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT serial, revoked_at FROM certs WHERE revoked_at IS NOT NULL`)
	if err != nil {
		return nil, fmt.Errorf("failed to read revocations: %w", err)
	}
	defer rows.Close()
	set := make(map[string]time.Time)
	for rows.Next() {
		var serial string
		var at sql.NullInt64
		if err := rows.Scan(&serial, &at); err != nil {
			return nil, fmt.Errorf("failed to read revocations: %w", err)
		}
		set[serial] = nullableTime(at)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read revocations: %w", err)
	}
	return set, nil
}

// bumpRevocationGeneration moves the generation and, on PostgreSQL,
// notifies NotifyChannel in the same transaction: gateways hear of the
// change exactly when it commits, never before.
func bumpRevocationGeneration(ctx context.Context, tx tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = value + 1 WHERE name = 'revocation_generation'`); err != nil {
		return err
	}
	if tx.d.notify != "" {
		if _, err := tx.ExecContext(ctx, tx.d.notify); err != nil {
			return err
		}
	}
	return nil
}

// Standing is what the inventory says about one client certificate, as the
// gateway checks it on every handshake.
type Standing struct {
	State        string    // StatePending or StateIssued
	RevokedAt    time.Time // zero while not revoked
	SupersededAt time.Time // zero while current
}

// Refusal is why a certificate in this standing is refused at now, or ""
// if it is accepted: "revoked", "pending" (issuance never completed) or
// "superseded" (renewed, and past the overlap window).
func (s Standing) Refusal(now time.Time) string {
	switch {
	case !s.RevokedAt.IsZero():
		return StatusRevoked
	case s.State != StateIssued:
		return StatusPending
	case !s.SupersededAt.IsZero() && !now.Before(s.SupersededAt):
		return StatusSuperseded
	}
	return ""
}

// ClientStandings maps the serial of every client certificate in the
// inventory to its standing. Like RevokedSerials it is cached and re-read
// only when RevocationGeneration moves (every certificate change moves it);
// each call returns a fresh map.
func (s *Store) ClientStandings(ctx context.Context) (map[string]Standing, error) {
	s.standingsMu.Lock()
	defer s.standingsMu.Unlock()
	gen, err := s.RevocationGeneration(ctx)
	if err != nil {
		return nil, err
	}
	if s.standings == nil || gen != s.standingsGen {
		set, err := s.loadClientStandings(ctx)
		if err != nil {
			return nil, err
		}
		s.standings, s.standingsGen = set, gen
	}
	return maps.Clone(s.standings), nil
}

func (s *Store) loadClientStandings(ctx context.Context) (map[string]Standing, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT serial, state, revoked_at, superseded_at
		FROM certs WHERE kind = 'client'`)
	if err != nil {
		return nil, fmt.Errorf("failed to read the inventory: %w", err)
	}
	defer rows.Close()
	set := make(map[string]Standing)
	for rows.Next() {
		var serial string
		var st Standing
		var revokedAt, supersededAt sql.NullInt64
		if err := rows.Scan(&serial, &st.State, &revokedAt, &supersededAt); err != nil {
			return nil, fmt.Errorf("failed to read the inventory: %w", err)
		}
		st.RevokedAt, st.SupersededAt = nullableTime(revokedAt), nullableTime(supersededAt)
		set[serial] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read the inventory: %w", err)
	}
	return set, nil
}
