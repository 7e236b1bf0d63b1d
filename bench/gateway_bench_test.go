package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/pki"
)

// The in-process benchmarks run the gateway package, a client and an
// upstream in one process so that a CPU profile shows the gateway's own
// cost. Every goroutine carries a pprof label side=gateway|client|upstream
// (goroutines inherit labels from the one that starts them), so:
//
//	go test ./bench -run '^$' -bench BenchmarkGatewayPing -benchtime 5s -cpuprofile /tmp/gw.prof
//	go tool pprof -tagfocus side=gateway -top /tmp/gw.prof
//
// The upstream is the daemon at $DOCKGATE_TEST_DOCKER_HOST when set, else
// a stand-in that answers like dockerd 20.10 (same /_ping headers, a
// container list of the same size), so that the profile is about the
// gateway and not about dockerd.

func BenchmarkGatewayPing(b *testing.B) { benchmarkGateway(b, pathPing, load.KeepAlive) }

func BenchmarkGatewayList(b *testing.B) { benchmarkGateway(b, pathList, load.KeepAlive) }

// BenchmarkGatewayNewConn is GET /_ping with a full TLS handshake each.
func BenchmarkGatewayNewConn(b *testing.B) { benchmarkGateway(b, pathPing, load.NewConnection) }

func benchmarkGateway(b *testing.B, path string, mode load.Mode) {
	upstream := benchUpstream(b)
	addr, clientTLS := startBenchGateway(b, upstream)
	ep := load.Endpoint{Name: "gateway", BaseURL: "https://" + addr, TLS: clientTLS}
	// In keep-alive mode, one connection per parallel client.
	transport := load.NewTransport(ep, mode, 64)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	url := ep.BaseURL + path
	b.ReportAllocs()
	// 4 x GOMAXPROCS clients: c=8 on the 2-core bench machine.
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels("side", "client")))
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("GET %s: %s", path, resp.Status)
				return
			}
		}
	})
}

// benchUpstream returns the upstream URL: the shared test daemon, or a
// stand-in on a unix socket.
func benchUpstream(b *testing.B) string {
	if host := os.Getenv(dockertest.EnvDockerHost); host != "" {
		return host
	}
	dir, err := os.MkdirTemp("/tmp", "dgbench-") // unix socket paths must stay short
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "docker.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: fakeDockerd()}
	ctx := pprof.WithLabels(context.Background(), pprof.Labels("side", "upstream"))
	go pprof.Do(ctx, pprof.Labels(), func(context.Context) { srv.Serve(ln) })
	b.Cleanup(func() { srv.Close() })
	return "unix://" + socket
}

// fakeDockerd answers /_ping with dockerd 20.10's headers and
// /containers/json with a list of the size the bench creates.
func fakeDockerd() http.Handler {
	list := []byte("[" + strings.TrimSuffix(strings.Repeat(fakeContainer+",", 20), ",") + "]")
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Api-Version", "1.41")
		h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Docker-Experimental", "false")
		h.Set("Ostype", "linux")
		h.Set("Pragma", "no-cache")
		h.Set("Server", "Docker/20.10.24+dfsg1 (linux)")
		io.WriteString(w, "OK")
	})
	mux.HandleFunc("/containers/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("Content-Type", "application/json")
		w.Write(list)
	})
	return mux
}

// fakeContainer is one entry of dockerd's container list as the bench's
// containers produce it (about 700 bytes).
const fakeContainer = `{"Id":"4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b","Names":["/bench-00"],` +
	`"Image":"dockgate-test/busybox:latest","ImageID":"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",` +
	`"Command":"sh -c 'echo benchmark container bench-00'","Created":1795000000,"Ports":[],` +
	`"Labels":{"com.docker.compose.project":"dockgate-bench","com.docker.compose.service":"bench-00"},` +
	`"State":"created","Status":"Created",` +
	`"HostConfig":{"NetworkMode":"none"},"NetworkSettings":{"Networks":{"none":{"IPAMConfig":null,"Links":null,` +
	`"Aliases":null,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"",` +
	`"GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"MacAddress":"","DriverOpts":null}}},"Mounts":[]}`

// startBenchGateway runs the gateway in this process with ECDSA P-256
// certificates, the default client rules and log level info.
func startBenchGateway(b *testing.B, upstream string) (string, *tls.Config) {
	now := time.Now()
	caKey, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	ca, err := pki.NewCA("bench CA", caKey, time.Hour, now)
	if err != nil {
		b.Fatal(err)
	}
	issue := func(req pki.LeafRequest) tls.Certificate {
		key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
		if err != nil {
			b.Fatal(err)
		}
		req.PublicKey, req.Now = key.Public(), now
		cert, err := ca.Issue(req)
		if err != nil {
			b.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}
	}
	server := issue(pki.LeafRequest{Kind: pki.KindServer, Name: gatewayServerName, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	client := issue(pki.LeafRequest{Kind: pki.KindClient, Name: clientName, Groups: []string{clientGroup}})

	cfg := config.Default()
	cfg.Upstream.URL = upstream
	cfg.AdminListen = "off"
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	g, err := gateway.New(gateway.Options{Load: func() (*gateway.Material, error) {
		return &gateway.Material{ServerCert: server, CA: gateway.NewCA(ca.Cert), Config: &cfg}, nil
	}})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go pprof.Do(ctx, pprof.Labels("side", "gateway"), func(ctx context.Context) {
		served <- g.ServeListeners(ctx, ln, nil)
	})
	b.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			b.Errorf("gateway: %v", err)
		}
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	clientTLS := &tls.Config{Certificates: []tls.Certificate{client}, RootCAs: pool}
	if err := pingOnce(ln.Addr().String(), clientTLS); err != nil {
		b.Fatal(fmt.Errorf("gateway does not answer: %w", err))
	}
	return ln.Addr().String(), clientTLS
}

// BenchmarkGatewayIdleConn opens b.N mTLS connections that each complete
// one GET /_ping and then stay idle, and reports the memory the process
// holds per connection after a GC: goroutine stacks and heap (client-side
// tls.Conn objects included, a few KiB each). Run it with a fixed count:
//
//	go test ./bench -run '^$' -bench GatewayIdleConn -benchtime 1000x -memprofile /tmp/idle.prof
func BenchmarkGatewayIdleConn(b *testing.B) {
	addr, clientTLS := startBenchGateway(b, benchUpstream(b))
	before := memAfterGC()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: clientTLS}
	conns := make([]net.Conn, 0, b.N)
	defer func() { closeAll(conns) }()
	for range b.N {
		conn, err := openOne(context.Background(), dialer, addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, conn)
	}
	b.StopTimer()
	time.Sleep(time.Second) // let the gateway's goroutines park
	after := memAfterGC()
	n := float64(b.N)
	b.ReportMetric(float64(after.StackInuse-before.StackInuse)/n, "stack-B/conn")
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n, "heap-B/conn")
	b.ReportMetric(float64(after.Sys-before.Sys)/n, "sys-B/conn")
}

func memAfterGC() runtime.MemStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}
