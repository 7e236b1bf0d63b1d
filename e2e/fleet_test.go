package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// fleet is two gateways, each with a state directory of its own (the same
// CA and server certificate, copied as an operator would), sharing one
// PostgreSQL inventory, in front of one test daemon.
type fleet struct {
	url      string // the store
	gateways []*gatewayEnv
	cli      *dockgateCLI // the first host's CLI, on the store
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	url := storetest.PostgresURL(t)
	d := dockertest.ForTest(t)
	bin := dockertest.BuildDockgate(t)
	first := newDockgateCLI(t, bin, "DOCKGATE_STORE="+url)
	first.run("init", "--insecure-no-passphrase")
	first.run("issue", "server", "gateway", "--san", "127.0.0.1", "--san", "localhost")
	certDir := filepath.Join(t.TempDir(), "admin")
	first.run("issue", "client", "admin", "--group", "admins", "--out", certDir)
	second := newDockgateCLI(t, bin, "DOCKGATE_STORE="+url)
	// The second host gets the CA and the server certificate, as an
	// operator copies them; its inventory is the store, not a copy.
	for _, sub := range []string{"ca", "servers"} {
		err := filepath.WalkDir(filepath.Join(first.stateDir, sub), func(path string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, err := filepath.Rel(first.stateDir, path)
			if err == nil {
				copyFile(t, path, filepath.Join(second.stateDir, rel))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	fl := &fleet{url: url, cli: first}
	for _, cli := range []*dockgateCLI{first, second} {
		fl.gateways = append(fl.gateways, serveGateway(t, d, cli, certDir))
	}
	return fl
}

// Two gateways on one PostgreSQL store: a `dockgate revoke` on one host
// cuts the certificate's live `docker events` on both gateways within 2 s,
// and both refuse it from then on, while the admin keeps working on both.
func TestFleetRevocationReachesEveryGateway(t *testing.T) {
	fl := startFleet(t)
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
	// Both streams are live once each has shown an event; a container
	// started before the daemon registered a stream is not shown to it,
	// so start containers until both have one.
	live := map[int]bool{}
	for n := 0; len(live) < len(fl.gateways); n++ {
		if n == 20 {
			t.Fatalf("docker events of ops showed no event on %d of the gateways", len(fl.gateways)-len(live))
		}
		fl.gateways[0].docker("run", "--rm", "--network", "none", fl.gateways[0].d.Image(), "true")
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
	fl.cli.run("revoke", "ops")
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
// the store, how long each gateway takes to cut a live events stream of
// the revoked certificate, from the start of the revoking transaction.
func TestFleetRevocationPropagation(t *testing.T) {
	const rounds = 20
	fl := startFleet(t)
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
