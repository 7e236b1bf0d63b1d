package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// dialect is what differs between the inventory's two backends. The
// queries are written once, with ? placeholders; everything else about
// them (columns, ON CONFLICT, RETURNING) is SQL both databases speak.
type dialect struct {
	name string // "sqlite" or "postgres"
	// migrations are this backend's schema steps (see migrate.go).
	migrations []string
	// dollarParams: PostgreSQL numbers its placeholders ($1, $2, ...).
	dollarParams bool
	// lockWrites runs first in every write transaction. SQLite's BEGIN
	// IMMEDIATE already takes its one write lock; PostgreSQL takes a
	// transaction-scoped advisory lock, so write transactions from every
	// host serialise the same way and a read-then-write (revoke, add a
	// token) sees no concurrent change.
	lockWrites string
	// notify runs in every transaction that moves the revocation
	// generation; PostgreSQL delivers it on commit to every LISTENing
	// gateway.
	notify string
}

// Advisory lock keys, in PostgreSQL's one 64-bit space per database. The
// numbers are arbitrary; they spell "dockgate" and a suffix in ASCII so
// they are recognisable in pg_locks.
const (
	writeLockKey    = 0x646f636b67617465 // "dockgate": write transactions
	issuanceLockKey = 0x646f636b67610001 // issuance (authority's state lock)
)

// NotifyChannel is the PostgreSQL channel a gateway LISTENs on: every
// transaction that adds, completes, supersedes or revokes a certificate
// notifies it on commit.
const NotifyChannel = "dockgate_inventory"

var sqliteDialect = &dialect{
	name:       "sqlite",
	migrations: migrations,
}

var postgresDialect = &dialect{
	name:         "postgres",
	migrations:   pgMigrations,
	dollarParams: true,
	lockWrites:   `SELECT pg_advisory_xact_lock(` + strconv.FormatInt(writeLockKey, 10) + `)`,
	notify:       `SELECT pg_notify('` + NotifyChannel + `', '')`,
}

// rebind rewrites the ? placeholders of query for the dialect. No query in
// this package has a ? inside a string literal.
func (d *dialect) rebind(query string) string {
	if !d.dollarParams || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the package's queries on a database or transaction, rebinding
// their placeholders for its dialect. The methods have database/sql's
// names, so the queries read the same on both backends.
type conn struct {
	q querier
	d *dialect
}

func (c conn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(query), args...)
}

func (c conn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.rebind(query), args...)
}

func (c conn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(query), args...)
}

// tx is a write transaction.
type tx = conn

// inTx runs fn in a write transaction and commits it when fn returns nil.
// On SQLite the transaction is BEGIN IMMEDIATE (see dsn); on PostgreSQL it
// first takes the write lock (dialect.lockWrites).
func inTx(ctx context.Context, db *sql.DB, d *dialect, fn func(tx) error) error {
	sqlTx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	t := tx{q: sqlTx, d: d}
	if d.lockWrites != "" {
		if _, err := t.ExecContext(ctx, d.lockWrites); err != nil {
			sqlTx.Rollback()
			return err
		}
	}
	if err := fn(t); err != nil {
		sqlTx.Rollback()
		return err
	}
	return sqlTx.Commit()
}
