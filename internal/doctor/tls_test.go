package doctor

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// tlsServer starts an HTTPS server on 127.0.0.1 with cert.
func tlsServer(t *testing.T, cert tls.Certificate, configure func(*tls.Config)) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if configure != nil {
		configure(srv.TLS)
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCheckTLS(t *testing.T) {
	ca := newTestCA(t, "Test CA")
	other := newTestCA(t, "Other CA")
	longAgo := time.Now().Add(-48 * time.Hour)
	tests := []struct {
		name      string
		cert      tls.Certificate
		configure func(*tls.Config)
		opts      TLSOptions
		wantOK    bool
		want      Problem
		wantText  string // in the explanation
	}{
		{
			name:   "verified",
			cert:   ca.issue(t, leafOpts{}),
			opts:   TLSOptions{Roots: ca.pool()},
			wantOK: true,
		},
		{
			name:     "unknown authority",
			cert:     ca.issue(t, leafOpts{}),
			opts:     TLSOptions{Roots: other.pool()},
			want:     ProblemUnknownAuthority,
			wantText: `signed by "CN=Test CA"`,
		},
		{
			name:     "unknown authority with only the embedded public roots",
			cert:     ca.issue(t, leafOpts{}),
			opts:     TLSOptions{Roots: other.pool(), Using: "fallback"},
			want:     ProblemUnknownAuthority,
			wantText: "not among the embedded public roots",
		},
		{
			name:     "self-signed",
			cert:     selfSigned(t),
			opts:     TLSOptions{Roots: ca.pool()},
			want:     ProblemUnknownAuthority,
			wantText: `self-signed ("CN=test server")`,
		},
		{
			name:     "unknown authority with no roots at all",
			cert:     ca.issue(t, leafOpts{}),
			opts:     TLSOptions{Roots: x509.NewCertPool(), Using: "none"},
			want:     ProblemNoCABundle,
			wantText: "no CA bundle in this environment",
		},
		{
			name:     "expired",
			cert:     ca.issue(t, leafOpts{notBefore: longAgo, notAfter: longAgo.Add(time.Hour)}),
			opts:     TLSOptions{Roots: ca.pool()},
			want:     ProblemExpired,
			wantText: "expired at " + longAgo.Add(time.Hour).UTC().Format(time.RFC3339),
		},
		{
			name:     "not yet valid",
			cert:     ca.issue(t, leafOpts{notBefore: time.Now().Add(30 * time.Minute)}),
			opts:     TLSOptions{Roots: ca.pool()},
			want:     ProblemNotYetValid,
			wantText: "is not valid until",
		},
		{
			name:     "name mismatch",
			cert:     ca.issue(t, leafOpts{dnsNames: []string{"docker.example.test", "gw.example.test"}}),
			opts:     TLSOptions{Roots: ca.pool()},
			want:     ProblemNameMismatch,
			wantText: "valid for docker.example.test, gw.example.test, not for 127.0.0.1",
		},
		{
			name:     "client certificate served as a server's",
			cert:     ca.issue(t, leafOpts{extUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}),
			opts:     TLSOptions{Roots: ca.pool()},
			want:     ProblemKeyUsage,
			wantText: "extended key usage: clientAuth",
		},
		{
			name:      "server speaks only TLS 1.1",
			cert:      ca.issue(t, leafOpts{}),
			configure: func(c *tls.Config) { c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11 },
			opts:      TLSOptions{Roots: ca.pool()},
			want:      ProblemTLSVersion,
			wantText:  "share no TLS version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tlsServer(t, tt.cert, tt.configure)
			got, err := CheckTLS(t.Context(), url, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.wantOK || got.Problem != tt.want {
				t.Fatalf("got ok %v problem %q (%s); want ok %v problem %q", got.OK, got.Problem, got.Explanation, tt.wantOK, tt.want)
			}
			if !strings.Contains(got.Explanation, tt.wantText) {
				t.Errorf("explanation %q lacks %q", got.Explanation, tt.wantText)
			}
			if !tt.wantOK && len(got.Fixes) == 0 {
				t.Error("a failure without a fix")
			}
			if tt.wantOK && (got.Version == "" || len(got.Chain) != 1) {
				t.Errorf("got version %q chain %d, want the connection described", got.Version, len(got.Chain))
			}
		})
	}
}

func TestCheckTLSNoCABundleFixes(t *testing.T) {
	ca := newTestCA(t, "Test CA")
	url := tlsServer(t, ca.issue(t, leafOpts{}), nil)
	got, err := CheckTLS(t.Context(), url, TLSOptions{Roots: x509.NewCertPool(), Using: "none"})
	if err != nil {
		t.Fatal(err)
	}
	fixes := strings.Join(got.Fixes, "\n")
	for _, want := range []string{"COPY", "pkgs.cacert", FallbackPackage} {
		if !strings.Contains(fixes, want) {
			t.Errorf("fixes %q lack %q", fixes, want)
		}
	}
}

func TestCheckTLSConnectionFailures(t *testing.T) {
	refused := closedPort(t)
	plainHTTP := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plainHTTP.Close)
	silent := silentServer(t)
	noDNS := &net.Dialer{Resolver: &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		return nil, errors.New("no DNS server in this test")
	}}}

	tests := []struct {
		name   string
		target string
		opts   TLSOptions
		want   Problem
	}{
		{"connection refused", "https://" + refused, TLSOptions{}, ProblemRefused},
		{"plain HTTP on the port", strings.Replace(plainHTTP.URL, "http://", "https://", 1), TLSOptions{}, ProblemNotTLS},
		{"no handshake answer", silent, TLSOptions{Timeout: 300 * time.Millisecond}, ProblemTimeout},
		{"DNS failure", "https://gateway.dockgate.test:2376", TLSOptions{Dialer: noDNS}, ProblemDNS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CheckTLS(t.Context(), tt.target, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK || got.Problem != tt.want {
				t.Errorf("got ok %v problem %q (%s), want %q", got.OK, got.Problem, got.Explanation, tt.want)
			}
		})
	}
}

// selfSigned is a server certificate for 127.0.0.1 that signs itself.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: "test server"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	go func() {
		defer close(conns)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		target, wantAddr, wantName string
		wantErr                    bool
	}{
		{"https://example.com", "example.com:443", "example.com", false},
		{"https://example.com:8443/path?q=1", "example.com:8443", "example.com", false},
		{"tcp://docker.example.com:2376", "docker.example.com:2376", "docker.example.com", false},
		{"example.com:2376", "example.com:2376", "example.com", false},
		{"example.com", "example.com:443", "example.com", false},
		{"https://[::1]:2376", "[::1]:2376", "::1", false},
		{"[::1]", "[::1]:443", "::1", false},
		{"127.0.0.1:2376", "127.0.0.1:2376", "127.0.0.1", false},
		{"http://example.com", "", "", true},
		{"https://", "", "", true},
		{"", "", "", true},
		{"exa mple.com", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			addr, name, err := ParseTarget(tt.target)
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error: %v", err, tt.wantErr)
			}
			if addr != tt.wantAddr || name != tt.wantName {
				t.Errorf("got %q %q, want %q %q", addr, name, tt.wantAddr, tt.wantName)
			}
		})
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"https://example.com:8443/x", "[::1]:2376", "tcp://h:1", "h", "https://[fe80::1%25eth0]:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		addr, name, err := ParseTarget(target)
		if err != nil {
			return
		}
		host, _, splitErr := net.SplitHostPort(addr)
		if splitErr != nil || host != name || name == "" {
			t.Errorf("ParseTarget(%q) = %q, %q: the address does not carry the server name", target, addr, name)
		}
	})
}
