package authority

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// Errors RenewCSR returns, for errors.Is.
var (
	ErrRenewRevoked = errors.New("certificate is revoked")
	ErrRenewExpired = errors.New("certificate has expired")
)

// RenewCSR issues a certificate for the key in csr to the holder of the
// certificate with the given serial (the one it authenticated with): the
// same kind, name, groups, SANs and lifetime as that certificate, never
// anything from the CSR but its key. The certificate must be in the
// inventory, issued, unrevoked, not superseded and unexpired at now. The
// old one is superseded RenewOverlap after now, so that the client can
// store its new certificate and finish what it is doing with the old one.
// Unlike SignCSR, the name is expected to have a valid certificate: the one
// being renewed.
func (a *Authority) RenewCSR(ctx context.Context, csr *x509.CertificateRequest, serial string, now time.Time) (*x509.Certificate, error) {
	now = nowOr(now)
	unlock, err := a.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, err := a.renewable(ctx, serial, now)
	if err != nil {
		return nil, err
	}
	// The identity is the caller's own certificate's, not that of the
	// newest certificate of the name, whatever was issued since.
	req, err := requestFrom(old, now)
	if err != nil {
		return nil, err
	}
	leaf, err := a.leafRequest(req)
	if err != nil {
		return nil, err
	}
	return a.signAndRecord(ctx, csr, req, leaf, &store.Supersession{Serial: old.Serial, At: now.Add(RenewOverlap)})
}

// RenewOverlap is how long a certificate renewed over the network stays
// accepted after its replacement is issued. The client has the new one in
// the answer and switches on its next connection; an hour lets a long
// request or attached stream begun on the old one (a build, `logs -f`)
// finish instead of being cut mid-way.
const RenewOverlap = time.Hour

// renewable finds the certificate with serial and checks it may renew.
func (a *Authority) renewable(ctx context.Context, serial string, now time.Time) (store.Cert, error) {
	c, err := a.st.CertBySerial(ctx, serial)
	if err != nil {
		return store.Cert{}, fmt.Errorf("failed to renew certificate %s: %w", serial, err)
	}
	switch {
	case c.Serial != store.NormalizeSerial(serial):
		return store.Cert{}, fmt.Errorf("failed to renew certificate %s: %w", serial, store.ErrNotFound)
	case !isLeaf(c):
		return store.Cert{}, fmt.Errorf("failed to renew certificate %s: only server and client certificates renew", serial)
	case c.Revoked():
		return store.Cert{}, fmt.Errorf("failed to renew %s %q (serial %s): %w", c.Kind, c.Name, c.Serial, ErrRenewRevoked)
	case c.Pending() || c.Superseded(now):
		// The gateway refuses both; saying "revoked" keeps clients' handling
		// (issue a new one with a token) the same.
		return store.Cert{}, fmt.Errorf("failed to renew %s %q (serial %s): %w (%s)", c.Kind, c.Name, c.Serial,
			ErrRenewRevoked, c.Status(now))
	case !now.Before(c.NotAfter):
		return store.Cert{}, fmt.Errorf("failed to renew %s %q (serial %s): %w on %s", c.Kind, c.Name, c.Serial,
			ErrRenewExpired, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// requestFrom reproduces the request behind an inventory row.
func requestFrom(c store.Cert, now time.Time) (Request, error) {
	cert, err := pki.ParseCertPEM(c.PEM)
	if err != nil {
		return Request{}, fmt.Errorf("failed to renew %s: certificate %s in the inventory: %w", c.Name, c.Serial, err)
	}
	validity := cert.NotAfter.Sub(cert.NotBefore) - pki.Backdate
	if validity <= 0 {
		validity = 0 // the kind's default
	}
	return Request{
		Kind:     pki.Kind(c.Kind),
		Name:     c.Name,
		Groups:   cert.Subject.Organization,
		SANs:     sanStrings(cert),
		Validity: validity,
		Now:      now,
	}, nil
}
