package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
)

// maxAnswerBytes bounds what the probe reads of an answer.
const maxAnswerBytes = 64 << 10

// probeResult is what one TLS connection to the endpoint showed.
type probeResult struct {
	chain        []*x509.Certificate // the server's, as sent, leaf first
	version      uint16              // 0 if the handshake did not finish
	cipher       uint16
	askedForCert bool
	handshakeErr error
	// refused is the server's refusal of the client certificate: during
	// the handshake (TLS 1.2) or at the first read (TLS 1.3).
	refused error
	ping    *answer
	pingErr error
	whoami  *answer
	whoErr  error
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// probeTLS connects without verifying (the checks verify what it saw),
// presents pair if given, then asks GET /_ping and the whoami endpoint on
// the same connection.
func probeTLS(ctx context.Context, addr, host string, pair *tls.Certificate, timeout time.Duration) *probeResult {
	p := &probeResult{}
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the checks verify the chain themselves, to explain failures
		MinVersion:         tls.VersionTLS10,
		NextProtos:         []string{"http/1.1"},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			for _, der := range raw {
				if c, err := x509.ParseCertificate(der); err == nil {
					p.chain = append(p.chain, c)
				}
			}
			return nil
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			p.askedForCert = true
			if pair != nil {
				return pair, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		p.handshakeErr = err
		return p
	}
	conn := tls.Client(raw, cfg)
	defer conn.Close()
	if err := conn.HandshakeContext(ctx); err != nil {
		p.handshakeErr = err
		if isClientCertRefusal(err) {
			p.refused = err
		}
		return p
	}
	st := conn.ConnectionState()
	p.version, p.cipher = st.Version, st.CipherSuite
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	br := bufio.NewReader(conn)
	if p.ping, p.pingErr = get(conn, br, host, "/_ping"); p.pingErr != nil {
		if isClientCertRefusal(p.pingErr) {
			p.refused = p.pingErr
		}
		return p
	}
	p.whoami, p.whoErr = get(conn, br, host, identity.WhoamiPath)
	return p
}

// get sends one GET on conn and reads the answer.
func get(conn net.Conn, br *bufio.Reader, host, path string) (*answer, error) {
	req, err := http.NewRequest(http.MethodGet, "https://"+host+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", "dockgate-doctor")
	if err := req.Write(conn); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return nil, err
	}
	return &answer{status: resp.StatusCode, header: resp.Header, body: body}, nil
}

// isClientCertRefusal reports an alert by which a server refuses the
// client's certificate (RFC 8446 section 6.2; crypto/tls servers send "bad
// certificate" for most refusals).
func isClientCertRefusal(err error) bool {
	for _, alert := range []string{"bad certificate", "certificate required", "revoked certificate",
		"expired certificate", "unknown certificate authority", "unsupported certificate", "certificate unknown"} {
		if isRemoteAlert(err, alert) {
			return true
		}
	}
	return false
}

// parseWhoami reads the gateway's answer on identity.WhoamiPath; a plain
// dockerd answers that path with 404 and never gets here.
func parseWhoami(body []byte) (identity.Whoami, error) {
	var w identity.Whoami
	if err := json.Unmarshal(body, &w); err != nil {
		return w, err
	}
	if w.CN == "" {
		return w, errors.New("no cn in the answer")
	}
	return w, nil
}

// dockerMessage is the "message" of a Docker (or gateway) error answer.
func dockerMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	if len(body) > 200 {
		body = body[:200]
	}
	return string(body)
}
