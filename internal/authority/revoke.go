package authority

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// ErrRevokeCA is returned when asked to revoke the CA certificate itself.
var ErrRevokeCA = errors.New("refusing to revoke the CA certificate: create a new CA instead")

// Revoke revokes certificates by serial or by name and returns them as
// revoked. nameOrSerial is looked up as a full serial first, then as a name
// (every valid server or client certificate of that name), then as a unique
// serial prefix (store.ErrAmbiguous if it is not unique). reason is an RFC
// 5280 reason name (pki.ParseRevocationReason) and is stored in canonical
// form. Revoking needs no CA key: the inventory is what the gateway and CRLs
// read.
func Revoke(ctx context.Context, st *store.Store, nameOrSerial, reason string, now time.Time) ([]store.Cert, error) {
	reason, err := pki.CanonicalReason(reason)
	if err != nil {
		return nil, fmt.Errorf("failed to revoke: %w", err)
	}
	now = nowOr(now)
	targets, err := revocationTargets(ctx, st, nameOrSerial, now)
	if err != nil {
		return nil, err
	}
	revoked := make([]store.Cert, 0, len(targets))
	for _, c := range targets {
		if err := st.Revoke(ctx, c.Serial, reason, now); err != nil {
			return revoked, err
		}
		c.RevokedAt, c.Reason = now.Truncate(time.Second).UTC(), reason
		revoked = append(revoked, c)
	}
	return revoked, nil
}

func revocationTargets(ctx context.Context, st *store.Store, nameOrSerial string, now time.Time) ([]store.Cert, error) {
	if c, err := exactSerial(ctx, st, nameOrSerial); err != nil || c != nil {
		if err != nil {
			return nil, err
		}
		return checkRevocable([]store.Cert{*c})
	}
	byName, err := st.CertsByName(ctx, nameOrSerial)
	if err != nil {
		return nil, err
	}
	if leaves := leavesOf(byName); len(leaves) > 0 {
		valid := validOf(leaves, now)
		if len(valid) == 0 {
			return nil, fmt.Errorf("failed to revoke: %q has no valid certificate (all revoked or expired); revoke one by serial", nameOrSerial)
		}
		return valid, nil
	}
	c, err := st.CertBySerial(ctx, nameOrSerial)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("failed to revoke: no certificate named or with serial %q: %w", nameOrSerial, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to revoke: %w", err)
	}
	return checkRevocable([]store.Cert{c})
}

// exactSerial finds the certificate whose full serial is s, or nil.
func exactSerial(ctx context.Context, st *store.Store, s string) (*store.Cert, error) {
	if _, err := pki.ParseSerialHex(s); err != nil {
		return nil, nil
	}
	c, err := st.CertBySerial(ctx, s)
	if err != nil || c.Serial != store.NormalizeSerial(s) {
		return nil, nil // not an exact match; name and prefix lookups follow
	}
	return &c, nil
}

func checkRevocable(certs []store.Cert) ([]store.Cert, error) {
	for _, c := range certs {
		if !isLeaf(c) {
			return nil, ErrRevokeCA
		}
		if c.Revoked() {
			return nil, fmt.Errorf("failed to revoke: certificate %s %w on %s", c.Serial, store.ErrAlreadyRevoked,
				c.RevokedAt.Format(time.RFC3339))
		}
	}
	return certs, nil
}

func leavesOf(certs []store.Cert) []store.Cert {
	var out []store.Cert
	for _, c := range certs {
		if isLeaf(c) {
			out = append(out, c)
		}
	}
	return out
}

func validOf(certs []store.Cert, now time.Time) []store.Cert {
	var out []store.Cert
	for _, c := range certs {
		if isValid(c, now) {
			out = append(out, c)
		}
	}
	return out
}

// CRL signs a CRL listing every revoked certificate, and every certificate
// a renewal superseded (reason superseded, from the end of its overlap),
// with the next CRL number from the inventory, valid for validity
// (pki.DefaultCRLValidity when zero). It returns PEM "X509 CRL".
func (a *Authority) CRL(ctx context.Context, validity time.Duration, now time.Time) ([]byte, error) {
	now = nowOr(now)
	certs, err := a.st.Certs(ctx)
	if err != nil {
		return nil, err
	}
	revoked := make([]pki.Revoked, 0, len(certs))
	for _, c := range certs {
		entry, listed := crlEntry(c, now)
		if !listed {
			continue
		}
		serial, err := pki.ParseSerialHex(c.Serial)
		if err != nil {
			return nil, fmt.Errorf("failed to create the CRL: %w", err)
		}
		entry.Serial = serial
		revoked = append(revoked, entry)
	}
	number, err := a.st.NextCRLNumber(ctx)
	if err != nil {
		return nil, err
	}
	return a.ca.CreateCRL(revoked, big.NewInt(number), now, validity)
}

// crlEntry is c's CRL entry without its serial, if c belongs on the CRL.
func crlEntry(c store.Cert, now time.Time) (pki.Revoked, bool) {
	switch {
	case c.Revoked():
		reason, err := pki.CanonicalReason(c.Reason)
		if err != nil {
			reason = "" // a reason this version does not know still revokes
		}
		return pki.Revoked{RevokedAt: c.RevokedAt, Reason: reason}, true
	case isLeaf(c) && c.Superseded(now):
		return pki.Revoked{RevokedAt: c.SupersededAt, Reason: "superseded"}, true
	}
	return pki.Revoked{}, false
}
