package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// startFleet3 runs three gateways, named g0, g1 and g2, on the one store
// url.
func startFleet3(t *testing.T, url string) *fleet {
	t.Helper()
	var args [][]string
	for i := range 3 {
		args = append(args, []string{"--host-name", fmt.Sprintf("g%d", i)})
	}
	fl := startFleetN(t, []string{url, url, url}, nil, args)
	for _, g := range fl.gateways {
		waitUntil(t, "the host registered and enrollment ready", func() bool {
			return strings.Contains(g.logs.String(), "host registered") && strings.Contains(g.logs.String(), "enrollment listener ready")
		})
	}
	fl.cli.extraEnv = append(fl.cli.extraEnv, "DOCKGATE_ENROLL_LISTEN="+fl.enroll[0])
	return fl
}

// Three gateways on one store: one login writes a docker context per
// host, and each works with the docker CLI, reaching its own gateway
// (each host's daemon holds the container made through its context, and
// only that one).
func TestFleet3LoginOnceThreeContexts(t *testing.T) {
	fl := startFleet3(t, storetest.PostgresURL(t))
	tok := strings.TrimSpace(fl.cli.run("token", "create", "erin", "--group", "admins", "--address", fl.enroll[1]))
	client := newDockgateCLI(t, fl.cli.bin)
	out := client.run("login", tok)
	for i, g := range fl.gateways {
		name := fmt.Sprintf("g%d", i)
		if !strings.Contains(out, `docker context "`+name+`" written`) {
			t.Errorf("login:\n%s\nwant context %s written", out, name)
		}
		c, err := dockerconf.ReadContext(client.dockerCfg, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(c.Host, ":"+portOf(g.addr)) {
			t.Errorf("context %s points at %s, want gateway %s", name, c.Host, g.addr)
		}
		cmd := exec.Command("docker", "--context", name, "create", "--name", "erin-on-"+name, "--network", "none", g.d.Image(), "true")
		cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+client.dockerCfg)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("docker --context %s create: %v\n%s", name, err, b)
		}
	}
	if cur, err := dockerconf.CurrentContext(client.dockerCfg); err != nil || cur != "g1" {
		t.Errorf("current context %q, %v; want g1, where erin enrolled", cur, err)
	}
	// Each host's daemon has the container made through its context and
	// none of the others'.
	for i, d := range fl.daemons {
		names := strings.Fields(d.Docker(t, "ps", "-a", "--format", "{{.Names}}"))
		for j := range fl.gateways {
			name := fmt.Sprintf("erin-on-g%d", j)
			if has := slices.Contains(names, name); has != (i == j) {
				t.Errorf("daemon of g%d: containers %q; want %s there: %v", i, names, name, i == j)
			}
		}
	}
}

// One token presented at the same moment at all three gateways'
// enrollment listeners: exactly one enrollment succeeds, the others are
// told the token is used, and the store holds exactly one certificate for
// the name.
func TestFleet3TokenRace(t *testing.T) {
	url := storetest.PostgresURL(t)
	fl := startFleet3(t, url)
	st, err := store.OpenWith(fl.cli.stateDir, store.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for round := range 5 {
		name := fmt.Sprintf("race%d", round)
		tok, err := enroll.ParseToken(strings.TrimSpace(fl.cli.run("token", "create", name, "--group", "admins", "--address", fl.enroll[0])))
		if err != nil {
			t.Fatal(err)
		}
		start := make(chan struct{})
		errs := make([]error, len(fl.enroll))
		var wg sync.WaitGroup
		for i, addr := range fl.enroll {
			at := tok
			at.Addresses = []string{addr}
			wg.Go(func() {
				<-start
				_, errs[i] = enroll.Login(context.Background(), at, enroll.LoginOptions{})
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, enroll.ErrTokenUsed):
				t.Errorf("round %d: enrollment at gateway %d failed, but not as a used token: %v", round, i, err)
			}
		}
		if won != 1 {
			t.Errorf("round %d: %d of %d concurrent enrollments with one token succeeded, want exactly 1 (errors %v)", round, won, len(errs), errs)
		}
		certs, err := st.CertsByName(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != 1 {
			t.Errorf("round %d: the store holds %d certificates for %s, want exactly 1: %+v", round, len(certs), name, certs)
		}
	}
}

// pgCluster is a PostgreSQL server of the test's own, started with
// scripts/postgres, which the test may stop and start again on its port.
type pgCluster struct {
	t   *testing.T
	dir string
	url string
}

// startPGCluster starts a dedicated cluster. It needs root (the server
// runs as the user postgres): outside CI a test not run as root skips.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if os.Geteuid() != 0 {
		if ci := strings.ToLower(os.Getenv("CI")); ci != "" && ci != "0" && ci != "false" {
			t.Fatal("a dedicated PostgreSQL cluster needs root, and CI must run this test")
		}
		t.Skip("a dedicated PostgreSQL cluster needs root")
	}
	// The user postgres must reach the directory: t.TempDir is private.
	dir, err := os.MkdirTemp("", "dockgate-pg-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &pgCluster{t: t, dir: dir}
	t.Cleanup(func() {
		c.script("stop")
		os.RemoveAll(dir)
	})
	out := c.script("start")
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "export "+storetest.EnvURL+"="); ok {
			c.url = strings.Trim(v, "'")
		}
	}
	if c.url == "" {
		t.Fatalf("scripts/postgres start printed no URL:\n%s", out)
	}
	return c
}

