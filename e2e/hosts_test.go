package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerconf"
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
	return startFleetWith(t, url, url, nil, [][]string{
		{"--config", cfg, "--host-name", "prod", "--label", "env=prod"},
		{"--config", cfg, "--host-name", "staging", "--label", "env=staging"},
	})
}

// Two gateways labelled env=prod and env=staging register in the store
// and `dockgate hosts` lists both healthy; a client whose only rule says
// hosts: ["env=staging"] is refused on prod, with a sentence naming the
// host and the selector, and creates nothing in prod's daemon, while
// staging serves it, the container landing in staging's daemon alone.
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
	if names := strings.Fields(prod.d.Docker(t, "ps", "-a", "--format", "{{.Names}}")); slices.Contains(names, "dana-on-prod") || slices.Contains(names, "dana-on-staging") {
		t.Errorf("prod's daemon's containers: %q; want neither dana-on-prod nor dana-on-staging", names)
	}
	if names := strings.Fields(staging.d.Docker(t, "ps", "-a", "--format", "{{.Names}}")); !slices.Contains(names, "dana-on-staging") {
		t.Errorf("staging's daemon's containers: %q; want dana-on-staging", names)
	}
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// One enrollment, every host: a client the rules let in on both hosts
// gets a docker context per host from one login, pinned to the CA, the
// one of the host it enrolled at current, and both work with the docker
// CLI; a client let in on staging only gets one context, named as on a
// single host.
func TestFleetLoginWritesAContextPerHost(t *testing.T) {
	fl := startLabelledFleet(t)
	for _, g := range fl.gateways {
		waitUntil(t, "the host registered and enrollment ready", func() bool {
			return strings.Contains(g.logs.String(), "host registered") && strings.Contains(g.logs.String(), "enrollment listener ready")
		})
	}
	fl.cli.extraEnv = append(fl.cli.extraEnv, "DOCKGATE_ENROLL_LISTEN="+fl.enroll[0])
	tok := strings.TrimSpace(fl.cli.run("token", "create", "erin", "--group", "admins", "--address", fl.enroll[0]))
	client := newDockgateCLI(t, fl.cli.bin)
	out := client.run("login", tok)
	for _, want := range []string{`docker context "prod" written`, `docker context "staging" written`, "now the current context"} {
		if !strings.Contains(out, want) {
			t.Errorf("login:\n%s\nwant %q", out, want)
		}
	}
	if cur, err := dockerconf.CurrentContext(client.dockerCfg); err != nil || cur != "prod" {
		t.Errorf("current context %q, %v; want prod, where erin enrolled", cur, err)
	}
	for _, g := range fl.gateways {
		name := map[*gatewayEnv]string{fl.gateways[0]: "prod", fl.gateways[1]: "staging"}[g]
		c, err := dockerconf.ReadContext(client.dockerCfg, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(c.Host, ":"+portOf(g.addr)) || !bytes.Equal(c.CA, mustReadFile(t, filepath.Join(fl.cli.stateDir, "ca", "ca.pem"))) {
			t.Errorf("context %s: host %s, CA pinned %v; want gateway %s and the fleet's CA", name, c.Host, bytes.Equal(c.CA, mustReadFile(t, filepath.Join(fl.cli.stateDir, "ca", "ca.pem"))), g.addr)
		}
		cmd := exec.Command("docker", "--context", name, "create", "--name", "erin-on-"+name, "--network", "none", g.d.Image(), "true")
		cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+client.dockerCfg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker --context %s create: %v\n%s", name, err, b)
		}
	}
	// Each host's daemon has erin's container made through its context,
	// and not the other's.
	for i, own := range []string{"prod", "staging"} {
		names := strings.Fields(fl.daemons[i].Docker(t, "ps", "-a", "--format", "{{.Names}}"))
		for _, name := range []string{"prod", "staging"} {
			if has := slices.Contains(names, "erin-on-"+name); has != (name == own) {
				t.Errorf("%s's daemon's containers: %q; want erin-on-%s there: %v", own, names, name, name == own)
			}
		}
	}

	// dana (group dev) is let in on staging only: one context, named
	// after her token as on a single host.
	tok = strings.TrimSpace(fl.cli.run("token", "create", "dana", "--group", "dev", "--address", fl.enroll[0]))
	other := newDockgateCLI(t, fl.cli.bin)
	out = other.run("login", tok)
	if !strings.Contains(out, `docker context "dana" written`) {
		t.Errorf("login of a staging-only client:\n%s\nwant the one context dana", out)
	}
	if _, err := dockerconf.ReadContext(other.dockerCfg, "staging"); err == nil {
		t.Error("a staging-only client got a context per host")
	}
	staging := fl.gateways[1]
	if c, err := dockerconf.ReadContext(other.dockerCfg, "dana"); err != nil || !strings.HasSuffix(c.Host, ":"+portOf(staging.addr)) {
		t.Errorf("dana's context: %+v, %v; want it on staging (%s), the one host that lets her in, though she enrolled at prod", c.Host, err, staging.addr)
	}
}

// login --refresh, from the certificate of an existing context, writes
// the contexts of every host it may use: here a client that logged in
// with --context (one context) gets both hosts' afterwards.
func TestFleetLoginRefresh(t *testing.T) {
	fl := startLabelledFleet(t)
	for _, g := range fl.gateways {
		waitUntil(t, "the host registered and enrollment ready", func() bool {
			return strings.Contains(g.logs.String(), "host registered") && strings.Contains(g.logs.String(), "enrollment listener ready")
		})
	}
	fl.cli.extraEnv = append(fl.cli.extraEnv, "DOCKGATE_ENROLL_LISTEN="+fl.enroll[0])
	tok := strings.TrimSpace(fl.cli.run("token", "create", "finn", "--group", "admins", "--address", fl.enroll[0]))
	client := newDockgateCLI(t, fl.cli.bin)
	client.run("login", tok, "--context", "finn")
	if _, err := dockerconf.ReadContext(client.dockerCfg, "prod"); err == nil {
		t.Fatal("login --context NAME wrote a context per host")
	}
	out := client.run("login", "--refresh", "--context", "finn", "--context-prefix", "f-")
	for _, name := range []string{"f-prod", "f-staging"} {
		if !strings.Contains(out, `docker context "`+name+`" written`) {
			t.Errorf("login --refresh:\n%s\nwant %s written", out, name)
		}
		cmd := exec.Command("docker", "--context", name, "version", "--format", "{{.Server.Version}}")
		cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+client.dockerCfg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker --context %s version: %v\n%s", name, err, b)
		}
	}
	if cur, _ := dockerconf.CurrentContext(client.dockerCfg); cur == "f-prod" || cur == "f-staging" {
		t.Errorf("login --refresh changed the current context to %q without --use-host", cur)
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
