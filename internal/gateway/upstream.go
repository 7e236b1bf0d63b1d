package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

// upstream is the Docker daemon behind the gateway.
type upstream struct {
	url       string // as configured, for error messages
	network   string // "unix" or "tcp"
	address   string // socket path or host:port
	tls       *tls.Config
	transport *http.Transport
}

// Connection pool sizing: the docker CLI and load tools open many parallel
// requests; Go's default of 2 idle connections per host would redial the
// socket on almost every request under load.
const (
	upstreamMaxIdlePerHost = 256
	upstreamIdleTimeout    = 90 * time.Second
	upstreamDialTimeout    = 10 * time.Second
)

func newUpstream(cfg config.Upstream) (*upstream, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("failed to parse upstream %q: %w", cfg.URL, err)
	}
	up := &upstream{url: cfg.URL}
	switch u.Scheme {
	case "unix":
		up.network, up.address = "unix", u.Path
	case "tcp":
		up.network, up.address = "tcp", u.Host
		if up.tls, err = upstreamTLS(cfg, u.Hostname()); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("upstream %q: scheme must be unix or tcp", cfg.URL)
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return up.dial(ctx) }
	up.transport = &http.Transport{
		DialContext:         dial, // unix: plain HTTP over the socket
		DialTLSContext:      dial, // tcp: dial does the mutual-TLS handshake
		MaxIdleConns:        0,    // no global cap; per-host cap below
		MaxIdleConnsPerHost: upstreamMaxIdlePerHost,
		IdleConnTimeout:     upstreamIdleTimeout,
		DisableCompression:  true, // pass the client's Accept-Encoding through untouched
		ForceAttemptHTTP2:   false,
	}
	return up, nil
}

func upstreamTLS(cfg config.Upstream, serverName string) (*tls.Config, error) {
	caPEM, err := os.ReadFile(cfg.TLSCA)
	if err != nil {
		return nil, fmt.Errorf("failed to read upstream CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("failed to read upstream CA %s: no PEM certificate in it", cfg.TLSCA)
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("failed to load upstream client certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		RootCAs:      pool,
		Certificates: []tls.Certificate{cert},
		ServerName:   serverName,
	}, nil
}

// dial opens a raw connection to the daemon (TLS-wrapped for tcp).
func (u *upstream) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: upstreamDialTimeout}
	conn, err := d.DialContext(ctx, u.network, u.address)
	if err != nil {
		return nil, err
	}
	if u.tls == nil {
		return conn, nil
	}
	tc := tls.Client(conn, u.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return tc, nil
}

// host is what goes in the URL of forwarded requests; the transport dials
// the configured address whatever it says.
func (u *upstream) host() string {
	if u.network == "unix" {
		return "docker"
	}
	return u.address
}

func (u *upstream) scheme() string {
	if u.tls != nil {
		return "https"
	}
	return "http"
}

func (u *upstream) close() { u.transport.CloseIdleConnections() }

// ping asks the daemon for /_ping, as /readyz does.
func (u *upstream) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.scheme()+"://"+u.host()+"/_ping", nil)
	if err != nil {
		return err
	}
	resp, err := u.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("docker daemon unreachable at %s: %w", u.url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("docker daemon at %s answered /_ping with %s", u.url, resp.Status)
	}
	return nil
}

// call sends one small request of the gateway's own (ownership lookups)
// and returns the status and the body, bounded by lookupLimit.
func (u *upstream) call(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.scheme()+"://"+u.host()+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := u.transport.RoundTrip(req)
	if err != nil {
		return 0, nil, fmt.Errorf("docker daemon unreachable at %s: %w", u.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, lookupLimit))
	return resp.StatusCode, data, err
}
