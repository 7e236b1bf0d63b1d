package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // registers the CGO-free "sqlite" driver
)

// DBFile is the name of the inventory database inside the state directory.
const DBFile = "dockgate.db"

// busyTimeoutMillis is how long a connection waits for another process's
// write transaction before failing with SQLITE_BUSY. Our write transactions
// take milliseconds; 5 s absorbs many CLI runs at once on a slow disk.
const busyTimeoutMillis = 5000

// Errors callers can test with errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrAmbiguous       = errors.New("is ambiguous")
	ErrDuplicateSerial = errors.New("duplicate serial number")
	ErrAlreadyRevoked  = errors.New("already revoked")
	ErrDuplicateToken  = errors.New("duplicate token name")
	ErrTokenUsed       = errors.New("token already used")
	ErrTokenExpired    = errors.New("token expired")
	ErrTokenRevoked    = errors.New("token revoked")
	// ErrTokenKind is a token used for the other kind of certificate.
	ErrTokenKind = errors.New("token of another kind")
	// ErrUnreachable is a PostgreSQL store that did not answer.
	ErrUnreachable = errors.New("unreachable")
)

// Store is an open state directory and its inventory: SQLite in the
// directory (the default), or a PostgreSQL database several hosts share.
// It is safe for concurrent use by many goroutines, and several processes
// may have the same directory or database open.
type Store struct {
	dir string
	db  *sql.DB
	q   conn     // db with the dialect's placeholders
	d   *dialect // which backend
	// pg is the parsed PostgreSQL configuration (nil for SQLite), for
	// the LISTEN connection; where names the inventory in messages,
	// without a password.
	pg    *pgx.ConnConfig
	where string

	revokedMu    sync.Mutex
	revokedGen   int64
	revokedCache map[string]time.Time
	revokedValid bool

	standingsMu  sync.Mutex
	standingsGen int64
	standings    map[string]Standing // nil until first read
}

// Options choose the inventory's backend.
type Options struct {
	// URL is a postgres:// (or postgresql://) URL of a database that
	// several hosts share; "" keeps the inventory in SQLite in the state
	// directory. The CA's files stay in the state directory either way.
	URL string
}

// Open prepares dir (0700) and opens, creating or migrating as needed, the
// SQLite inventory database in it.
func Open(dir string) (*Store, error) { return OpenWith(dir, Options{}) }

// OpenWith prepares dir (0700) and opens, creating or migrating as needed,
// the inventory opts choose.
func OpenWith(dir string, opts Options) (*Store, error) {
	if opts.URL != "" {
		return openPostgres(dir, opts.URL)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("failed to open the state directory: %w", err)
	}
	if err := EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("failed to open the state directory: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	if err := ensurePrivateFile(path); err != nil {
		return nil, fmt.Errorf("failed to open the inventory: %w", err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return nil, fmt.Errorf("failed to open the inventory: %w", err)
	}
	s := newStore(dir, db, sqliteDialect, path)
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the inventory %s: %w", path, err)
	}
	return s, nil
}

func newStore(dir string, db *sql.DB, d *dialect, where string) *Store {
	return &Store{dir: dir, db: db, q: conn{q: db, d: d}, d: d, where: where}
}

// dsn builds the connection string. Every connection gets:
//   - WAL, so readers (the gateway polling revocations) never block writers;
//   - synchronous=FULL, so a committed serial survives power loss;
//   - foreign keys on;
//   - busy_timeout, so concurrent CLI runs wait instead of failing;
//   - BEGIN IMMEDIATE for write transactions, which takes the write lock up
//     front: two processes can never both read "unused" and then both write.
func dsn(path string) string {
	q := url.Values{}
	q.Set("_busy_timeout", fmt.Sprint(busyTimeoutMillis))
	q.Set("_journal_mode", "WAL")
	q.Set("_synchronous", "FULL")
	q.Set("_foreign_keys", "1")
	q.Set("_txlock", "immediate")
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// Dir is the absolute path of the state directory.
func (s *Store) Dir() string { return s.dir }

// Path joins elem onto the state directory.
func (s *Store) Path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the database handle for diagnostics such as integrity checks.
func (s *Store) DB() *sql.DB { return s.db }

// Backend is "sqlite" or "postgres".
func (s *Store) Backend() string { return s.d.name }

// Where names the inventory for messages: the SQLite file, or the
// PostgreSQL URL with its password replaced by "xxxxx".
func (s *Store) Where() string { return s.where }

// inTx runs fn in a write transaction and commits it when fn returns nil.
// A PostgreSQL store that cannot be reached fails with ErrUnreachable,
// naming the store.
func (s *Store) inTx(ctx context.Context, fn func(tx) error) error {
	return s.connErr(inTx(ctx, s.db, s.d, fn))
}
