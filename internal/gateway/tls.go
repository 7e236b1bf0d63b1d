package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/store"
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
	// Refusals by the inventory: a serial it does not know (a certificate
	// signed with the CA key outside dockgate), one whose issuance never
	// completed, and one a renewal replaced.
	reasonUnknownSerial = "unknown_serial"
	reasonPending       = "pending"
	reasonSuperseded    = "superseded"
)

// inventoryReasons are the handshake refusal reasons only the inventory
// gives. Revoked and superseded certificates complete the handshake on the
// listener and have their requests refused (finalRefusal).
var inventoryReasons = []string{reasonUnknownSerial, reasonPending}

// finalRefusal is why, and since when, the inventory refuses a certificate
// for good: revoked, or superseded by a renewal. Such a certificate is not
// refused at the handshake, where the docker CLI could only show "remote
// error: tls: bad certificate": its connection completes, nothing on it is
// forwarded, and every request gets a 403 whose message names the
// certificate and the way out.
type finalRefusal struct {
	reason string // reasonRevoked or reasonSuperseded
	at     time.Time
}

// message is the sentence a client of certificate id is answered.
func (f finalRefusal) message(id *identity.Identity) string {
	at := f.at.UTC().Format(time.RFC3339)
	newToken := fmt.Sprintf("ask your dockgate administrator for a new token (dockgate token create %s), then run: dockgate login TOKEN", id.CN)
	if f.reason == reasonSuperseded {
		return fmt.Sprintf("dockgate: certificate %q (serial %s) was replaced by a renewal at %s; use the renewed certificate "+
			"(the docker context that dockgate renew updated, or clients/%s/ in the state directory), or %s",
			id.CN, id.Serial, at, id.CN, newToken)
	}
	return fmt.Sprintf("dockgate: certificate %q (serial %s) was revoked at %s; %s", id.CN, id.Serial, at, newToken)
}

// auditReason is the reason the audit record gives for a refused request.
func (f finalRefusal) auditReason() string {
	if f.reason == reasonSuperseded {
		return "certificate superseded by a renewal"
	}
	return "certificate revoked"
}

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

// checkClientHello counts clients that offer nothing newer than TLS 1.1
// (crypto/tls then refuses them), and binds the verification of a tracked
// connection to it (connTLSConfig).
func (g *Gateway) checkClientHello(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	if !slices.ContainsFunc(hello.SupportedVersions, func(v uint16) bool { return v >= tls.VersionTLS12 }) {
		g.metrics.handshakeFailures.WithLabelValues(reasonProtocolVersion).Inc()
		return nil, nil
	}
	if tc, ok := hello.Conn.(*trackedConn); ok && tc.client != nil {
		return g.connTLSConfig(tc.client), nil
	}
	return nil, nil
}

// verifyConnection verifies a connection the gateway does not track
// (checkClientHello binds tracked ones to connTLSConfig). Without a
// connection to mark, a revoked or superseded certificate is refused here.
func (g *Gateway) verifyConnection(cs tls.ConnectionState) error {
	final, err := g.verifyConnectionFrom(cs, "")
	if final != nil {
		leaf := cs.PeerCertificates[0]
		err = &handshakeError{final.reason, fmt.Errorf("client certificate %q (serial %s) is %s",
			leaf.Subject.CommonName, identity.SerialHex(leaf), final.reason)}
		g.metrics.handshakeFailures.WithLabelValues(final.reason).Inc()
	}
	return err
}

// verifyConnectionFrom verifies a client and logs a refusal once, with
// the client's address when the connection is known. A certificate the
// inventory refuses for good comes back as final, with a nil error.
func (g *Gateway) verifyConnectionFrom(cs tls.ConnectionState, remote string) (final *finalRefusal, err error) {
	final, err = g.verifyClient(cs)
	if err != nil {
		reason := reasonInvalid
		var he *handshakeError
		if errors.As(err, &he) {
			reason = he.reason
			g.metrics.handshakeFailures.WithLabelValues(he.reason).Inc()
		}
		if remote != "" {
			g.log.Info("client refused at handshake", "remote", remote, "reason", reason, "err", err)
			g.serverLog.refusalLogged(remote)
		} else {
			g.log.Info("client refused at handshake", "reason", reason, "err", err)
		}
	}
	return final, err
}

