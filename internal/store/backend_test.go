package store

import (
	"sync"
	"testing"

	"github.com/dockgate/dockgate/internal/store/storetest"
)

// backend opens stores of one kind. Handles opened with the same dir in
// one subtest share one inventory (on PostgreSQL, one schema per dir), as processes on one host (SQLite) or
// gateways on one database (PostgreSQL) do.
type backend struct {
	name string
	open func(t testing.TB, dir string) *Store
}

// forBackends runs fn once per backend: SQLite always, PostgreSQL when
// DOCKGATE_TEST_POSTGRES_URL names a database (scripts/postgres starts
// one). Each PostgreSQL subtest gets a schema of its own.
func forBackends(t *testing.T, fn func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		fn(t, backend{name: "sqlite", open: openTest})
	})
	t.Run("postgres", func(t *testing.T) {
		storetest.PostgresURL(t) // skips (or fails in CI) before any subtest
		var mu sync.Mutex
		schemas := map[string]string{} // dir -> URL of its schema
		fn(t, backend{name: "postgres", open: func(t testing.TB, dir string) *Store {
			t.Helper()
			mu.Lock()
			u, ok := schemas[dir]
			if !ok {
				u = storetest.PostgresURL(t)
				schemas[dir] = u
			}
			mu.Unlock()
			s, err := OpenWith(dir, Options{URL: u})
			if err != nil {
				t.Fatalf("OpenWith(%s) error = %v", RedactURL(u), err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}})
	})
}
