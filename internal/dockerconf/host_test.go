package dockerconf

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHost(t *testing.T) {
	tests := []struct {
		in            string
		want          string
		wantDefaulted bool
	}{
		{"tcp://127.0.0.1:2376", "tcp://127.0.0.1:2376", false},
		{"tcp://docker.example.com:12376", "tcp://docker.example.com:12376", false},
		{"TCP://host:2376/", "tcp://host:2376", false},
		{"host:2376", "tcp://host:2376", false},
		{"tcp://host", "tcp://host:2376", true},
		{"host", "tcp://host:2376", true},
		{"tcp://[::1]:2376", "tcp://[::1]:2376", false},
		{"tcp://[0:0::1]", "tcp://[::1]:2376", true},
		{"tcp://0.0.0.0:2376", "tcp://0.0.0.0:2376", false},
		{"tcp://[::]:2376", "tcp://[::]:2376", false},
		{"tcp://my_host.local:1", "tcp://my_host.local:1", false},
		{"tcp://h:65535", "tcp://h:65535", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, defaulted, err := ParseHost(tt.in)
			if err != nil {
				t.Fatalf("ParseHost(%q) error: %v", tt.in, err)
			}
			if got := h.String(); got != tt.want || defaulted != tt.wantDefaulted {
				t.Errorf("ParseHost(%q) = %s (defaulted %v), want %s (defaulted %v)", tt.in, got, defaulted, tt.want, tt.wantDefaulted)
			}
		})
	}
}

func TestParseHostRefuses(t *testing.T) {
	tests := []struct {
		in         string
		wantReason string
		wantHint   string
	}{
		{"", "empty", "tcp://HOST:PORT"},
		{"http://host:2376", "not http://", "write tcp://host:2376"},
		{"https://host:2376", "not https://", "write tcp://host:2376"},
		{"unix:///var/run/docker.sock", "local socket", "tcp://HOST:2376"},
		{"ssh://user@host", "SSH", "tcp://"},
		{"ftp://host", "unsupported scheme", ""},
		{"tcp://:2376", "no host", "tcp://0.0.0.0:PORT"},
		{"tcp://host:", "port after ':' is empty", ""},
		{"tcp://[::1]:", "not HOST:PORT", ""},
		{"tcp://host:0", "not a port number", ""},
		{"tcp://host:65536", "not a port number", ""},
		{"tcp://host:+80", "not a port number", ""},
		{"tcp://host:http", "not a port number", ""},
		{"tcp://::1", "needs brackets", "tcp://[::1]:2376"},
		{"tcp://fe80::1:2376", "needs brackets", ""},
		{"tcp://[fe80::1%eth0]:2376", "zones", ""},
		{"tcp://host:2376/v1.40", "without a path", ""},
		{"tcp://user@host:2376", "without a path, user", ""},
		{"tcp://ho st:2376", "spaces", ""},
		{"tcp://host\n:2376", "spaces", ""},
		{"tcp://127.1:2376", "not a valid IPv4 address", ""},
		{"tcp://300.1.1.1:2376", "not a valid IPv4 address", ""},
		{"tcp://-bad.example:2376", "not a valid host name", ""},
		{"tcp://a..b:2376", "not a valid host name", ""},
		{"tcp://h*st:2376", "not a valid host name", ""},
		{"tcp://" + strings.Repeat("a.", 127) + "aa:1", "not a valid host name", ""},
		{"tcp://[host:2376", "not HOST:PORT", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, _, err := ParseHost(tt.in)
			var he *HostError
			if !errors.As(err, &he) {
				t.Fatalf("ParseHost(%q) = %v, %v; want a *HostError", tt.in, h, err)
			}
			if !strings.Contains(he.Reason, tt.wantReason) {
				t.Errorf("reason = %q, want it to contain %q", he.Reason, tt.wantReason)
			}
			if !strings.Contains(he.Hint, tt.wantHint) || he.Hint == "" {
				t.Errorf("hint = %q, want a hint containing %q", he.Hint, tt.wantHint)
			}
		})
	}
}

func TestParseClientHostRefusesUnspecified(t *testing.T) {
	for _, in := range []string{"tcp://0.0.0.0:2376", "tcp://[::]:2376", "0.0.0.0"} {
		t.Run(in, func(t *testing.T) {
			_, _, err := ParseClientHost(in)
			var he *HostError
			if !errors.As(err, &he) {
				t.Fatalf("ParseClientHost(%q) error = %v, want a *HostError", in, err)
			}
			if !strings.Contains(he.Reason, "where dockerd listens") || !strings.Contains(he.Hint, "SANs") {
				t.Errorf("got reason %q hint %q, want the listen-address explanation", he.Reason, he.Hint)
			}
		})
	}
	if h, _, err := ParseClientHost("tcp://127.0.0.1:2376"); err != nil || h.String() != "tcp://127.0.0.1:2376" {
		t.Errorf("ParseClientHost(loopback) = %v, %v; want it accepted", h, err)
	}
}

// FuzzParseHost checks that whatever ParseHost accepts is a well-formed
// endpoint that parses back to itself.
func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"tcp://127.0.0.1:2376", "host", "tcp://[::1]:1", "http://x", "tcp://a:b:c", "[::1]", "tcp://[::ffff:1.2.3.4]:9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, defaulted, err := ParseHost(s)
		if err != nil {
			var he *HostError
			if !errors.As(err, &he) || he.Hint == "" {
				t.Fatalf("ParseHost(%q) error %v is not a *HostError with a hint", s, err)
			}
			return
		}
		if h.Port < 1 || h.Port > 65535 || h.Hostname == "" {
			t.Fatalf("ParseHost(%q) = %+v: out of range", s, h)
		}
		if defaulted && h.Port != DefaultTLSPort {
			t.Fatalf("ParseHost(%q) defaulted to port %d", s, h.Port)
		}
		again, defaulted2, err := ParseHost(h.String())
		if err != nil || again != h || defaulted2 {
			t.Fatalf("ParseHost(%q) = %+v, but its String %q parses to %+v, %v, %v", s, h, h.String(), again, defaulted2, err)
		}
	})
}
