package store

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store/storetest"
)

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"postgres://dockgate:hunter2@db:5432/dg?sslmode=verify-full", "postgres://dockgate:xxxxx@db:5432/dg?sslmode=verify-full"},
		{"postgres://db/dg?password=hunter2&user=x", "postgres://db/dg?password=xxxxx&user=x"},
		{"postgres://dockgate@db/dg", "postgres://dockgate@db/dg"},
		{"postgres://a:hunter2@[::1/x", "(a store URL that is not SCHEME://...)"},
		{"host=db user=dockgate password=hunter2", "(a store URL that is not SCHEME://...)"},
		{"postgres:dockgate:hunter2@db", "(a store URL that is not SCHEME://...)"},
		{"mysql://root:hunter2@db/x", "mysql://root:xxxxx@db/x"},
	} {
		if got := RedactURL(tt.in); got != tt.want || strings.Contains(got, "hunter2") {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	_, err := OpenWith(t.TempDir(), Options{URL: "postgres://dockgate:hunter2@127.0.0.1:1/dg"})
	if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "hunter2") ||
		!strings.Contains(err.Error(), "postgres://dockgate:xxxxx@127.0.0.1:1/dg") {
		t.Errorf("OpenWith(unreachable) error = %v; want ErrUnreachable naming the store without its password", err)
	}
}

func TestSQLiteHasNoChanges(t *testing.T) {
	if ch := openTest(t, t.TempDir()).Changes(context.Background(), nil); ch != nil {
		t.Error("Changes() on SQLite is not nil")
	}
}

func receive(t *testing.T, ch <-chan struct{}, within time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no change announced within %s: %s", within, what)
	}
}

// Every handle on a shared database hears of a revocation another handle
// commits, through LISTEN/NOTIFY, well within the gateway's 2 s promise.
func TestChangesAnnounceRevocations(t *testing.T) {
	u := storetest.PostgresURL(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer, err := OpenWith(t.TempDir(), Options{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	alice := testCert(randomSerial(), KindClient, "alice")
	if err := writer.AddCert(ctx, alice); err != nil {
		t.Fatal(err)
	}
	var listeners []<-chan struct{}
	for range 3 {
		s, err := OpenWith(t.TempDir(), Options{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ch := s.Changes(ctx, nil)
		receive(t, ch, 5*time.Second, "the first connection")
		listeners = append(listeners, ch)
	}
	if err := writer.Revoke(ctx, alice.Serial, "", epoch); err != nil {
		t.Fatal(err)
	}
	for _, ch := range listeners {
		receive(t, ch, 2*time.Second, "the revocation")
	}
	// A failed write announces nothing.
	if err := writer.Revoke(ctx, alice.Serial, "", epoch); !errors.Is(err, ErrAlreadyRevoked) {
		t.Fatalf("second Revoke() error = %v", err)
	}
	for _, ch := range listeners {
		select {
		case <-ch:
			t.Error("a refused revocation was announced")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// A handle whose database goes away fails its reads naming the store,
// and when the database returns it reads again without being reopened,
// hears of it at once, and sees the revocation made while it was cut off.
func TestPostgresOutageAndReturn(t *testing.T) {
	direct := storetest.PostgresURL(t)
	proxied, proxy := storetest.ProxiedURL(t, direct)
	p, err := url.Parse(proxied)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	admin, err := OpenWith(t.TempDir(), Options{URL: direct})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	gw, err := OpenWith(t.TempDir(), Options{URL: p.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	alice := testCert(randomSerial(), KindClient, "alice")
	if err := admin.AddCert(ctx, alice); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var listenErrs []error
	changes := gw.Changes(ctx, func(err error) { mu.Lock(); listenErrs = append(listenErrs, err); mu.Unlock() })
	receive(t, changes, 5*time.Second, "the first connection")
	if inv, err := gw.ClientStandings(ctx); err != nil || inv[alice.Serial].Refusal(epoch) != "" {
		t.Fatalf("ClientStandings() = %v, %v; want alice valid", inv, err)
	}

	proxy.Cut()
	rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = gw.ClientStandings(rctx)
	rcancel()
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), RedactURL(p.String())) {
		t.Fatalf("ClientStandings() through a cut link error = %v; want ErrUnreachable naming the store", err)
	}
	if pw, _ := p.User.Password(); pw != "" && strings.Contains(err.Error(), pw) {
		t.Errorf("the error shows the password: %v", err)
	}
	if err := gw.Revoke(ctx, alice.Serial, "", epoch); !errors.Is(err, ErrUnreachable) {
		t.Errorf("Revoke() through a cut link error = %v; want ErrUnreachable", err)
	}
	if err := admin.Revoke(ctx, alice.Serial, "key-compromise", epoch); err != nil {
		t.Fatal(err)
	}

	proxy.Restore()
	receive(t, changes, 5*time.Second, "the reconnection")
	inv, err := gw.ClientStandings(ctx)
	if err != nil || inv[alice.Serial].Refusal(epoch) != StatusRevoked {
		t.Fatalf("ClientStandings() after the return = %v, %v; want alice revoked", inv, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(listenErrs) != 1 || !errors.Is(listenErrs[0], ErrUnreachable) || !strings.Contains(listenErrs[0].Error(), RedactURL(p.String())) {
		t.Errorf("listen errors = %v; want one, naming the store", listenErrs)
	}
	for _, err := range listenErrs {
		if pw, ok := p.User.Password(); ok && strings.Contains(err.Error(), pw) {
			t.Errorf("listen error shows the password: %v", err)
		}
	}
}
