package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store/storetest"
)

// fleetConfig lets the client ci list containers (read-only);
// fleetConfigNoList gives it a role without container.list.
const (
	fleetConfig = `clients:
  - group: admins
    role: admin
  - cn: ci
    role: read-only
`
	fleetConfigNoList = `roles:
  pinger:
    allow: [system.ping, system.version]
clients:
  - group: admins
    role: admin
  - cn: ci
    role: pinger
`
)

// Two gateways run the config kept in one PostgreSQL store: a push that
// takes container.list away from ci is enforced by both within 2 s, with
// no restart and no file on either host.
func TestFleetConfigPushReachesEveryGateway(t *testing.T) {
	url := storetest.PostgresURL(t)
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	v1, v2 := write("v1.yaml", fleetConfig), write("v2.yaml", fleetConfigNoList)
	fl := startFleetWith(t, url, url, func(cli, _ *dockgateCLI) {
		cli.run("config", "push", v1, "--comment", "ci reads")
	}, [][]string{{"--config-from-store"}, {"--config-from-store"}})
	ciDir := filepath.Join(t.TempDir(), "ci")
	fl.cli.run("issue", "client", "ci", "--out", ciDir)
	_, client := certClient(t, ciDir)
	list := func(addr string) int {
		resp, err := client.Get("https://" + addr + "/containers/json")
		if err != nil {
			t.Fatalf("GET /containers/json as ci on %s: %v", addr, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, g := range fl.gateways {
		if code := list(g.addr); code != http.StatusOK {
			t.Fatalf("ci lists containers on %s with %d under version 1, want 200; logs:\n%s", g.addr, code, g.logs.String())
		}
	}

	pushed := time.Now()
	out := fl.second.run("config", "push", v2, "--comment", "ci may only ping")
	if !strings.Contains(out, "Pushed config version 2") {
		t.Fatalf("config push: %s", out)
	}
	for _, g := range fl.gateways {
		// Asking until refused is the measurement: each answer is a
		// request the gateway judged with the config it had then.
		var refusedAfter time.Duration
		for {
			code := list(g.addr)
			if code == http.StatusForbidden {
				refusedAfter = time.Since(pushed)
				break
			}
			if code != http.StatusOK {
				t.Fatalf("ci lists containers on %s: %d, want 200 then 403", g.addr, code)
			}
			if time.Since(pushed) > 10*time.Second {
				t.Fatalf("gateway %s still lets ci list containers 10 s after the push; logs:\n%s", g.addr, g.logs.String())
			}
			time.Sleep(10 * time.Millisecond) // pacing the requests, not synchronising
		}
		t.Logf("gateway %s refuses container.list %v after the push began", g.addr, refusedAfter)
		if refusedAfter > 2*time.Second {
			t.Errorf("gateway %s applied the push after %v, want within 2 s", g.addr, refusedAfter)
		}
		if !strings.Contains(g.logs.String(), "config changed in the store, reloading") {
			t.Errorf("gateway %s did not log the reload; logs:\n%s", g.addr, g.logs.String())
		}
		g.docker("ps") // the admin is unaffected
	}

	// A rollback is a push too: ci lists again on both.
	rolled := time.Now()
	fl.cli.run("config", "rollback", "1")
	for _, g := range fl.gateways {
		for list(g.addr) != http.StatusOK {
			if time.Since(rolled) > 10*time.Second {
				t.Fatalf("gateway %s still refuses ci 10 s after the rollback", g.addr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("gateway %s lets ci list again %v after the rollback began", g.addr, time.Since(rolled))
	}
	// A field read only at start is logged as needing a restart, as for a
	// file reload, and the rest of the version applies.
	v3 := write("v3.yaml", fleetConfig+"log:\n  level: debug\n")
	fl.cli.run("config", "push", v3, "--comment", "more logs")
	for _, g := range fl.gateways {
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(g.logs.String(), "a restart is needed"); {
			if time.Now().After(deadline) {
				t.Fatalf("gateway %s did not warn that log.level needs a restart; logs:\n%s", g.addr, g.logs.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if logs := g.logs.String(); !strings.Contains(logs, "log.level") {
			t.Errorf("gateway %s warned without naming log.level; logs:\n%s", g.addr, logs)
		}
		if code := list(g.addr); code != http.StatusOK {
			t.Errorf("ci lists containers on %s with %d under version 4, want 200", g.addr, code)
		}
	}
	hist := fl.cli.run("config", "history")
	if !strings.Contains(hist, "rollback to 1") || !strings.Contains(hist, "ci may only ping") {
		t.Errorf("config history:\n%s", hist)
	}
}
