package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// The gateway's connections to dockerd: idle ones are given back after a
// burst, and a dockerd restart under load costs nothing once /readyz says
// the daemon is back. Both run on a private daemon, so that its socket
// serves the gateway alone and it can be killed.
func TestGatewayDaemonConnections(t *testing.T) {
	d := dockertest.StartForTest(t, dockertest.Options{})
	cfg := filepath.Join(t.TempDir(), "serve.yaml")
	// A short idle timeout, so the test need not wait a minute; per-client
	// caps out of the way of the load below, eight loops flat out as one
	// client.
	conf := "upstream:\n  idle_timeout: 3s\nlimits:\n  per_client: {rate: 1000000, burst: 1000000}\n"
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnvOn(t, d, "--config", cfg)
	client := g.apiClient(t)
	socket := strings.TrimPrefix(d.Host(), "unix://")

	t.Run("idle connections return to the floor", func(t *testing.T) {
		// The daemon's own test client may hold a connection too.
		others := connectedTo(t, socket) - g.idleDaemonConns(t)
		// Each events request holds a daemon connection until "until".
		const burst = 16
		until := strconv.FormatInt(time.Now().Add(2*time.Second).Unix(), 10)
		var wg sync.WaitGroup
		errs := make(chan error, burst)
		for range burst {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := client.Get("https://" + g.addr + "/v1.41/events?until=" + until)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if idle := g.idleDaemonConns(t); idle < burst {
			t.Fatalf("after the burst the pool holds %d idle connections, want at least %d", idle, burst)
		}
		deadline := time.Now().Add(3*time.Second + 10*time.Second) // the idle timeout, and slack for a loaded machine
		for {
			idle, atDaemon := g.idleDaemonConns(t), connectedTo(t, socket)
			if idle == 2 && atDaemon == others+2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("idle connections: %d in the pool, %d open at the daemon (%d not the gateway's); want the floor of 2",
					idle, atDaemon, others)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("dockerd restarted under load", func(t *testing.T) {
		var readyAt atomic.Int64 // when /readyz answered 200 after the restart
		var (
			mu        sync.Mutex
			afterOK   int
			afterFail []string
			before    atomic.Int64
		)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				paths := []string{"/_ping", "/v1.41/containers/json?all=1", "/v1.41/version"}
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					default:
					}
					start := time.Now()
					err := getOK(client, "https://"+g.addr+paths[(i+n)%len(paths)])
					ready := readyAt.Load()
					if ready == 0 || start.UnixNano() < ready {
						before.Add(1)
						if err != nil {
							time.Sleep(10 * time.Millisecond) // dockerd is down: do not spin
						}
						continue
					}
					mu.Lock()
					if err != nil {
						afterFail = append(afterFail, err.Error())
					} else {
						afterOK++
					}
					mu.Unlock()
				}
			}()
		}
		defer func() {
			close(stop)
			wg.Wait()
		}()
		waitUntil(t, "load before the kill", func() bool { return before.Load() > 200 })

		if err := d.Kill(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "/readyz to fail", func() bool { return g.readyz() != http.StatusOK })
		if err := d.Restart(t.Context()); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "/readyz to pass", func() bool { return g.readyz() == http.StatusOK })
		readyAt.Store(time.Now().UnixNano())

		for range 3 {
			g.docker("ps") // the command that failed 6/6 with a dead pool
		}
		waitUntil(t, "load after the restart", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return afterOK+len(afterFail) > 500
		})
		mu.Lock()
		defer mu.Unlock()
		if len(afterFail) > 0 {
			t.Errorf("%d of %d requests failed after /readyz was 200 again; the first: %s",
				len(afterFail), afterOK+len(afterFail), afterFail[0])
		}
		t.Logf("%d requests before /readyz passed again (some failed while dockerd was down), %d after, all of them answered", before.Load(), afterOK)
	})
}

// apiClient is an HTTPS client for the Docker API through the gateway,
// with the admin certificate, keeping connections alive.
func (g *gatewayEnv) apiClient(t *testing.T) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(readFile(t, filepath.Join(g.certDir, "ca.pem")))
	cert, err := tls.LoadX509KeyPair(filepath.Join(g.certDir, "cert.pem"), filepath.Join(g.certDir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", Certificates: []tls.Certificate{cert}},
		MaxIdleConnsPerHost: 32,
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func getOK(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("GET %s: reading the body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// readyz is the status of the gateway's /readyz, 0 when it did not answer.
func (g *gatewayEnv) readyz() int {
	resp, err := http.Get("http://" + g.admin + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// idleDaemonConns reads dockgate_upstream_idle_connections from /metrics.
func (g *gatewayEnv) idleDaemonConns(t *testing.T) int {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "dockgate_upstream_idle_connections "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("no dockgate_upstream_idle_connections in /metrics")
	return 0
}

// connectedTo counts the connected sockets accepted on the unix socket at
// path (dockerd's side of its clients' connections), from /proc/net/unix.
func connectedTo(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path; St 03 is connected.
		fields := strings.Fields(sc.Text())
		if len(fields) == 8 && fields[5] == "03" && fields[7] == path {
			n++
		}
	}
	return n
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
