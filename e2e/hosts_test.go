package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/store/storetest"
)

// hostsConfig is the fleet's shared client rules: developers only on
// staging hosts, admins everywhere.
const hostsConfig = `clients:
  - group: dev
    role: admin
    hosts: ["env=staging"]
  - group: admins
    role: admin
`

// startLabelledFleet runs two gateways on one store, "prod" labelled
// env=prod and "staging" labelled env=staging, with hostsConfig.
func startLabelledFleet(t *testing.T) *fleet {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfg, []byte(hostsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	url := storetest.PostgresURL(t)
	return startFleetWith(t, url, url, [][]string{
		{"--config", cfg, "--host-name", "prod", "--label", "env=prod"},
		{"--config", cfg, "--host-name", "staging", "--label", "env=staging"},
	})
}

// Two gateways labelled env=prod and env=staging register in the store
// and `dockgate hosts` lists both healthy; a client whose only rule says
// hosts: ["env=staging"] is refused on prod, with a sentence naming the
// host and the selector, and creates nothing in the daemon there, while
// staging serves it.
func TestFleetHostsAndScopedRules(t *testing.T) {
	fl := startLabelledFleet(t)
	prod, staging := fl.gateways[0], fl.gateways[1]
	for _, g := range fl.gateways {
		waitUntil(t, "the host registered", func() bool { return strings.Contains(g.logs.String(), "host registered") })
	}
	out := fl.second.run("hosts")
	for _, want := range []string{
		`(?m)^prod +healthy +\d+s ago +env=prod +(localhost|127\.0\.0\.1):` + portOf(prod.addr) + ` `,
		`(?m)^staging +healthy +\d+s ago +env=staging +(localhost|127\.0\.0\.1):` + portOf(staging.addr) + ` `,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("dockgate hosts:\n%s\nwant a line matching %s", out, want)
		}
	}

	devDir := filepath.Join(t.TempDir(), "dana")
	fl.cli.run("issue", "client", "dana", "--group", "dev", "--out", devDir)
	_, errOut, err := prod.dockerAs(devDir, nil, "create", "--name", "dana-on-prod", "--network", "none", prod.d.Image(), "true")
	if err == nil {
		t.Fatal("dana, a developer of staging only, created a container through prod")
	}
	want := `on host "prod" (env=prod): clients[0] (group "dev" -> admin) applies only on hosts matching env=staging`
	if !strings.Contains(errOut, want) {
		t.Errorf("refusal on prod:\n%s\nwant it to say %q", errOut, want)
	}
	if out, errOut, err := staging.dockerAs(devDir, nil, "create", "--name", "dana-on-staging", "--network", "none", staging.d.Image(), "true"); err != nil {
		t.Fatalf("dana on staging: %v\n%s%s", err, out, errOut)
	}
	names := prod.d.Docker(t, "ps", "-a", "--format", "{{.Names}}")
	if strings.Contains(names, "dana-on-prod") || !strings.Contains(names, "dana-on-staging") {
		t.Errorf("the daemon's containers: %q; want dana-on-staging and no dana-on-prod", names)
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }
