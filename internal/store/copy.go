package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// CopyReport says what Copy did.
type CopyReport struct {
	CertsCopied, CertsPresent   int // present: the same row was already there
	TokensCopied, TokensPresent int
	// Conflicts describe rows the destination holds differently (or
	// that would break its rules); they were left as the destination has
	// them and not copied.
	Conflicts []string
}

// ErrOtherCA is a destination that holds the inventory of another CA.
var ErrOtherCA = errors.New("holds the inventory of another CA")

// Copy copies src's certificate rows (with their revocation and
// supersession), tokens and CRL number into dst, in one transaction on
// dst, without issuing anything: the rows are the same certificates. It
// is idempotent: a row dst already has, the same, counts as present. A row
// dst has differently (a token used since the last copy, a certificate
// revoked on one side only) is reported as a conflict and never
// overwritten, and so is a valid certificate whose name already has
// another valid certificate in dst. A dst whose valid CA certificate is
// not src's is refused whole (ErrOtherCA). dst's CRL number is raised to
// src's if lower, so CRL numbers keep increasing.
func Copy(ctx context.Context, src, dst *Store, now time.Time) (CopyReport, error) {
	var r CopyReport
	certs, err := src.Certs(ctx)
	if err != nil {
		return r, err
	}
	tokens, err := src.Tokens(ctx)
	if err != nil {
		return r, err
	}
	crl, err := src.crlNumber(ctx)
	if err != nil {
		return r, err
	}
	err = dst.inTx(ctx, func(tx tx) error {
		r = CopyReport{} // a retried transaction starts over
		if err := checkSameCA(ctx, tx, certs, now); err != nil {
			return err
		}
		for _, c := range certs {
			if err := copyCert(ctx, tx, c, now, &r); err != nil {
				return err
			}
		}
		for _, t := range tokens {
			if err := copyToken(ctx, tx, t, now, &r); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE counters SET value = ? WHERE name = 'crl_number' AND value < ?`, crl, crl); err != nil {
			return err
		}
		if r.CertsCopied == 0 {
			return nil
		}
		return bumpRevocationGeneration(ctx, tx)
	})
	if err != nil {
		return CopyReport{}, fmt.Errorf("failed to copy the inventory to %s: %w", dst.where, err)
	}
	return r, nil
}

func (s *Store) crlNumber(ctx context.Context) (int64, error) {
	var n int64
	err := s.q.QueryRowContext(ctx, `SELECT value FROM counters WHERE name = 'crl_number'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("failed to read the CRL number: %w", err)
	}
	return n, nil
}

// checkSameCA refuses a destination whose valid CA certificates are not
// among the source's.
func checkSameCA(ctx context.Context, tx tx, certs []Cert, now time.Time) error {
	theirs, err := queryCerts(ctx, tx, `SELECT `+certColumns+` FROM certs WHERE kind = 'ca' AND revoked_at IS NULL`)
	if err != nil {
		return err
	}
	for _, ca := range theirs {
		if !now.Before(ca.NotAfter) {
			continue
		}
		if !slices.ContainsFunc(certs, func(c Cert) bool { return c.Kind == KindCA && c.Fingerprint == ca.Fingerprint }) {
			return fmt.Errorf("the destination %w (CA certificate %s)", ErrOtherCA, ca.Serial)
		}
	}
	return nil
}

func copyCert(ctx context.Context, tx tx, c Cert, now time.Time, r *CopyReport) error {
	have, err := queryCerts(ctx, tx, `SELECT `+certColumns+` FROM certs WHERE serial = ?`, c.Serial)
	if err != nil {
		return err
	}
	if len(have) == 1 {
		if sameCert(have[0], c) {
			r.CertsPresent++
		} else {
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s certificate %s (serial %s) differs in the destination (%s there, %s here)",
				c.Kind, c.Name, c.Serial, have[0].Status(now), c.Status(now)))
		}
		return nil
	}
	if c.Kind != KindCA && c.Status(now) != StatusRevoked && c.Status(now) != StatusExpired && c.Status(now) != StatusSuperseded {
		others, err := queryCerts(ctx, tx, `SELECT `+certColumns+` FROM certs WHERE name = ? AND kind <> 'ca'`, c.Name)
		if err != nil {
			return err
		}
		for _, o := range others {
			if !o.Revoked() && !o.Superseded(now) && now.Before(o.NotAfter) {
				r.Conflicts = append(r.Conflicts, fmt.Sprintf("%s certificate %s (serial %s) not copied: the destination has a valid certificate of that name (serial %s)",
					c.Kind, c.Name, c.Serial, o.Serial))
				return nil
			}
		}
	}
	if _, err := insertCert(ctx, tx, c); err != nil {
		return err
	}
	r.CertsCopied++
	return nil
}

func sameCert(a, b Cert) bool {
	return a.Serial == b.Serial && a.Kind == b.Kind && a.Name == b.Name &&
		slices.Equal(a.Groups, b.Groups) && slices.Equal(a.SANs, b.SANs) &&
		a.NotBefore.Equal(b.NotBefore) && a.NotAfter.Equal(b.NotAfter) &&
		a.Fingerprint == b.Fingerprint && a.RevokedAt.Equal(b.RevokedAt) && a.Reason == b.Reason &&
		bytes.Equal(a.PEM, b.PEM) && a.State == b.State &&
		a.SupersededAt.Equal(b.SupersededAt) && a.SupersededBy == b.SupersededBy
}

func copyToken(ctx context.Context, tx tx, t Token, now time.Time, r *CopyReport) error {
	have, err := tokenWhere(ctx, tx, `secret_hash = ?`, t.SecretHash)
	switch {
	case err == nil:
		if sameToken(have, t) {
			r.TokensPresent++
		} else {
			// Named, never shown by its secret or hash.
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("token %s differs in the destination (%d uses left there, %d here; revoked there %t, here %t)",
				t.Name, have.UsesLeft, t.UsesLeft, have.Revoked(), t.Revoked()))
		}
		return nil
	case !errors.Is(err, ErrNotFound):
		return err
	}
	if live(t, now) {
		other, err := tokenWhere(ctx, tx, `name = ? AND revoked_at IS NULL AND uses_left > 0 AND expires_at > ? ORDER BY id LIMIT 1`, t.Name, now.Unix())
		if err == nil && live(other, now) {
			r.Conflicts = append(r.Conflicts, fmt.Sprintf("token %s not copied: the destination has another usable token of that name", t.Name))
			return nil
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenInsertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.Name, t.Kind, t.SecretHash, jsonList(t.Groups), t.CertDays, t.UsesLeft,
		t.ExpiresAt.Unix(), nullTime(t.RevokedAt), t.CreatedAt.Unix())
	if err != nil {
		return err
	}
	r.TokensCopied++
	return nil
}

func sameToken(a, b Token) bool {
	return a.Name == b.Name && a.Kind == b.Kind && slices.Equal(a.Groups, b.Groups) && a.CertDays == b.CertDays &&
		a.UsesLeft == b.UsesLeft && a.ExpiresAt.Equal(b.ExpiresAt) &&
		a.RevokedAt.Equal(b.RevokedAt) && a.CreatedAt.Equal(b.CreatedAt)
}

// live reports whether t can still be used at now.
func live(t Token, now time.Time) bool {
	return !t.Revoked() && t.UsesLeft > 0 && now.Before(t.ExpiresAt)
}
