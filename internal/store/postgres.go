package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// pgConnectTimeout bounds connecting to PostgreSQL when the URL does not
// set connect_timeout: a CLI command against a host that is down fails
// within seconds instead of waiting for TCP's minutes-long timeout.
const pgConnectTimeout = 5 * time.Second

// pgMaxConns caps one process's connections. A gateway needs one for its
// polls plus one per handshake of an unknown serial; a CLI command one.
// With dozens of gateways on one server, PostgreSQL's default of 100
// connections is the limit to plan for.
const pgMaxConns = 4

// IsPostgresURL reports whether u names a PostgreSQL database.
func IsPostgresURL(u string) bool {
	return strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://")
}

// RedactURL is u with its password replaced by "xxxxx", for messages.
// Anything but a SCHEME://... URL (a key=value connection string, a
// string that does not parse) is replaced entirely: it might hold a
// password where the URL parser does not look.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Opaque != "" {
		return "(a store URL that is not SCHEME://...)"
	}
	q := p.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		p.RawQuery = q.Encode()
	}
	return p.Redacted()
}

func openPostgres(dir, rawURL string) (*Store, error) {
	where := RedactURL(rawURL)
	if !IsPostgresURL(rawURL) {
		return nil, fmt.Errorf("failed to open the store %s: want a postgres:// URL", where)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open the state directory: %w", err)
	}
	if err := EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("failed to open the state directory: %w", err)
	}
	cfg, err := pgx.ParseConfig(rawURL)
	if err != nil {
		// pgx's message repeats the URL; ours names it without the password.
		return nil, fmt.Errorf("failed to open the store %s: the URL does not parse", where)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = pgConnectTimeout
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(pgMaxConns)
	db.SetMaxIdleConns(pgMaxConns)
	s := newStore(dir, db, postgresDialect, where)
	s.pg = cfg
	ctx, cancel := context.WithTimeout(context.Background(), 2*pgConnectTimeout)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, s.unreachable(err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the store %s: %w", where, err)
	}
	return s, nil
}

// unreachable wraps a failure to connect so that it names the store (never
// its password) and matches ErrUnreachable.
func (s *Store) unreachable(err error) error {
	return fmt.Errorf("failed to reach the store %s: %w: %w", s.where, ErrUnreachable, err)
}

// connErr names the store in err (see unreachable) when err is a failure
// to reach PostgreSQL rather than an answer from it; other errors pass
// unchanged.
func (s *Store) connErr(err error) error {
	if err == nil || s.pg == nil || errors.Is(err, ErrUnreachable) {
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	if errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return s.unreachable(err)
	}
	return err
}

// LockIssuance takes the lock that makes issuance exclusive across every
// host sharing a PostgreSQL store (a session advisory lock, dropped by
// the server if this process dies or its connection breaks). On SQLite it
// does nothing: the state directory's file lock is the lock there.
func (s *Store) LockIssuance(ctx context.Context) (unlock func(), err error) {
	if s.pg == nil {
		return func() {}, nil
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, s.unreachable(err)
	}
	if _, err := c.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(issuanceLockKey)); err != nil {
		c.Close()
		if err := s.connErr(err); errors.Is(err, ErrUnreachable) {
			return nil, err
		}
		return nil, fmt.Errorf("failed to lock issuance in the store %s: %w", s.where, err)
	}
	return func() {
		// Best effort: closing the connection releases the lock too.
		c.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(issuanceLockKey))
		c.Close()
	}, nil
}

// listenRetry is how long Changes waits before connecting again after its
// connection failed; the gateway's polling covers the gap.
const listenRetry = time.Second

// Changes returns a channel that receives a value whenever another process
// (or this one) commits a change to the certificate inventory, and once
// each time the LISTEN connection is (re)established, so that changes made
// while it was down are read at once. Sends never block: several changes
// may come as one value. On SQLite, which has no notifications, it returns
// nil, which never receives; callers poll. onErr (may be nil) is told when
// the connection fails, once per outage.
func (s *Store) Changes(ctx context.Context, onErr func(error)) <-chan struct{} {
	if s.pg == nil {
		return nil
	}
	return s.notifications(ctx, NotifyChannel, onErr)
}

// notifications LISTENs on channel (reconnecting after a failure) and
// sends on the returned channel for every notification and each time the
// LISTEN connection is (re)established; see Changes.
func (s *Store) notifications(ctx context.Context, channel string, onErr func(error)) <-chan struct{} {
	ch := make(chan struct{}, 1)
	go func() {
		failing := false
		for ctx.Err() == nil {
			connected, err := s.listen(ctx, channel, ch)
			if ctx.Err() != nil {
				return
			}
			// One report per outage: the first failure after a connection
			// (or at start), not one per retry.
			if connected {
				failing = false
			}
			if onErr != nil && !failing {
				onErr(s.unreachable(err))
			}
			failing = true
			select {
			case <-ctx.Done():
				return
			case <-time.After(listenRetry):
			}
		}
	}()
	return ch
}

// listen holds one LISTEN connection until it fails or ctx ends, and
// reports whether it got as far as listening.
func (s *Store) listen(ctx context.Context, channel string, ch chan<- struct{}) (connected bool, err error) {
	c, err := pgx.ConnectConfig(ctx, s.pg.Copy())
	if err != nil {
		return false, err
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, `LISTEN `+channel); err != nil {
		return false, err
	}
	poke(ch)
	for {
		if _, err := c.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				return true, nil
			}
			return true, err
		}
		poke(ch)
	}
}

func poke(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}
