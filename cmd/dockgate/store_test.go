package main

import (
	"path/filepath"
	"strings"
	"testing"

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
	_, stderr, code := runApp(t, env, nil, "--store", "mysql://root:hunter2@db/x", "certs")
	if code != exitUsage || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "postgres://") {
		t.Errorf("certs --store mysql://...: exit %d, stderr %q; want a usage error without the password", code, stderr)
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
