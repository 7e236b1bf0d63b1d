package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/identity"
)

// serveConfig is a serve config whose only clients: entry gives group
// admins the role named; the padding keeps every variant the same size.
func serveConfig(listen, auditPath, role string) string {
	return fmt.Sprintf("listen: %q\nadmin_listen: \"off\"\nupstream: {url: \"unix:///nonexistent/docker.sock\"}\n"+
		"audit: {path: %q}\nclients:\n  - group: admins\n    role: %-10s\n", listen, auditPath, role)
}

// TestServeReloads runs serve in this process with its config named by
// $DOCKGATE_CONFIG: a change of that file is picked up by the file watch,
// and a change the watch cannot see (same size, same mtime) by SIGHUP,
// which also reopens an audit log that logrotate moved away.
func TestServeReloads(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("DOCKGATE_HOME", state)
	certDir := filepath.Join(t.TempDir(), "alice")
	for _, args := range [][]string{
		{"init", "--insecure-no-passphrase", "--cn", "serve test CA"},
		{"issue", "server", "gateway", "--san", "127.0.0.1"},
		{"issue", "client", "alice", "--group", "admins", "--out", certDir},
	} {
		var errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), io.Discard, &errOut); code != 0 {
			t.Fatalf("dockgate %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
	}
	listen := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	cfgPath := filepath.Join(t.TempDir(), "serve.yaml")
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	writeConfig := func(role string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(serveConfig(listen, auditPath, role)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConfig("read-only")

	// Registered before serve starts, so that a SIGHUP never finds the
	// process without a handler (the default action ends it).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	logs := &syncWriter{}
	env := map[string]string{"DOCKGATE_HOME": state, "DOCKGATE_CONFIG": cfgPath}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, &serveFlags{}) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	client := whoamiClient(t, certDir)
	waitForRole := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		var got string
		for time.Now().Before(deadline) {
			if got = roleSeen(client, listen); got == want {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the gateway gives alice role %q, want %q\nlogs:\n%s", got, want, logs.String())
	}
	waitForRole("read-only")

	writeConfig("operator")
	waitForRole("operator")

	// Same size, mtime put back: the file watch sees no change.
	fi, err := os.Stat(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	writeConfig("deployer")
	if err := os.Chtimes(cfgPath, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // more than a watch poll
	if got := roleSeen(client, listen); got != "operator" {
		t.Fatalf("role %q before SIGHUP, want operator still (the watch should not have noticed)", got)
	}
	// logrotate moves the audit log away, then sends SIGHUP.
	if err := os.Rename(auditPath, auditPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForRole("deployer")
	deadline := time.Now().Add(5 * time.Second)
	for {
		data, err := os.ReadFile(auditPath)
		if err == nil && strings.Contains(string(data), `"role":"deployer"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new audit log with the requests after SIGHUP (%v): %q", err, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if fi, err := os.Stat(auditPath); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened audit log has mode %v, want 0600", fi.Mode().Perm())
	}
	if old, err := os.ReadFile(auditPath + ".1"); err != nil || !strings.Contains(string(old), `"role":"operator"`) {
		t.Errorf("rotated audit log: %v, want the earlier requests in it", err)
	}
}

func whoamiClient(t *testing.T, certDir string) *http.Client {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(certDir, "cert.pem"), filepath.Join(certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(certDir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
		// A new connection each time: the role is decided per request,
		// but this keeps the test independent of that.
		DisableKeepAlives: true,
	}}
}

// roleSeen asks the gateway who alice is; "" when it does not answer.
func roleSeen(c *http.Client, listen string) string {
	resp, err := c.Get("https://" + listen + identity.WhoamiPath)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var w identity.Whoami
	if json.NewDecoder(resp.Body).Decode(&w) != nil {
		return ""
	}
	return w.Role
}

// serve's settings: the config file, then DOCKGATE_* variables, then flags.
func TestServeConfigPrecedence(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "serve.yaml")
	file := "listen: \"127.0.0.1:1001\"\nadmin_listen: \"127.0.0.1:1002\"\nserver_cert: from-file\n" +
		"upstream: {url: \"unix:///file.sock\"}\nlog: {level: warn}\n"
	if err := os.WriteFile(cfgPath, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DOCKGATE_CONFIG":       cfgPath,
		"DOCKGATE_ADMIN_LISTEN": "127.0.0.1:2002",
		"DOCKGATE_SERVER_CERT":  "from-env",
		"DOCKGATE_UPSTREAM":     "unix:///env.sock",
	}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return env[k] }}
	cfg, err := a.loadConfig(&serveFlags{serverCert: "from-flag", upstream: "unix:///flag.sock"})
	if err != nil {
		t.Fatal(err)
	}
	for field, got := range map[string][2]string{
		"listen (file)":        {cfg.Listen, "127.0.0.1:1001"},
		"admin_listen (env)":   {cfg.AdminListen, "127.0.0.1:2002"},
		"server_cert (flag)":   {cfg.ServerCert, "from-flag"},
		"upstream (flag)":      {cfg.Upstream.URL, "unix:///flag.sock"},
		"log.level (file)":     {cfg.Log.Level, "warn"},
		"log.format (default)": {cfg.Log.Format, "auto"},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", field, got[0], got[1])
		}
	}
}