// verifyClient checks the client chain against the current CA, validity,
// the clientAuth usage and the certificate's standing in the inventory.
// A certificate that passes everything but is revoked or superseded comes
// back as final, with a nil error.
func (g *Gateway) verifyClient(cs tls.ConnectionState) (final *finalRefusal, err error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, &handshakeError{reasonNoCertificate, errors.New("client sent no certificate; a certificate issued by this gateway's CA is required")}
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
		return nil, &handshakeError{verifyReason(err), fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)}
	}
	// x509 takes a certificate without extended key usages as valid for
	// any; dockgate's client certificates always name clientAuth.
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return nil, &handshakeError{reasonWrongKeyUsage, fmt.Errorf("client certificate %q (serial %s) does not carry the clientAuth extended key usage",
			leaf.Subject.CommonName, identity.SerialHex(leaf))}
	}
	return g.checkInventory(leaf, opts.CurrentTime)
}

// checkInventory accepts leaf only if the inventory knows its serial as
// issued; one revoked or superseded at now comes back as final.
func (g *Gateway) checkInventory(leaf *x509.Certificate, now time.Time) (*finalRefusal, error) {
	serial := identity.SerialHex(leaf)
	inv := g.inventory.Load()
	if inv == nil {
		return nil, nil // no inventory check (Options.Inventory is nil)
	}
	st, known := (*inv)[serial]
	if !known || st.State == store.StatePending {
		// Perhaps issued since the last poll: a client that enrolls and
		// connects at once. Read again before refusing; the read is one
		// row when nothing changed.
		if fresh, err := g.readInventory(); err != nil {
			g.log.Error("failed to read the certificate inventory", "err", err)
		} else {
			st, known = fresh[serial]
		}
	}
	if !known {
		return nil, &handshakeError{reasonUnknownSerial, fmt.Errorf(
			"client certificate %q (serial %s) is not in the inventory: it was not issued by dockgate", leaf.Subject.CommonName, serial)}
	}
	if final := finalRefusalOf(st, now); final != nil {
		return final, nil
	}
	if why := inventoryRefusal(st, now); why != "" {
		return nil, &handshakeError{why, fmt.Errorf("client certificate %q (serial %s) is %s", leaf.Subject.CommonName, serial, why)}
	}
	return nil, nil
}

// finalRefusalOf is the final refusal of a certificate in standing st at
// now, or nil while it is valid or pending.
func finalRefusalOf(st store.Standing, now time.Time) *finalRefusal {
	switch inventoryRefusal(st, now) {
	case reasonRevoked:
		return &finalRefusal{reasonRevoked, st.RevokedAt}
	case reasonSuperseded:
		return &finalRefusal{reasonSuperseded, st.SupersededAt}
	}
	return nil
}

// inventoryReadTimeout bounds a read of the inventory during a handshake;
// SQLite answers in well under a millisecond unless a writer holds it.
const inventoryReadTimeout = 2 * time.Second

// readInventory reads the inventory now and makes it the current one.
func (g *Gateway) readInventory() (map[string]store.Standing, error) {
	ctx, cancel := context.WithTimeout(context.Background(), inventoryReadTimeout)
	defer cancel()
	inv, err := g.opts.Inventory(ctx)
	if err != nil {
		return nil, err
	}
	g.inventory.Store(&inv)
	return inv, nil
}

// inventoryRefusal is the handshake refusal reason for a certificate in
// standing st at now, or "" if it is valid. A pending certificate is
// refused: dockgate completes the row before it hands a certificate out
// (bundle written, enrollment answered), so a pending one comes from an
// issuance that never finished.
func inventoryRefusal(st store.Standing, now time.Time) string {
	switch st.Refusal(now) {
	case "":
		return ""
	case store.StatusPending:
		return reasonPending
	case store.StatusSuperseded:
		return reasonSuperseded
	}
	return reasonRevoked
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