func (c *pgCluster) script(verb string) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(c.t), "scripts", "postgres"), verb, c.dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		c.t.Fatalf("scripts/postgres %s: %v\n%s", verb, err, stderr.String())
	}
	return string(out)
}

// stop stops the server (fast shutdown: sessions are cut).
func (c *pgCluster) stop() { c.script("stop") }

// start starts the stopped server again on the port it had.
func (c *pgCluster) start() {
	c.t.Helper()
	port, err := os.ReadFile(filepath.Join(c.dir, "port"))
	if err != nil {
		c.t.Fatal(err)
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		c.t.Fatal("pg_ctl not found under /usr/lib/postgresql")
	}
	pgctl := bins[len(bins)-1]
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %s -k %s -c fsync=off -c max_connections=200",
		strings.TrimSpace(string(port)), filepath.Join(c.dir, "socket"))
	cmd := exec.Command("runuser", "-u", "postgres", "--", pgctl, "-D", filepath.Join(c.dir, "data"),
		"-l", filepath.Join(c.dir, "server.log"), "-w", "-t", "60", "-o", opts, "start")
	if b, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, b, log)
	}
}

// repoRoot is the module's root, where scripts/ is.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(dir) // the tests run in e2e/
}

// PostgreSQL stopped and started again while clients use all three
// gateways without pause: not one request that does not need the store
// (GET /_ping, /version, /containers/json, each on a new TLS connection)
// fails; a revoke during the outage fails naming the store without its
// password; after the restart a revoke works and every gateway enforces
// it.
func TestFleet3PostgresRestartUnderLoad(t *testing.T) {
	pg := startPGCluster(t)
	fl := startFleet3(t, pg.url)
	opsDir := filepath.Join(t.TempDir(), "ops")
	fl.cli.run("issue", "client", "ops", "--group", "admins", "--out", opsDir)
	_, ops := certClient(t, opsDir)
	_, admin := certClient(t, fl.gateways[0].certDir)
	admin.Transport.(*http.Transport).DisableKeepAlives = true

	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg               sync.WaitGroup
		served, failures atomic.Int64
		mu               sync.Mutex
		firstFailures    []string
	)
	for _, g := range fl.gateways {
		for _, path := range []string{"/_ping", "/version", "/containers/json"} {
			wg.Go(func() {
				for ctx.Err() == nil {
					resp, err := admin.Get("https://" + g.addr + path)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == http.StatusOK {
							served.Add(1)
							continue
						}
						err = fmt.Errorf("status %s", resp.Status)
					}
					failures.Add(1)
					mu.Lock()
					if len(firstFailures) < 10 {
						firstFailures = append(firstFailures, fmt.Sprintf("GET %s on %s: %v", path, g.addr, err))
					}
					mu.Unlock()
				}
			})
		}
	}
	defer func() { cancel(); wg.Wait() }()
	waitUntil(t, "requests served before the outage", func() bool { return served.Load() >= 30 })

	pg.stop()
	for _, g := range fl.gateways {
		waitUntil(t, "gateway "+g.addr+" to notice the outage", func() bool {
			return strings.Contains(g.logs.String(), "failed to read the certificate inventory")
		})
	}
	during := served.Load()
	_, stderr, err := fl.clis[2].exec("revoke", "ops")
	password, _ := mustPassword(t, pg.url)
	if want := "failed to reach the store " + store.RedactURL(pg.url); err == nil || !strings.Contains(stderr, want) || strings.Contains(stderr, password) {
		t.Errorf("revoke with the store stopped: %v, stderr %q; want a failure naming %s without the password", err, stderr, store.RedactURL(pg.url))
	}
	waitUntil(t, "requests served during the outage", func() bool { return served.Load() >= during+30 })

	pg.start()
	for _, g := range fl.gateways {
		waitUntil(t, "gateway "+g.addr+" to read the store again", func() bool {
			return strings.Contains(g.logs.String(), "the certificate inventory answers again")
		})
	}
	after := served.Load()
	waitUntil(t, "requests served after the restart", func() bool { return served.Load() >= after+30 })
	cancel()
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Errorf("%d of %d requests that need no store failed across the restart: %s", n, n+served.Load(), strings.Join(firstFailures, "; "))
	}
	t.Logf("%d requests served through three gateways across the PostgreSQL restart", served.Load())

	var streams []<-chan struct{}
	for _, g := range fl.gateways {
		streams = append(streams, events(t, g, ops))
	}
	fl.clis[2].run("revoke", "ops")
	for i, ended := range streams {
		select {
		case <-ended:
		case <-time.After(2 * time.Second):
			t.Errorf("gateway %d did not cut the revoked ops within 2 s of a revoke after the restart; logs:\n%s", i, fl.gateways[i].logs.String())
		}
		if _, errOut, err := fl.gateways[i].dockerAs(opsDir, nil, "ps"); err == nil {
			t.Errorf("revoked ops can still run docker ps on gateway %d", i)
		} else {
			checkRevokedAnswer(t, "ops", errOut)
		}
	}
}
