// Package storetest gives tests a PostgreSQL database of their own: a
// fresh schema in the cluster DOCKGATE_TEST_POSTGRES_URL names
// (scripts/postgres starts a private one; scripts/test exports the URL).
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
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

// Proxy is a TCP proxy to PostgreSQL whose link can be cut and restored
// on the same port, to play a database that goes away and comes back.
type Proxy struct {
	t      testing.TB
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

// NewProxy listens on a loopback port and forwards to target (HOST:PORT)
// until t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p := &Proxy{t: t, target: target}
	p.listen("127.0.0.1:0")
	t.Cleanup(p.Cut)
	return p
}

// ProxiedURL returns u with its host replaced by a new Proxy's address,
// and the proxy.
func ProxiedURL(t testing.TB, u string) (string, *Proxy) {
	t.Helper()
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p := NewProxy(t, parsed.Host)
	parsed.Host = p.Addr()
	return parsed.String(), p
}

// Addr is the proxy's HOST:PORT.
func (p *Proxy) Addr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

func (p *Proxy) listen(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", p.target)
			if err != nil {
				in.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
}

// Cut closes the listener and every connection through it: new
// connections are refused until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same port.
func (p *Proxy) Restore() { p.listen(p.Addr()) }
