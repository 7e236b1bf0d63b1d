package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// TestServeRegistersItsHost: serve registers the host with its name,
// labels (config and --label) and the address clients dial, and
// `dockgate hosts` lists it healthy; on SQLite and, when one is given, on
// PostgreSQL.
func TestServeRegistersItsHost(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testServeRegistersItsHost(t, "") })
	t.Run("postgres", func(t *testing.T) { testServeRegistersItsHost(t, storetest.PostgresURL(t)) })
}

func testServeRegistersItsHost(t *testing.T, storeURL string) {
	state := filepath.Join(t.TempDir(), "state")
	env := map[string]string{"DOCKGATE_HOME": state, "DOCKGATE_STORE": storeURL}
	mustRun := func(args ...string) string {
		t.Helper()
		out, errOut, code := runApp(t, env, nil, args...)
		if code != 0 {
			t.Fatalf("dockgate %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	mustRun("init", "--insecure-no-passphrase")
	mustRun("issue", "server", "dock1", "--san", "127.0.0.1")

	logs := &syncWriter{}
	a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: logs, getenv: func(k string) string { return env[k] }}
	f := &serveFlags{listen: "127.0.0.1:0", adminListen: "off", upstream: "unix:///nonexistent/docker.sock",
		serverCert: "dock1", labels: []string{"env=prod", "region=eu"}, enroll: enrollFlags{listen: "127.0.0.1:0"}}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.serve(ctx, f) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	registered := regexp.MustCompile(`"msg":"host registered"`)
	for deadline := time.Now().Add(10 * time.Second); !registered.MatchString(logs.String()); {
		if time.Now().After(deadline) {
			t.Fatalf("serve did not register its host:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	port := regexp.MustCompile(`"msg":"gateway ready","addr":"127\.0\.0\.1:([0-9]+)"`).FindStringSubmatch(logs.String())
	if port == nil {
		t.Fatalf("no gateway ready line:\n%s", logs.String())
	}

	table := mustRun("hosts")
	row := regexp.MustCompile(`(?m)^dock1 +healthy +\d+s ago +env=prod,region=eu +127\.0\.0\.1:` + port[1] + ` `)
	if !row.MatchString(table) {
		t.Errorf("hosts:\n%s\nwant a healthy dock1 row with its labels and address", table)
	}
	var hosts []struct {
		Name            string            `json:"name"`
		Health          string            `json:"health"`
		Labels          map[string]string `json:"labels"`
		Addresses       []string          `json:"addresses"`
		EnrollAddresses []string          `json:"enroll_addresses"`
		CAFingerprint   string            `json:"ca_fingerprint"`
	}
	if err := json.NewDecoder(bytes.NewReader([]byte(mustRun("hosts", "--json")))).Decode(&hosts); err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 1 || hosts[0].Name != "dock1" || hosts[0].Health != "healthy" || hosts[0].Labels["region"] != "eu" ||
		len(hosts[0].EnrollAddresses) != 1 || len(hosts[0].CAFingerprint) != 64 {
		t.Errorf("hosts --json = %+v", hosts)
	}
}

func TestLabelFlagIsChecked(t *testing.T) {
	env := map[string]string{"DOCKGATE_HOME": filepath.Join(t.TempDir(), "state")}
	_, errOut, code := runApp(t, env, nil, "serve", "--label", "env")
	if code != 2 || !strings.Contains(errOut, `--label "env" is not KEY=VALUE`) || !strings.Contains(errOut, "--label env=prod") {
		t.Errorf("serve --label env: exit %d\n%s", code, errOut)
	}
}

// Without renewal (a gateway that cannot sign), the local API still
// answers the host list, and every other path 404 in Docker's error shape.
func TestLocalAPIWithoutRenewal(t *testing.T) {
	hosts := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := localAPI(nil, hosts)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, enroll.HostsPath, nil))
	if rec.Code != http.StatusTeapot {
		t.Errorf("GET %s = %d, want the host list's answer", enroll.HostsPath, rec.Code)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, enroll.RenewPath, nil))
	if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), `"message":"dockgate: no such endpoint /dockgate/v1/renew"`) {
		t.Errorf("POST renew without renewal = %d %s", rec.Code, rec.Body.String())
	}
}

func TestHostsTableSaysStale(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var out bytes.Buffer
	err := writeHostsTable(&out, []store.Host{
		{Name: "dock1", Addresses: []string{"dock1:2376"}, Labels: map[string]string{"env": "prod"}, Version: "v1", LastSeen: now.Add(-29 * time.Second)},
		{Name: "dock2", LastSeen: now.Add(-2 * time.Minute)},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`(?m)^dock1 +healthy +29s ago +env=prod +dock1:2376 +v1$`, `(?m)^dock2 +stale +2m ago +- +- +$`} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("table:\n%s\nwant a line matching %s", out.String(), want)
		}
	}
}
