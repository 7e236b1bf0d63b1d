package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// fleet is gateways, each with a state directory of its own (the same
// CA and server certificate, copied as an operator would), sharing one
// PostgreSQL inventory, each in front of a daemon of its own: several
// Docker hosts.
type fleet struct {
	url      string // the store
	gateways []*gatewayEnv
	daemons  []*dockertest.Daemon // gateway i's daemon: the shared test daemon for 0, a private one for the others
	clis     []*dockgateCLI       // each host's CLI, on the store
	cli      *dockgateCLI         // the first host's CLI
	second   *dockgateCLI         // the second host's
	enroll   []string             // each gateway's enrollment listener
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	url := storetest.PostgresURL(t)
	return startFleetOn(t, url, url)
}

// startFleetOn starts the fleet on the store url; the second gateway
// reaches it at secondURL (the same database, perhaps through a proxy).
func startFleetOn(t *testing.T, url, secondURL string) *fleet {
	t.Helper()
	return startFleetWith(t, url, secondURL, nil, nil)
}

// startFleetWith starts the fleet as startFleetOn does, running prepare
// (may be nil) on both hosts' CLIs before the gateways start and giving
// gateway i the serve arguments args[i] too.
func startFleetWith(t *testing.T, url, secondURL string, prepare func(first, second *dockgateCLI), args [][]string) *fleet {
	t.Helper()
	var prep func([]*dockgateCLI)
	if prepare != nil {
		prep = func(clis []*dockgateCLI) { prepare(clis[0], clis[1]) }
	}
	return startFleetN(t, []string{url, secondURL}, prep, args)
}

