// Package identity says who a client of the gateway is.
//
// An Identity is derived from a verified client certificate only, never
// from request headers: the certificate's CN is the client's name, its
// Organization entries are its groups, and its serial and fingerprint tie
// the identity to the one certificate that proved it.
//
// The gateway puts the identity of each request into its context
// (NewContext) for the handlers it serves itself, such as certificate
// renewal (FromContext). Whoami is the wire form of the identity that the
// gateway answers on WhoamiPath, shared by the gateway and its clients.
//
// The package is pure: no I/O, and no dependency on the gateway, so that
// clients and handlers can use it without pulling in the request path.
package identity

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"time"
)

// Identity is who a verified client certificate says the client is.
type Identity struct {
	CN          string
	Groups      []string  // the certificate's Organization entries
	Serial      string    // lower-case hex, without separators
	Fingerprint string    // SHA-256 of the DER certificate, lower-case hex
	NotAfter    time.Time // the certificate's expiry
}

// FromCertificate returns the identity of a verified certificate.
func FromCertificate(cert *x509.Certificate) *Identity {
	sum := sha256.Sum256(cert.Raw)
	return &Identity{
		CN:          cert.Subject.CommonName,
		Groups:      cert.Subject.Organization,
		Serial:      SerialHex(cert),
		Fingerprint: hex.EncodeToString(sum[:]),
		NotAfter:    cert.NotAfter,
	}
}

// SerialHex is a certificate's serial number as dockgate writes it
// everywhere (store, CLI, logs, revocation checks): lower-case hex without
// separators. It is empty for a nil certificate or serial.
func SerialHex(cert *x509.Certificate) string {
	if cert == nil || cert.SerialNumber == nil {
		return ""
	}
	return cert.SerialNumber.Text(16)
}

type contextKey struct{}

// NewContext returns a copy of ctx that carries id.
func NewContext(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, contextKey{}, id)
}

// FromContext returns the identity NewContext put into ctx, if any.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(contextKey{}).(*Identity)
	return id, ok && id != nil
}
