package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// token create --host records a single-use, one-hour host token and tells
// the operator how to join; flags that only make sense for client tokens
// are refused, and --join's companions need --join.
func TestHostTokenAndJoinFlags(t *testing.T) {
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "state")}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	out, stderr, code := runApp(t, env, nil, "token", "create", "dock2", "--host", "--offline", "--address", "127.0.0.1:2386")
	if code != exitOK || !strings.HasPrefix(out, "dgt1.") {
		t.Fatalf("token create --host: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if !strings.Contains(stderr, "--join TOKEN") {
		t.Errorf("token create --host does not say how to join: %q", stderr)
	}
	ls, _, _ := runApp(t, env, nil, "token", "ls", "--json")
	var rows []tokenRow
	if err := json.Unmarshal([]byte(ls), &rows); err != nil || len(rows) != 1 {
		t.Fatalf("token ls --json = %q, %v", ls, err)
	}
	r := rows[0]
	if left := time.Until(r.ExpiresAt); r.Kind != "server" || r.UsesLeft != 1 || r.CertDays != 397 || left > time.Hour || left < 59*time.Minute {
		t.Errorf("host token %+v, want kind server, 1 use, 397 cert days, expiring in an hour", r)
	}
	if table, _, _ := runApp(t, env, nil, "token", "ls"); !strings.Contains(table, "KIND") || !strings.Contains(table, " host ") {
		t.Errorf("token ls does not show the host token as one:\n%s", table)
	}
	for _, args := range [][]string{
		{"token", "create", "dock3", "--host", "--group", "admins", "--offline", "--address", "127.0.0.1:2386"},
		{"token", "create", "dock3", "--host", "--uses", "2", "--offline", "--address", "127.0.0.1:2386"},
		{"serve", "--san", "dock2.example.net"},
		{"serve", "--join", "not-a-token"},
		{"up", "--join", "not-a-token", "--insecure-no-passphrase"},
	} {
		if _, stderr, code := runApp(t, env, nil, args...); code != exitUsage {
			t.Errorf("dockgate %s: exit %d, stderr %q; want a usage error", strings.Join(args, " "), code, stderr)
		}
	}
	// Joining needs the fleet's store: on SQLite it stops before anything
	// is written or contacted.
	_, stderr, code = runApp(t, map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "b")}, nil,
		"serve", "--join", strings.TrimSpace(out), "--listen", "127.0.0.1:0", "--admin-listen", "off")
	if code == exitOK || !strings.Contains(stderr, "needs the store the fleet shares") {
		t.Errorf("serve --join without a store: exit %d, stderr %q; want a refusal naming the store", code, stderr)
	}
}
