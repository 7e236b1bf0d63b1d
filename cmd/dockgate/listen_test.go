package main

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeOnEphemeralPorts: the three listeners may all be given port 0
// (the system picks), and serve logs the ports it got. token create then
// takes the enrollment address as logged, and finds the gateway there.
func TestServeOnEphemeralPorts(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	t.Setenv("DOCKGATE_HOME", state)
	t.Setenv("DOCKGATE_ENROLL_LISTEN", "127.0.0.1:0")
	mustRun := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Fatalf("dockgate %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	mustRun("init", "--insecure-no-passphrase")
	mustRun("issue", "server", "gateway", "--san", "127.0.0.1")

	logs := &syncWriter{}
	env := map[string]string{"DOCKGATE_HOME": state}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }}
	f := &serveFlags{listen: "127.0.0.1:0", adminListen: "127.0.0.1:0", upstream: "unix:///nonexistent/docker.sock",
		enroll: enrollFlags{listen: "127.0.0.1:0"}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, f) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()

	ready := map[string]*regexp.Regexp{
		"gateway":    regexp.MustCompile(`"msg":"gateway ready","addr":"127\.0\.0\.1:([1-9][0-9]*)"`),
		"admin":      regexp.MustCompile(`"msg":"admin listener ready","addr":"127\.0\.0\.1:([1-9][0-9]*)"`),
		"enrollment": regexp.MustCompile(`"msg":"enrollment listener ready",.*"addr":"(127\.0\.0\.1:[1-9][0-9]*)"`),
	}
	ports := map[string]string{}
	for deadline := time.Now().Add(10 * time.Second); len(ports) < len(ready) && time.Now().Before(deadline); {
		for name, re := range ready {
			if m := re.FindStringSubmatch(logs.String()); m != nil {
				ports[name] = m[1]
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ports) < len(ready) {
		t.Fatalf("serve did not log all three chosen ports (got %v); logs:\n%s", ports, logs)
	}
	tok := mustRun("token", "create", "alice", "--address", ports["enrollment"])
	if !strings.HasPrefix(tok, "dgt1.") {
		t.Errorf("token create printed %q", tok)
	}
}
