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
)

// Store is an open state directory. It is safe for concurrent use by many
// goroutines, and several processes may have the same directory open.
type Store struct {
	dir string
	db  *sql.DB

	revokedMu    sync.Mutex
	revokedGen   int64
	revokedCache map[string]time.Time
	revokedValid bool

	standingsMu  sync.Mutex
	standingsGen int64
	standings    map[string]Standing // nil until first read
}

// Open prepares dir (0700) and opens, creating or migrating as needed, the
// inventory database in it.
func Open(dir string) (*Store, error) {
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
	if err := migrate(context.Background(), db); err != nil {
		db.Close()
		return nil, fmt.Errorf("failed to open the inventory %s: %w", path, err)
	}
	return &Store{dir: dir, db: db}, nil
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

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it when
// fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTx(ctx, s.db, fn)
}

func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
