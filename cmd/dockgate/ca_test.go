package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// runApp runs the CLI in-process with a fake terminal and environment.
func runApp(t *testing.T, env map[string]string, term *fakeTerminal, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut,
		getenv: func(k string) string { return env[k] }}
	if term != nil {
		a.askPassword = term.ask
	}
	root := newRootCmd(a)
	root.SetArgs(args)
	if _, err := root.ExecuteC(); err != nil {
		printError(&errOut, err)
		code = exitCode(err)
	}
	return out.String(), errOut.String(), code
}

func TestInitAsksTwiceOnTheTerminal(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(dir, "state")}

	mismatch := &fakeTerminal{answers: []string{"one", "two"}}
	_, stderr, code := runApp(t, env, mismatch, "init")
	if code != exitError || !strings.Contains(stderr, "do not match") {
		t.Fatalf("init with mismatched passphrases: exit %d, stderr %q; want 1 and 'do not match'", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(err) {
		t.Errorf("a failed init left the state directory behind: %v", err)
	}

	term := &fakeTerminal{answers: []string{"tty-pass", "tty-pass"}}
	if _, stderr, code := runApp(t, env, term, "init"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	if want := []string{"CA passphrase: ", "Repeat the CA passphrase: "}; strings.Join(term.prompts, "|") != strings.Join(want, "|") {
		t.Errorf("prompts = %q, want %q", term.prompts, want)
	}

	// Unlocking asks once, and the key opens with what was typed.
	unlock := &fakeTerminal{answers: []string{"tty-pass"}}
	if _, stderr, code := runApp(t, env, unlock, "issue", "client", "alice"); code != exitOK {
		t.Fatalf("issue: exit %d, stderr %q", code, stderr)
	}
	if len(unlock.prompts) != 1 {
		t.Errorf("issue asked %d times, want once", len(unlock.prompts))
	}
	st, err := store.Open(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := authority.Load(st, []byte("tty-pass")); err != nil {
		t.Errorf("the CA key does not open with the typed passphrase: %v", err)
	}
}

func TestUnencryptedCANeedsNoPassphrase(t *testing.T) {
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "state")}
	if _, stderr, code := runApp(t, env, nil, "init", "--insecure-no-passphrase"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	term := &fakeTerminal{}
	if _, stderr, code := runApp(t, env, term, "issue", "client", "ci"); code != exitOK {
		t.Fatalf("issue: exit %d, stderr %q", code, stderr)
	}
	if len(term.prompts) != 0 {
		t.Errorf("asked for a passphrase %d times for an unencrypted key", len(term.prompts))
	}
}

func TestExitCodes(t *testing.T) {
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "state"), passphraseEnv: "pw"}
	if _, stderr, code := runApp(t, env, nil, "init"); code != exitOK {
		t.Fatalf("init: exit %d, stderr %q", code, stderr)
	}
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"init", "--days", "0"}, exitUsage},
		{[]string{"init", "--key-type", "dsa"}, exitUsage},
		{[]string{"init"}, exitError}, // a CA exists
		{[]string{"issue", "client"}, exitUsage},
		{[]string{"issue", "client", "a/b"}, exitUsage},
		{[]string{"issue", "client", "x", "--days", "-1"}, exitUsage},
		{[]string{"issue", "client", "x", "--nope"}, exitUsage},
		{[]string{"issue", "server", "x", "--san", "IP:10.0.0.1"}, exitUsage},
		{[]string{"revoke", "x", "--reason", "bored"}, exitUsage},
		{[]string{"revoke", "nobody"}, exitError},
		{[]string{"renew", "nobody"}, exitError},
		{[]string{"crl", "--days", "0"}, exitUsage},
		{[]string{"issue", "client", "ok"}, exitOK},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, stderr, code := runApp(t, env, nil, tt.args...)
			if code != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.want, stderr)
			}
			if code != exitOK && strings.Count(stderr, "dockgate: error: ") != 1 {
				t.Errorf("stderr %q, want exactly one error line", stderr)
			}
		})
	}
}

func TestExpiresIn(t *testing.T) {
	const h = time.Hour
	tests := []struct {
		d    time.Duration
		want string
	}{
		{29*24*h + 23*h, "29d"},
		{25 * h, "1d"},
		{5*h + h/2, "5h"},
		{h / 2, "30m"},
		{1_000_000_000, "<1m"},
		{-3 * 24 * h, "3d ago"},
	}
	for _, tt := range tests {
		if got := expiresIn(tt.d); got != tt.want {
			t.Errorf("expiresIn(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestParallelIssueProcesses runs many `dockgate issue client` processes at
// once against one state directory: every one succeeds with its own serial,
// and the inventory holds them all, intact.
func TestParallelIssueProcesses(t *testing.T) {
	const clients = 12
	bin, err := exec.LookPath("dockgate") // testscript.Main put it on PATH
	if err != nil {
		t.Skipf("dockgate binary not on PATH: %v", err)
	}
	state := filepath.Join(t.TempDir(), "state")
	env := append(os.Environ(), "DOCKGATE_HOME="+state, passphraseEnv+"=pw")
	dockgate := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := dockgate("init"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}

	serialRE := regexp.MustCompile(`serial: +([0-9a-f]+)`)
	serials := make([]string, clients)
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			out, err := dockgate("issue", "client", fmt.Sprintf("c%02d", i), "--group", "ci")
			if err != nil {
				t.Errorf("issue c%02d: %v\n%s", i, err, out)
				return
			}
			if m := serialRE.FindStringSubmatch(out); m != nil {
				serials[i] = m[1]
			}
		})
	}
	wg.Wait()

	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	certs, err := st.Certs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]string{}
	for _, c := range certs {
		recorded[c.Serial] = c.Name
	}
	seen := map[string]bool{}
	for i, s := range serials {
		name := fmt.Sprintf("c%02d", i)
		switch {
		case s == "":
			t.Errorf("%s: no serial printed", name)
		case seen[s]:
			t.Errorf("%s: serial %s issued twice", name, s)
		case recorded[s] != name:
			t.Errorf("%s: serial %s recorded as %q", name, s, recorded[s])
		}
		seen[s] = true
		cert, err := pki.ParseCertPEM(mustRead(t, filepath.Join(state, "clients", name, "cert.pem")))
		if err != nil || pki.SerialHex(cert.SerialNumber) != s {
			t.Errorf("%s: bundle certificate does not match serial %s: %v", name, s, err)
		}
	}
	if len(certs) != clients+1 {
		t.Errorf("inventory holds %d certificates, want %d clients and the CA", len(certs), clients)
	}
	var integrity string
	if err := st.DB().QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Errorf("integrity_check = %q, %v", integrity, err)
	}
}

// TestParallelIssueSameName races processes for one name: exactly one gets
// the certificate, the others are told the name is taken.
func TestParallelIssueSameName(t *testing.T) {
	const procs = 6
	bin, err := exec.LookPath("dockgate")
	if err != nil {
		t.Skipf("dockgate binary not on PATH: %v", err)
	}
	state := filepath.Join(t.TempDir(), "state")
	env := append(os.Environ(), "DOCKGATE_HOME="+state)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("init", "--insecure-no-passphrase"); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	var mu sync.Mutex
	var won, refused int
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			out, err := run("issue", "client", "shared")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won++
			case strings.Contains(out, "already has a valid certificate"):
				refused++
			default:
				t.Errorf("issue: %v\n%s", err, out)
			}
		})
	}
	wg.Wait()
	if won != 1 || refused != procs-1 {
		t.Errorf("%d processes issued and %d were refused, want 1 and %d", won, refused, procs-1)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
