package main

import (
	neturl "net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// A PostgreSQL store that does not answer fails every command that needs
// the inventory with one line naming it, never its password.
func TestStoreUnreachableIsNamedWithoutPassword(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(dir, "state")}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	const url = "postgres://dockgate:hunter2@127.0.0.1:1/dockgate"
	for _, args := range [][]string{
		{"certs"},
		{"revoke", "alice"},
		{"issue", "client", "alice"},
		{"token", "create", "alice"},
		{"token", "ls"},
	} {
		for _, how := range []string{"flag", "env"} {
			env := map[string]string{"DOCKGATE_HOME": env["DOCKGATE_HOME"]}
			a := args
			if how == "flag" {
				a = append([]string{"--store", url}, args...)
			} else {
				env["DOCKGATE_STORE"] = url
			}
			_, stderr, code := runApp(t, env, nil, a...)
			if code != exitError || !strings.Contains(stderr, "postgres://dockgate:xxxxx@127.0.0.1:1/dockgate") ||
				strings.Contains(stderr, "hunter2") {
				t.Errorf("%s (%s): exit %d, stderr %q; want 1 naming the store without its password", strings.Join(args, " "), how, code, stderr)
			}
		}
	}
	for _, bad := range []string{"mysql://root:hunter2@db/x", "host=db user=dockgate password=hunter2"} {
		_, stderr, code := runApp(t, env, nil, "--store", bad, "certs")
		if code != exitUsage || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "postgres://") {
			t.Errorf("certs --store %q: exit %d, stderr %q; want a usage error without the password", bad, code, stderr)
		}
	}
}

// With --store, issue, certs, revoke and tokens work on the PostgreSQL
// inventory, and the state directory's SQLite inventory stays untouched.
func TestCommandsOnPostgresStore(t *testing.T) {
	url := storetest.PostgresURL(t)
	dir := t.TempDir()
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(dir, "state")}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	pg := map[string]string{"DOCKGATE_HOME": env["DOCKGATE_HOME"], "DOCKGATE_STORE": url}
	if _, stderr, code := runApp(t, pg, nil, "issue", "client", "alice"); code != exitOK {
		t.Fatalf("issue client alice: exit %d, stderr %q", code, stderr)
	}
	if out, stderr, code := runApp(t, pg, nil, "certs"); code != exitOK || !strings.Contains(out, "alice") {
		t.Fatalf("certs on the PostgreSQL store: exit %d, stdout %q, stderr %q; want alice", code, out, stderr)
	}
	if out, _, _ := runApp(t, env, nil, "certs"); strings.Contains(out, "alice") {
		t.Errorf("certs on SQLite lists alice, issued to the PostgreSQL store: %q", out)
	}
	if _, stderr, code := runApp(t, pg, nil, "revoke", "alice"); code != exitOK {
		t.Fatalf("revoke alice: exit %d, stderr %q", code, stderr)
	}
	if out, _, code := runApp(t, pg, nil, "certs"); code != exitOK || !strings.Contains(out, "revoked") {
		t.Errorf("certs --all after revoke: exit %d, stdout %q; want alice revoked", code, out)
	}
	if _, stderr, code := runApp(t, pg, nil, "token", "create", "bob", "--offline", "--address", "127.0.0.1:2386"); code != exitOK {
		t.Fatalf("token create bob: exit %d, stderr %q", code, stderr)
	}
	if out, _, code := runApp(t, pg, nil, "token", "ls"); code != exitOK || !strings.Contains(out, "bob") {
		t.Errorf("token ls: exit %d, stdout %q; want bob", code, out)
	}
}

// store migrate copies a host's inventory without issuing anything, a
// second run copies nothing, and a row changed on one side since is
// reported, not overwritten.
func TestStoreMigrate(t *testing.T) {
	url := storetest.PostgresURL(t)
	redacted := store.RedactURL(url)
	password, _ := mustParseURL(t, url).User.Password()
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "state")}
	pg := map[string]string{"DOCKGATE_HOME": env["DOCKGATE_HOME"], "DOCKGATE_STORE": url}
	for _, args := range [][]string{
		{"init", "--insecure-no-passphrase"},
		{"issue", "client", "alice"},
		{"issue", "client", "bob"},
		{"revoke", "bob"},
		{"token", "create", "carol", "--offline", "--address", "127.0.0.1:2386"},
	} {
		if _, stderr, code := runApp(t, env, nil, args...); code != exitOK {
			t.Fatalf("%s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
	before, _, _ := runApp(t, env, nil, "certs")

	out, stderr, code := runApp(t, env, nil, "store", "migrate", "--to", url)
	if code != exitOK || !strings.Contains(out, "Copied 3 certificate(s) and 1 token(s)") || !strings.Contains(out, redacted) {
		t.Fatalf("store migrate: exit %d, stdout %q, stderr %q; want 3 certificates (CA, alice, bob) and 1 token copied", code, out, stderr)
	}
	if password != "" && strings.Contains(out+stderr, password) {
		t.Errorf("store migrate printed the database password: %q", out+stderr)
	}
	if after, _, _ := runApp(t, pg, nil, "certs"); after != before {
		t.Errorf("certs on the database = %q\nwant what the host had: %q", after, before)
	}
	if out, _, code := runApp(t, env, nil, "store", "migrate", "--to", url); code != exitOK || !strings.Contains(out, "Copied 0 certificate(s) and 0 token(s)") {
		t.Errorf("store migrate again: exit %d, stdout %q; want nothing copied", code, out)
	}

	if _, stderr, code := runApp(t, env, nil, "revoke", "alice"); code != exitOK {
		t.Fatalf("revoke alice on the host: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runApp(t, env, nil, "store", "migrate", "--to", url)
	if code != exitError || !strings.Contains(stderr, "conflict: client certificate alice") {
		t.Errorf("store migrate after a revocation on the host only: exit %d, stderr %q; want 1 and alice's conflict", code, stderr)
	}
	if out, _, _ := runApp(t, pg, nil, "certs"); strings.Count(out, "revoked") != 1 {
		t.Errorf("certs on the database = %q; want alice still valid there (never overwritten)", out)
	}
}

func mustParseURL(t *testing.T, s string) *neturl.URL {
	t.Helper()
	u, err := neturl.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
