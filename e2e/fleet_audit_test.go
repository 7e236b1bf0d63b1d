package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store/storetest"
)

// Two gateways write their audit records into one PostgreSQL store:
// `dockgate audit query --decision deny` on either host lists the
// denials of both, each with the host that made it.
func TestFleetAuditQueryShowsEveryHost(t *testing.T) {
	url := storetest.PostgresURL(t)
	cfgFile := filepath.Join(t.TempDir(), "fleet.yaml")
	err := os.WriteFile(cfgFile, []byte(`audit:
  sink: postgres
clients:
  - group: admins
    role: admin
  - cn: ci
    role: read-only
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fl := startFleetWith(t, url, url, func(first, second *dockgateCLI) {
		first.run("config", "push", cfgFile)
		first.extraEnv = append(first.extraEnv, "DOCKGATE_AUDIT_HOST=host-a")
		second.extraEnv = append(second.extraEnv, "DOCKGATE_AUDIT_HOST=host-b")
	}, [][]string{{"--config-from-store"}, {"--config-from-store"}})
	ciDir := filepath.Join(t.TempDir(), "ci")
	fl.cli.run("issue", "client", "ci", "--out", ciDir)
	_, client := certClient(t, ciDir)
	for _, g := range fl.gateways {
		resp, err := client.Get("https://" + g.addr + "/containers/json")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("ci lists containers on %s: %d, want 200", g.addr, resp.StatusCode)
		}
		resp, err = client.Post("https://"+g.addr+"/containers/create", "application/json",
			strings.NewReader(`{"Image":"`+g.d.Image()+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("read-only ci creates a container on %s: %d, want 403", g.addr, resp.StatusCode)
		}
	}
	// The records reach the table in batches every 100 ms.
	type row struct {
		Host      string `json:"host"`
		CN        string `json:"cn"`
		Operation string `json:"operation"`
		Decision  string `json:"decision"`
		Status    int    `json:"status"`
	}
	var denials []row
	for deadline := time.Now().Add(10 * time.Second); ; {
		denials = denials[:0]
		for _, line := range strings.Split(strings.TrimSpace(fl.second.run("audit", "query", "--decision", "deny", "--json")), "\n") {
			if line == "" {
				continue
			}
			var r row
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit query --json line %q: %v", line, err)
			}
			denials = append(denials, r)
		}
		if len(denials) >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // pacing the queries
	}
	hosts := map[string]bool{}
	for _, r := range denials {
		if r.Decision != "deny" || r.CN != "ci" || r.Operation != "container.create" || r.Status != http.StatusForbidden {
			t.Errorf("denial %+v; want ci's container.create, 403", r)
		}
		hosts[r.Host] = true
	}
	if len(denials) != 2 || !hosts["host-a"] || !hosts["host-b"] {
		t.Fatalf("audit query --decision deny = %+v; want ci's denial on host-a and on host-b", denials)
	}
	// The allowed lists are there too, and the text form names both hosts.
	out := fl.cli.run("audit", "query", "--client", "ci", "--op", "container.l*")
	if !strings.Contains(out, "host-a") || !strings.Contains(out, "host-b") || strings.Contains(out, "container.create") {
		t.Errorf("audit query --client ci --op container.l*:\n%s", out)
	}
	for _, g := range fl.gateways {
		if !strings.Contains(g.logs.String(), "sink=postgres") {
			t.Errorf("gateway %s does not log its postgres audit sink; logs:\n%s", g.addr, g.logs.String())
		}
	}
}
