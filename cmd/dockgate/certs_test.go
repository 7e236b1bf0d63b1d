package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store"
)

// A row an interrupted issuance left pending is shown by certs, with a
// note, can be revoked by serial, and the next issuance says it settled
// what was left.
func TestCertsShowsAndRevokeRevokesAPendingCertificate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "state")
	env := map[string]string{"DOCKGATE_HOME": home}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: %s", stderr)
	}
	st, err := store.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	const serial = "5eed0001deadbeef"
	now := time.Now()
	err = st.AddCert(context.Background(), store.Cert{Serial: serial, Kind: store.KindClient, Name: "half",
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), State: store.StatePending})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	stdout, stderr, code := runApp(t, env, nil, "certs")
	if code != exitOK || !regexp.MustCompile(`(?m)^half +client +5eed0001dead +\S+ +pending`).MatchString(stdout) ||
		!strings.Contains(stderr, "1 certificate(s) pending") {
		t.Errorf("certs: exit %d\nstdout:\n%s\nstderr:\n%s\nwant half pending and a note", code, stdout, stderr)
	}
	if stdout, stderr, code := runApp(t, env, nil, "revoke", serial); code != exitOK || !strings.Contains(stdout, "Revoked client \"half\"") {
		t.Errorf("revoke %s: exit %d, stdout %q, stderr %q", serial, code, stdout, stderr)
	}
	if stdout, _, _ := runApp(t, env, nil, "certs"); !regexp.MustCompile(`(?m)^half .* revoked`).MatchString(stdout) {
		t.Errorf("after revoke, certs:\n%s", stdout)
	}
}

func TestIssueSaysWhatItSettled(t *testing.T) {
	home := filepath.Join(t.TempDir(), "state")
	env := map[string]string{"DOCKGATE_HOME": home}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: %s", stderr)
	}
	st, err := store.Open(home)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = st.AddCert(context.Background(), store.Cert{Serial: "5eed0002", Kind: store.KindClient, Name: "half",
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), State: store.StatePending})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runApp(t, env, nil, "issue", "client", "alice")
	if code != exitOK || !strings.Contains(stderr, "revoked a certificate whose issuance was interrupted") ||
		!strings.Contains(stderr, "5eed0002") {
		t.Errorf("issue: exit %d, stderr %q; want a notice naming the settled certificate", code, stderr)
	}
}