// startFleetN starts len(urls) gateways, gateway 0 in front of the
// shared test daemon and every other in front of a private daemon of its
// own (stopped when t ends), gateway i on the store urls[i] (one database, perhaps through proxies),
// running prepare (may be nil) on every host's CLI before the gateways
// start and giving gateway i the serve arguments args[i] too.
func startFleetN(t *testing.T, urls []string, prepare func(clis []*dockgateCLI), args [][]string) *fleet {
	t.Helper()
	bin := dockertest.BuildDockgate(t)
	first := newDockgateCLI(t, bin, "DOCKGATE_STORE="+urls[0])
	first.run("init", "--insecure-no-passphrase")
	first.run("issue", "server", "gateway", "--san", "127.0.0.1", "--san", "localhost")
	certDir := filepath.Join(t.TempDir(), "admin")
	first.run("issue", "client", "admin", "--group", "admins", "--out", certDir)
	fl := &fleet{url: urls[0], clis: []*dockgateCLI{first}, cli: first}
	for _, u := range urls[1:] {
		cli := newDockgateCLI(t, bin, "DOCKGATE_STORE="+u)
		// Every other host gets the CA and the server certificate, as an
		// operator copies them; its inventory is the store, not a copy.
		for _, sub := range []string{"ca", "servers"} {
			err := filepath.WalkDir(filepath.Join(first.stateDir, sub), func(path string, e fs.DirEntry, err error) error {
				if err != nil || e.IsDir() {
					return err
				}
				rel, err := filepath.Rel(first.stateDir, path)
				if err == nil {
					copyFile(t, path, filepath.Join(cli.stateDir, rel))
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		fl.clis = append(fl.clis, cli)
	}
	if len(fl.clis) > 1 {
		fl.second = fl.clis[1]
	}
	if prepare != nil {
		prepare(fl.clis)
	}
	for i, cli := range fl.clis {
		// An enrollment port of its own: the default, 2386, is one per host.
		enroll := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
		serveArgs := []string{"--enroll-listen", enroll}
		if i < len(args) {
			serveArgs = append(serveArgs, args[i]...)
		}
		d := dockertest.ForTest(t)
		if i > 0 {
			d = dockertest.StartForTest(t, dockertest.Options{})
		}
		fl.daemons = append(fl.daemons, d)
		fl.gateways = append(fl.gateways, serveGateway(t, d, cli, certDir, serveArgs...))
		fl.enroll = append(fl.enroll, enroll)
	}
	return fl
}

// Three gateways on one PostgreSQL store: a `dockgate revoke` on the third
// host cuts the certificate's live `docker events` on all three gateways
// within 2 s, and all refuse it from then on, while the admin keeps
// working on each.
func TestFleetRevocationReachesEveryGateway(t *testing.T) {
	fl := startFleet3(t, storetest.PostgresURL(t))
	opsDir := filepath.Join(t.TempDir(), "ops")
	fl.cli.run("issue", "client", "ops", "--group", "admins", "--out", opsDir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exited := make([]chan time.Time, len(fl.gateways))
	lines := make(chan int, 64)
	for i, g := range fl.gateways {
		cmd := exec.CommandContext(ctx, "docker", "events", "--filter", "type=container", "--filter", "event=start",
			"--format", "{{.Actor.Attributes.name}}")
		cmd.Env = g.dockerEnv(opsDir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill() }()
		exited[i] = make(chan time.Time, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines <- i
			}
			cmd.Wait()
			exited[i] <- time.Now()
		}()
	}
	// The streams are live once each has shown an event; a container
	// started before the daemon registered a stream is not shown to it,
	// so start containers, on every host whose stream has shown none,
	// until every one has one.
	live := map[int]bool{}
	for n := 0; len(live) < len(fl.gateways); n++ {
		if n == 20 {
			t.Fatalf("docker events of ops showed no event on %d of the gateways", len(fl.gateways)-len(live))
		}
		for i, g := range fl.gateways {
			if !live[i] {
				g.docker("run", "--rm", "--network", "none", fl.daemons[i].Image(), "true")
			}
		}
		for drained := false; !drained; {
			select {
			case i := <-lines:
				live[i] = true
			case <-time.After(500 * time.Millisecond):
				drained = true
			}
		}
	}
	revoked := time.Now()
	fl.clis[2].run("revoke", "ops")
	for i, g := range fl.gateways {
		select {
		case at := <-exited[i]:
			if d := at.Sub(revoked); d > 2*time.Second {
				t.Errorf("gateway %s cut docker events %v after the revoke began, want within 2 s", g.addr, d)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("docker events of the revoked ops still runs on gateway %s 10 s later; logs:\n%s", g.addr, g.logs.String())
		}
		_, errOut, err := g.dockerAs(opsDir, nil, "ps")
		if err == nil {
			t.Fatalf("revoked ops can still run docker ps on gateway %s", g.addr)
		}
		checkRevokedAnswer(t, "ops", errOut)
		g.docker("ps") // the admin is unaffected
	}
}

// TestFleetRevocationPropagation measures, over 20 revocations written to
// the store, how long each of three gateways takes to cut a live events
// stream of the revoked certificate, from the start of the revoking
// transaction.
func TestFleetRevocationPropagation(t *testing.T) {
	const rounds = 20
	fl := startFleet3(t, storetest.PostgresURL(t))
	st, err := store.OpenWith(fl.cli.stateDir, store.Options{URL: fl.url})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var delays, commits []time.Duration
	for i := range rounds {
		dir := filepath.Join(t.TempDir(), "c")
		name := "c" + string(rune('a'+i))
		fl.cli.run("issue", "client", name, "--group", "admins", "--out", dir)
		cert, client := certClient(t, dir)
		var wg sync.WaitGroup
		cut := make([]time.Time, len(fl.gateways))
		for j, g := range fl.gateways {
			resp, err := client.Get("https://" + g.addr + "/events")
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /events as %s on %s: %v %v", name, g.addr, resp, err)
			}
			wg.Go(func() {
				io.Copy(io.Discard, bufio.NewReader(resp.Body))
				cut[j] = time.Now()
				resp.Body.Close()
			})
		}
		t0 := time.Now()
		if err := st.Revoke(context.Background(), cert.SerialNumber.Text(16), "key-compromise", t0); err != nil {
			t.Fatal(err)
		}
		commits = append(commits, time.Since(t0))
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: a stream of the revoked %s still runs 10 s later", i, name)
		}
		for j, at := range cut {
			d := at.Sub(t0)
			delays = append(delays, d)
			if d > 2*time.Second {
				t.Errorf("round %d: gateway %d cut %v after the revocation began, want within 2 s", i, j, d)
			}
		}
		client.CloseIdleConnections()
	}
	p50, p99, maxD := percentiles(delays)
	c50, c99, _ := percentiles(commits)
	t.Logf("revocation to cut, %d revocations x %d gateways: p50 %v, p99 %v, max %v (the revoking transaction alone: p50 %v, p99 %v)",
		rounds, len(fl.gateways), p50, p99, maxD, c50, c99)
}

// percentiles sorts ds and returns its median, 99th percentile and
// maximum, to 0.1 ms.
func percentiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	slices.Sort(ds)
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return r(ds[len(ds)/2]), r(ds[(len(ds)*99+99)/100-1]), r(ds[len(ds)-1])
}

// certClient is an HTTPS client with the certificate in dir, and that
// certificate.
func certClient(t *testing.T, dir string) (*x509.Certificate, *http.Client) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(dir, "ca.pem")))
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{pair}}}
	return pair.Leaf, &http.Client{Transport: tr}
}

// events opens a live GET /events on g with client and returns a channel
// closed when the gateway ends it.
func events(t *testing.T, g *gatewayEnv, client *http.Client) <-chan struct{} {
	t.Helper()
	resp, err := client.Get("https://" + g.addr + "/events")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /events on %s: %v %v", g.addr, resp, err)
	}
	ended := make(chan struct{})
	go func() {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		close(ended)
	}()
	return ended
}

