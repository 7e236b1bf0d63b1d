package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/dockgate/dockgate/internal/identity"
)

// CA is the trust anchor for client certificates.
type CA struct {
	Cert *x509.Certificate
	Pool *x509.CertPool
}

// NewCA wraps a CA certificate with a pool holding only it.
func NewCA(cert *x509.Certificate) *CA {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{Cert: cert, Pool: pool}
}

// Handshake refusal reasons, as counted in dockgate_handshake_failures_total.
const (
	reasonNoCertificate    = "no_certificate"
	reasonUnknownAuthority = "unknown_authority"
	reasonExpired          = "expired"
	reasonWrongKeyUsage    = "wrong_key_usage"
	reasonRevoked          = "revoked"
	reasonInvalid          = "invalid_certificate"
	reasonProtocolVersion  = "protocol_version"
)

// handshakeError carries the reason a client was refused.
type handshakeError struct {
	reason string
	err    error
}

func (e *handshakeError) Error() string { return e.reason + ": " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

func (g *Gateway) newTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Ask for a certificate and verify it ourselves in VerifyConnection,
		// so each refusal has a reason and the current CA applies to
		// resumed sessions as well. A missing certificate is refused there.
		ClientAuth:         tls.RequestClientCert,
		NextProtos:         []string{"http/1.1"},
		GetCertificate:     g.ServerCertificate,
		GetConfigForClient: g.checkClientHello,
		VerifyConnection:   g.verifyConnection,
	}
}

// checkClientHello counts clients that offer nothing newer than TLS 1.1;
// crypto/tls then refuses them.
func (g *Gateway) checkClientHello(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	for _, v := range hello.SupportedVersions {
		if v >= tls.VersionTLS12 {
			return nil, nil
		}
	}
	g.metrics.handshakeFailures.WithLabelValues(reasonProtocolVersion).Inc()
	return nil, nil
}

func (g *Gateway) verifyConnection(cs tls.ConnectionState) error {
	err := g.verifyClient(cs)
	if err != nil {
		var he *handshakeError
		if errors.As(err, &he) {
			g.metrics.handshakeFailures.WithLabelValues(he.reason).Inc()
		}
		g.log.Info("client refused at handshake", "err", err)
	}
	return err
}

// verifyClient checks the client chain against the current CA, the
// clientAuth usage, validity and revocation.
func (g *Gateway) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return &handshakeError{reasonNoCertificate, errors.New("client sent no certificate; a certificate issued by this gateway's CA is required")}
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{
		Roots:       g.material.Load().CA.Pool,
		CurrentTime: g.opts.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if len(cs.PeerCertificates) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
	}
	if _, err := leaf.Verify(opts); err != nil {
		return &handshakeError{verifyReason(err), fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)}
	}
	serial := identity.SerialHex(leaf)
	if _, revoked := (*g.revoked.Load())[serial]; revoked {
		return &handshakeError{reasonRevoked, fmt.Errorf("client certificate %q (serial %s) is revoked", leaf.Subject.CommonName, serial)}
	}
	return nil
}

func verifyReason(err error) string {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return reasonUnknownAuthority
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return reasonExpired
	case errors.As(err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		return reasonWrongKeyUsage
	}
	return reasonInvalid
}
