package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

func wiringStore(t *testing.T, passphrase []byte) (*store.Store, *authority.Authority) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	auth, err := authority.Init(st, authority.InitOptions{CN: "wiring CA", Passphrase: passphrase})
	if err != nil {
		t.Fatal(err)
	}
	return st, auth
}

func TestServeWithoutPassphraseDisablesEnrollment(t *testing.T) {
	st, _ := wiringStore(t, []byte("secret passphrase"))
	cfg := config.Default()
	tests := []struct {
		name    string
		env     map[string]string
		file    string
		enabled bool
		log     string
	}{
		{"no passphrase", nil, "", false, "enrollment and certificate renewal are disabled: the CA key is encrypted and no passphrase was given"},
		{"wrong passphrase", map[string]string{passphraseEnv: "nope"}, "", false, "enrollment and certificate renewal are disabled: wrong CA passphrase"},
		{"passphrase from the environment", map[string]string{passphraseEnv: "secret passphrase"}, "", true, ""},
		{"passphrase file", nil, "pass.txt", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				getenv: func(k string) string { return tt.env[k] },
				askPassword: func(string) ([]byte, error) {
					t.Fatal("serve asked for a passphrase on the terminal")
					return nil, nil
				}}
			f := &enrollFlags{}
			if tt.file != "" {
				f.passphraseFile = filepath.Join(t.TempDir(), tt.file)
				os.WriteFile(f.passphraseFile, []byte("secret passphrase\n"), 0o600)
			}
			e := a.prepareEnrollment(&cfg, st, f, slog.New(slog.NewTextHandler(&logs, nil)))
			if got := e.local() != nil; got != tt.enabled {
				t.Errorf("renewal handler present = %v, want %v", got, tt.enabled)
			}
			if lines := strings.Count(logs.String(), "\n"); tt.log != "" && (lines != 1 || !strings.Contains(logs.String(), tt.log)) {
				t.Errorf("log = %q, want one line saying %q", logs.String(), tt.log)
			}
			if tt.log == "" && logs.Len() != 0 {
				t.Errorf("unexpected log %q", logs.String())
			}
		})
	}
}

func TestServeRenewsItsOwnCertificate(t *testing.T) {
	st, auth := wiringStore(t, nil)
	// Issued 80 s ago for 90 s: two thirds of its life are over.
	old, err := auth.Issue(context.Background(), authority.Request{Kind: pki.KindServer, Name: "gateway",
		SANs: []string{"127.0.0.1"}, Validity: 90 * time.Second, Now: time.Now().Add(-80 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Upstream.URL = "unix://" + filepath.Join(t.TempDir(), "none.sock")
	cfg.Enroll.Enabled = false
	dir := authority.BundleDir(st.Dir(), pki.KindServer, "gateway")
	src := gateway.FileSource{CACert: authority.CACertPath(st.Dir()), ServerCert: filepath.Join(dir, "cert.pem"),
		ServerKey: filepath.Join(dir, "key.pem"), Config: func() (*config.Config, error) { return &cfg, nil }}
	g, err := gateway.New(gateway.Options{Load: src.Load})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.ServeListeners(ctx, ln, nil); close(done) }()
	defer func() { cancel(); <-done }()

	a := &app{getenv: func(string) string { return "" }, stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
	var logs syncWriter
	e := a.prepareEnrollment(&cfg, st, &enrollFlags{}, slog.New(slog.NewTextHandler(&logs, nil)))
	e.start(ctx, g)

	oldSerial := pki.SerialHex(old.Cert.SerialNumber)
	deadline := time.Now().Add(20 * time.Second)
	for {
		presented := presentedSerial(t, ln.Addr().String())
		if presented != oldSerial {
			onDisk, err := readCertFile(src.ServerCert)
			if err != nil || pki.SerialHex(onDisk.SerialNumber) != presented {
				t.Fatalf("the gateway presents %s, the bundle holds %v (%v)", presented, onDisk, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still presents %s; log:\n%s", oldSerial, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "server certificate: renewed") {
		t.Errorf("no log line for the renewal:\n%s", logs.String())
	}
}

// presentedSerial is the serial of the certificate the server at addr
// presents; with TLS 1.3 the client's side of the handshake completes
// before the gateway asks for a client certificate.
func presentedSerial(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("dial the gateway: %v", err)
	}
	defer conn.Close()
	return pki.SerialHex(conn.ConnectionState().PeerCertificates[0].SerialNumber)
}

// syncWriter is a log destination safe for several goroutines.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