// A gateway cut off from the store keeps serving with what it last read;
// the CLI on its host fails naming the store without its password; a
// revocation made meanwhile on another host is enforced by the cut-off
// gateway as soon as the store is back, without a restart.
func TestFleetGatewayCutOffFromTheStore(t *testing.T) {
	url := storetest.PostgresURL(t)
	proxied, proxy := storetest.ProxiedURL(t, url)
	fl := startFleetOn(t, url, proxied)
	a, b := fl.gateways[0], fl.gateways[1]
	opsDir := filepath.Join(t.TempDir(), "ops")
	fl.cli.run("issue", "client", "ops", "--group", "admins", "--out", opsDir)
	_, client := certClient(t, opsDir)
	onA, onB := events(t, a, client), events(t, b, client)

	proxy.Cut()
	b.docker("ps") // the admin, known before the outage, is served
	_, stderr, err := fl.second.exec("revoke", "ops")
	redacted := store.RedactURL(proxied)
	password, _ := mustPassword(t, proxied)
	if err == nil || !strings.Contains(stderr, "failed to reach the store "+redacted) || strings.Contains(stderr, password) {
		t.Errorf("revoke with the store away: %v, stderr %q; want a failure naming %s without the password", err, stderr, redacted)
	}
	waitUntil(t, "gateway B to notice the outage", func() bool {
		return strings.Contains(b.logs.String(), "failed to read the certificate inventory")
	})

	fl.cli.run("revoke", "ops") // on the first host, whose store is up
	select {
	case <-onA:
	case <-time.After(2 * time.Second):
		t.Fatal("gateway A did not cut the revoked ops within 2 s")
	}
	select {
	case <-onB:
		t.Fatal("gateway B, cut off from the store, cut ops: it cannot have read the revocation")
	default:
	}

	proxy.Restore()
	back := time.Now()
	select {
	case <-onB:
		t.Logf("gateway B cut ops %v after the store came back", time.Since(back).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		t.Fatalf("gateway B did not cut ops within 2 s of the store coming back; logs:\n%s", b.logs.String())
	}
	if _, errOut, err := b.dockerAs(opsDir, nil, "ps"); err == nil {
		t.Error("revoked ops can still run docker ps on gateway B")
	} else {
		checkRevokedAnswer(t, "ops", errOut)
	}
	if !strings.Contains(b.logs.String(), "the certificate inventory answers again") {
		t.Errorf("gateway B did not log the store's return:\n%s", b.logs.String())
	}
	if strings.Contains(b.logs.String(), password) {
		t.Error("gateway B logged the store's password")
	}
}

func mustPassword(t *testing.T, u string) (string, bool) {
	t.Helper()
	parsed, err := neturl.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := parsed.User.Password()
	if !ok || p == "" {
		t.Fatal("the test store's URL has no password: scripts/postgres sets one")
	}
	return p, ok
}

// A token made on one host enrolls at another host's gateway (which signs
// with its copy of the CA key, and spends the token in the shared store),
// and the certificate it yields is accepted by every gateway at once.
func TestFleetEnrollOnOneHostUseEverywhere(t *testing.T) {
	fl := startFleet(t)
	a, b := fl.gateways[0], fl.gateways[1]
	waitUntil(t, "gateway B's enrollment listener", func() bool {
		return strings.Contains(b.logs.String(), "enrollment listener ready")
	})
	// token create checks that this host (A) serves enrollment for the CA;
	// the token itself sends the client to B.
	fl.cli.extraEnv = append(fl.cli.extraEnv, "DOCKGATE_ENROLL_LISTEN="+fl.enroll[0])
	tok := strings.TrimSpace(fl.cli.run("token", "create", "dave", "--group", "admins", "--address", fl.enroll[1]))
	client := newDockgateCLI(t, fl.cli.bin)
	client.run("login", tok, "--context", "dave")
	if !strings.Contains(b.logs.String(), "event=enroll") && !strings.Contains(b.logs.String(), "dave") {
		t.Errorf("gateway B did not enroll dave; logs:\n%s", b.logs.String())
	}
	c, err := dockerconf.ReadContext(client.dockerCfg, "dave")
	if err != nil {
		t.Fatal(err)
	}
	daveDir := t.TempDir()
	for name, data := range map[string][]byte{"ca.pem": c.CA, "cert.pem": c.Cert, "key.pem": c.Key} {
		if err := os.WriteFile(filepath.Join(daveDir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []*gatewayEnv{b, a} {
		if stdout, stderr, err := g.dockerAs(daveDir, nil, "ps", "--format", "{{.ID}}"); err != nil {
			t.Errorf("dave, enrolled at B, on gateway %s: %v\n%s%s", g.addr, err, stdout, stderr)
		}
	}
	// The token was single-use everywhere: the store spent it.
	if out := fl.second.run("token", "ls"); !strings.Contains(out, "dave") || !strings.Contains(out, "used") {
		t.Errorf("token ls on host B after the enrollment:\n%s", out)
	}
}
