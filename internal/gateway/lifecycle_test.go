package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

func TestDrainCutsStreamsAtDeadline(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) { c.Limits.ShutdownTimeout = 300 * time.Millisecond })
	conn, br := tg.upgradeExec(t, tg.pki.client("alice", "admins"), true)
	defer conn.Close()
	start := time.Now()
	tg.cancel()
	select {
	case err := <-tg.done:
		if err != nil {
			t.Fatalf("ServeListeners: %v", err)
		}
		tg.done <- nil // for the cleanup's stop()
	case <-time.After(5 * time.Second):
		t.Fatal("drain did not end")
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("drain ended after %v, before the 300ms deadline, with a stream open", d)
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadAll(br); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("hijacked stream still open after the drain deadline")
		}
	}
}

func TestFileChangeTriggersReload(t *testing.T) {
	dir := t.TempDir()
	p := newTestPKI(t)
	write := func(name string, data []byte) {
		t.Helper()
		tmp := filepath.Join(dir, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	writeServer := func(c tls.Certificate) {
		write("cert.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Leaf.Raw}))
		der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		write("key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Cert.Raw}))
	writeServer(p.server())
	socket := filepath.Join(t.TempDir(), "docker.sock")
	startFakeDocker(t, socket)
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + socket
	src := FileSource{
		CACert: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "cert.pem"), ServerKey: filepath.Join(dir, "key.pem"),
		Config: func() (*config.Config, error) { return &cfg, nil },
	}
	g, err := New(Options{Load: src.Load, WatchFiles: src.Files(), WatchPoll: 20 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.ServeListeners(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })

	before := g.material.Load()
	// A corrupt certificate: the reload fails and the old material stays.
	// The watch takes its first look when its goroutine starts, which may
	// be after a write: the file is written again, a byte longer each
	// time, until a reload has tried it.
	failed := counterValue(t, g.metrics.reloads.WithLabelValues("error"))
	corrupt := []byte("not a certificate")
	waitFor(t, "the watch to try the corrupt file", func() bool {
		corrupt = append(corrupt, '\n')
		write("cert.pem", corrupt)
		return counterValue(t, g.metrics.reloads.WithLabelValues("error")) > failed
	})
	if g.material.Load() != before {
		t.Fatal("a corrupt certificate file replaced the material")
	}
	next := p.server()
	writeServer(next)
	waitFor(t, "the changed certificate files to be reloaded", func() bool {
		return g.material.Load().ServerCert.Leaf.SerialNumber.Cmp(next.Leaf.SerialNumber) == 0
	})
}

func TestTCPUpstreamOverMutualTLS(t *testing.T) {
	// A daemon reached over TCP with its own CA and a client certificate.
	up := newTestPKI(t)
	serverCert := up.server()
	clientCert := up.client("gateway-upstream")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    up.pool(),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "OK-"+r.TLS.PeerCertificates[0].Subject.CommonName)
	})
	mux.HandleFunc("/v1.41/exec/{id}/start", serveFakeExec)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	files := map[string][]byte{
		"ca.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: up.ca.Cert.Raw}),
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clientCert.Leaf.Raw}),
	}
	der, err := x509.MarshalPKCS8PrivateKey(clientCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	files["key.pem"] = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for name, data := range files {
		os.WriteFile(filepath.Join(dir, name), data, 0o600)
	}
	tg := startTestGateway(t, func(c *config.Config) {
		c.Upstream = config.Upstream{URL: "tcp://" + ln.Addr().String(),
			TLSCA: filepath.Join(dir, "ca.pem"), TLSCert: filepath.Join(dir, "cert.pem"), TLSKey: filepath.Join(dir, "key.pem")}
	})
	// The upstream cert is for 127.0.0.1/localhost, like a dockerd set up by dockerd-config.
	resp, err := tg.httpClient(tg.pki.client("alice", "admins")).Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "OK-gateway-upstream" {
		t.Fatalf("ping over TLS upstream = %s %q", resp.Status, body)
	}
	conn, br := tg.upgradeExec(t, tg.pki.client("alice", "admins"), true)
	defer conn.Close()
	io.WriteString(conn, "tls-data")
	conn.CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	out, _ := io.ReadAll(br)
	if string(out) != "echo:tls-data" {
		t.Fatalf("hijacked stream over TLS upstream = %q", out)
	}
}

func TestConfigChangedTriggersReload(t *testing.T) {
	dir := t.TempDir()
	p := newTestPKI(t)
	server := p.server()
	der, err := x509.MarshalPKCS8PrivateKey(server.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"ca.pem":   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Cert.Raw}),
		"cert.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Leaf.Raw}),
		"key.pem":  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	socket := filepath.Join(t.TempDir(), "docker.sock")
	startFakeDocker(t, socket)
	// The config a store would hand out: the latest version, switched
	// under a lock as a push would.
	var mu sync.Mutex
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + socket
	src := FileSource{
		CACert: filepath.Join(dir, "ca.pem"), ServerCert: filepath.Join(dir, "cert.pem"), ServerKey: filepath.Join(dir, "key.pem"),
		Config: func() (*config.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			c := cfg
			return &c, nil
		},
	}
	changed := make(chan struct{}, 1)
	g, err := New(Options{Load: src.Load, ConfigChanged: changed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.ServeListeners(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); <-done })

	if _, ok := g.material.Load().Config.MatchClient("ci", nil); ok {
		t.Fatal("ci matches a clients: entry before the change")
	}
	mu.Lock()
	cfg.Clients = append(cfg.Clients, config.ClientRule{CN: "ci", Role: "read-only"})
	mu.Unlock()
	changed <- struct{}{}
	waitFor(t, "the changed config to be reloaded", func() bool {
		role, ok := g.material.Load().Config.MatchClient("ci", nil)
		return ok && role == "read-only"
	})
}
