package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestServerLogDropsOnlyRefusalsLoggedAlready(t *testing.T) {
	var buf bytes.Buffer
	s := newServerLog(slog.New(slog.NewTextHandler(&buf, nil)))
	l := s.logger()
	s.refusalLogged("127.0.0.1:4000")
	s.refusalLogged("[::1]:4001")
	s.refusalLogged("") // an unknown address is never remembered

	l.Print("http: TLS handshake error from 127.0.0.1:4000: unknown_authority: client certificate \"x\": bad")
	l.Print("http: TLS handshake error from [::1]:4001: expired: client certificate \"y\": expired")
	l.Print("http: TLS handshake error from 127.0.0.1:4000: EOF") // the address was forgotten: a new connection's line
	l.Print("http: TLS handshake error from 127.0.0.1:5000: EOF")
	l.Print("http: superfluous response.WriteHeader call")

	out := buf.String()
	for _, want := range []string{"127.0.0.1:4000: EOF", "127.0.0.1:5000: EOF", "superfluous"} {
		if !strings.Contains(out, want) {
			t.Errorf("line %q was dropped:\n%s", want, out)
		}
	}
	for _, gone := range []string{"unknown_authority", "[::1]:4001"} {
		if strings.Contains(out, gone) {
			t.Errorf("line with %q was logged twice:\n%s", gone, out)
		}
	}
}

func TestServerLogForgetsPastItsBound(t *testing.T) {
	s := newServerLog(slog.New(slog.DiscardHandler))
	for i := range maxLoggedRefusals + 10 {
		s.refusalLogged(fmt.Sprintf("10.0.0.1:%d", i))
	}
	if n := len(s.refused); n == 0 || n > maxLoggedRefusals {
		t.Fatalf("remembers %d addresses, want 1 to %d", n, maxLoggedRefusals)
	}
}
