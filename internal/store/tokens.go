package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Token is an onboarding token: a secret that lets a new client obtain a
// certificate a limited number of times before it expires. Only a hash of
// the secret is stored; computing it is the caller's job.
type Token struct {
	id   int64 // the row; names are reused once a token is spent
	Name string
	// Kind is what the token yields: KindClient (the default when empty),
	// or KindServer, the server certificate of a host joining the fleet.
	Kind       string
	SecretHash []byte // e.g. SHA-256 of the secret
	Groups     []string
	CertDays   int // validity of the certificates it yields
	UsesLeft   int
	ExpiresAt  time.Time
	RevokedAt  time.Time // zero while not revoked
	CreatedAt  time.Time
}

// Revoked reports whether the token has been revoked.
func (t Token) Revoked() bool { return !t.RevokedAt.IsZero() }

func (t Token) validate() error {
	switch {
	case t.Name == "":
		return errors.New("token has no name")
	case t.Kind != KindClient && t.Kind != KindServer:
		return fmt.Errorf("invalid token kind %q", t.Kind)
	case len(t.SecretHash) == 0:
		return errors.New("token has no secret hash")
	case t.CertDays < 1:
		return fmt.Errorf("invalid certificate validity %d days", t.CertDays)
	case t.UsesLeft < 1:
		return fmt.Errorf("invalid number of uses %d", t.UsesLeft)
	case t.ExpiresAt.IsZero():
		return errors.New("token has no expiry")
	}
	return nil
}

const (
	tokenColumns       = `id, ` + tokenInsertColumns
	tokenInsertColumns = `name, kind, secret_hash, groups_json, cert_days, uses_left, expires_at, revoked_at, created_at`
)

// AddToken records a new token. A name held by a token that can still be
// used (not revoked, uses left, not expired at CreatedAt) gives
// ErrDuplicateToken; the name of a spent token is free again. A zero
// CreatedAt is set to now.
func (s *Store) AddToken(ctx context.Context, t Token) error {
	if t.Kind == "" {
		t.Kind = KindClient
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("failed to record token: %w", err)
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	err := s.inTx(ctx, func(tx tx) error {
		var live int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tokens
			WHERE name = ? AND revoked_at IS NULL AND uses_left > 0 AND expires_at > ?`,
			t.Name, t.CreatedAt.Unix()).Scan(&live)
		if err != nil {
			return err
		}
		if live > 0 {
			return ErrDuplicateToken
		}
		// The id is left to the database (SQLite's rowid, PostgreSQL's
		// identity column).
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenInsertColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			t.Name, t.Kind, t.SecretHash, jsonList(t.Groups), t.CertDays, t.UsesLeft,
			t.ExpiresAt.Unix(), nullTime(t.RevokedAt), t.CreatedAt.Unix())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// The secret hash collided, astronomically unlikely; refused
			// as a duplicate too.
			return ErrDuplicateToken
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to record token %s: %w", t.Name, err)
	}
	return nil
}

// Tokens lists all tokens, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.q.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("failed to read tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read tokens: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read tokens: %w", err)
	}
	return out, nil
}

// RevokeToken revokes the newest token of that name at the given time. It
// returns ErrNotFound for an unknown name and ErrAlreadyRevoked the second
// time.
func (s *Store) RevokeToken(ctx context.Context, name string, at time.Time) error {
	err := s.inTx(ctx, func(tx tx) error {
		t, err := tokenWhere(ctx, tx, `name = ? ORDER BY id DESC LIMIT 1`, name)
		if err != nil {
			return err
		}
		if t.Revoked() {
			return fmt.Errorf("token %s %w", name, ErrAlreadyRevoked)
		}
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, at.Unix(), t.id)
		return err
	})
	if err != nil {
		return fmt.Errorf("failed to revoke token: %w", err)
	}
	return nil
}

// ConsumeToken spends one use of the client token whose secret hashes to
// secretHash: ConsumeTokenOfKind with KindClient.
func (s *Store) ConsumeToken(ctx context.Context, secretHash []byte, now time.Time) (Token, error) {
	return s.ConsumeTokenOfKind(ctx, secretHash, KindClient, now)
}

// ConsumeTokenOfKind spends one use of the token whose secret hashes to
// secretHash and returns it with UsesLeft already decremented. The check and
// the decrement are one write transaction, so of many concurrent consumers
// (threads or processes) of a token with n uses exactly n succeed. It fails
// with ErrNotFound, ErrTokenKind (a token of another kind, left unspent),
// ErrTokenRevoked, ErrTokenExpired or ErrTokenUsed, in that order of
// precedence.
func (s *Store) ConsumeTokenOfKind(ctx context.Context, secretHash []byte, kind string, now time.Time) (Token, error) {
	var t Token
	err := s.inTx(ctx, func(tx tx) error {
		var err error
		if t, err = tokenWhere(ctx, tx, `secret_hash = ?`, secretHash); err != nil {
			return err
		}
		switch {
		case t.Kind != kind:
			return fmt.Errorf("%w: it yields %s certificates, not %s", ErrTokenKind, t.Kind, kind)
		case t.Revoked():
			return ErrTokenRevoked
		case !now.Before(t.ExpiresAt):
			return ErrTokenExpired
		case t.UsesLeft < 1:
			return ErrTokenUsed
		}
		// The decrement checks again what it relies on, so that it stays
		// single-use even without the write lock around it.
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET uses_left = uses_left - 1
			WHERE id = ? AND uses_left > 0 AND revoked_at IS NULL`, t.id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n != 1 {
			return ErrTokenUsed
		}
		t.UsesLeft--
		return nil
	})
	if err != nil {
		// The secret is never part of the message, not even hashed.
		return Token{}, fmt.Errorf("failed to use token: %w", err)
	}
	return t, nil
}

func tokenWhere(ctx context.Context, tx tx, cond string, args ...any) (Token, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE `+cond, args...)
	if err != nil {
		return Token{}, err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return Token{}, err
		}
		return Token{}, fmt.Errorf("token %w", ErrNotFound)
	}
	return scanToken(rows)
}

func scanToken(rows *sql.Rows) (Token, error) {
	var (
		t                    Token
		groups               string
		expiresAt, createdAt int64
		revokedAt            sql.NullInt64
	)
	err := rows.Scan(&t.id, &t.Name, &t.Kind, &t.SecretHash, &groups, &t.CertDays, &t.UsesLeft,
		&expiresAt, &revokedAt, &createdAt)
	if err != nil {
		return Token{}, err
	}
	if t.Groups, err = parseList(groups); err != nil {
		return Token{}, err
	}
	t.ExpiresAt, t.CreatedAt = unixTime(expiresAt), unixTime(createdAt)
	t.RevokedAt = nullableTime(revokedAt)
	return t, nil
}
