// Package storetest gives tests a PostgreSQL database of their own: a
// fresh schema in the cluster DOCKGATE_TEST_POSTGRES_URL names
// (scripts/postgres starts a private one; scripts/test exports the URL).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvURL is the variable that names the test cluster's database.
const EnvURL = "DOCKGATE_TEST_POSTGRES_URL"

// PostgresURL returns the URL of a fresh, empty schema in the test
// database, dropped when t ends. Without DOCKGATE_TEST_POSTGRES_URL the
// test is skipped, except in CI (CI=true), where that is a failure: CI
// must run the PostgreSQL tests.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := BaseURL(t)
	p, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s does not parse", EnvURL)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	b := make([]byte, 8)
	rand.Read(b) // crypto/rand.Read never fails
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("failed to create a test schema in %s: %v", p.Redacted(), err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", base)
		if err != nil {
			return
		}
		defer db.Close()
		db.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
	})
	q := p.Query()
	q.Set("search_path", schema)
	p.RawQuery = q.Encode()
	return p.String()
}

// BaseURL is DOCKGATE_TEST_POSTGRES_URL itself; it skips or fails t as
// PostgresURL does when it is not set.
func BaseURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if ci := strings.ToLower(os.Getenv("CI")); ci != "" && ci != "0" && ci != "false" {
			t.Fatalf("%s is not set in CI: scripts/test starts a cluster with scripts/postgres", EnvURL)
		}
		t.Skipf("%s is not set (scripts/postgres starts a private cluster)", EnvURL)
	}
	return base
}
