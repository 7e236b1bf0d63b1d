package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Certificate kinds.
const (
	KindCA     = "ca"
	KindServer = "server"
	KindClient = "client"
)

// Certificate states. A row is written pending before the certificate is
// signed and becomes issued once the certificate and its files exist, so no
// certificate the CA signed is ever missing from the inventory.
const (
	StatePending = "pending"
	StateIssued  = "issued"
)

// MinSerialPrefix is the shortest serial prefix CertBySerial accepts: four
// hex digits, so a typo of one or two characters is not silently taken for
// a unique match.
const MinSerialPrefix = 4

// Cert is one issued certificate as the inventory records it. Times have
// one-second precision (X.509's) and are returned in UTC.
type Cert struct {
	Serial      string // lower-case hex, no separators
	Kind        string // KindCA, KindServer or KindClient
	Name        string
	Groups      []string
	SANs        []string
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string    // SHA-256 of the DER, hex
	RevokedAt   time.Time // zero while not revoked
	Reason      string
	PEM         []byte // empty while pending: not signed yet
	State       string // StatePending or StateIssued; empty means issued

	// SupersededAt is when a renewal's replacement takes over: from then on
	// the gateway refuses this certificate. Zero while it is current.
	SupersededAt time.Time
	SupersededBy string // serial of the replacement
}

// Pending reports whether the certificate's issuance has not completed.
func (c Cert) Pending() bool { return c.State == StatePending }

// Superseded reports whether a renewal has replaced the certificate at now
// (its overlap window, if any, is over).
func (c Cert) Superseded(now time.Time) bool {
	return !c.SupersededAt.IsZero() && !now.Before(c.SupersededAt)
}

// Revoked reports whether the certificate has been revoked.
func (c Cert) Revoked() bool { return !c.RevokedAt.IsZero() }

// NormalizeSerial returns s in the inventory's serial format: lower case,
// without the colons openssl prints. It does not check that s is hex.
func NormalizeSerial(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
}

func isHex(s string) bool {
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return s != ""
}

func (c Cert) validate() error {
	switch {
	case !isHex(c.Serial):
		return fmt.Errorf("invalid serial %q: want lower-case hex", c.Serial)
	case c.Kind != KindCA && c.Kind != KindServer && c.Kind != KindClient:
		return fmt.Errorf("invalid certificate kind %q", c.Kind)
	case c.Name == "":
		return errors.New("certificate has no name")
	case c.State != "" && c.State != StatePending && c.State != StateIssued:
		return fmt.Errorf("invalid certificate state %q", c.State)
	case len(c.PEM) == 0 && !c.Pending():
		return errors.New("certificate has no PEM")
	}
	return nil
}

const certColumns = `serial, kind, name, groups_json, sans_json, not_before, not_after,
	fingerprint, revoked_at, reason, pem, state, superseded_at, superseded_by`

// AddCert records a certificate: an issued one, or a pending one (State
// StatePending) about to be signed, which CompleteCert later finishes. A
// serial already in the inventory is refused with ErrDuplicateSerial.
func (s *Store) AddCert(ctx context.Context, c Cert) error {
	if err := c.validate(); err != nil {
		return fmt.Errorf("failed to record certificate: %w", err)
	}
	if c.State == "" {
		c.State = StateIssued
	}
	err := s.inTx(ctx, func(tx tx) error {
		if added, err := insertCert(ctx, tx, c); err != nil {
			return err
		} else if !added {
			return ErrDuplicateSerial
		}
		return bumpRevocationGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("failed to record certificate %s: %w", c.Serial, err)
	}
	return nil
}

// insertCert inserts c unless its serial is taken, and reports whether it
// did.
func insertCert(ctx context.Context, tx tx, c Cert) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO certs (`+certColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (serial) DO NOTHING`,
		c.Serial, c.Kind, c.Name, jsonList(c.Groups), jsonList(c.SANs),
		c.NotBefore.Unix(), c.NotAfter.Unix(), c.Fingerprint,
		nullTime(c.RevokedAt), c.Reason, nonNilBytes(c.PEM), c.State,
		nullTime(c.SupersededAt), c.SupersededBy)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Supersession says which certificate a new one replaces, and when.
type Supersession struct {
	Serial string    // the certificate being replaced
	At     time.Time // when the gateway stops accepting it; now for no overlap
}

// CompleteCert marks the pending certificate serial issued, with its PEM and
// fingerprint, and, when sup is not nil, marks the certificate it replaces
// superseded from sup.At, all in one transaction: the replacement is never
// valid without the old one being on its way out. A serial that is not
// pending (unknown, already complete, or revoked meanwhile) is an error.
func (s *Store) CompleteCert(ctx context.Context, serial string, pem []byte, fingerprint string, sup *Supersession) error {
	serial = NormalizeSerial(serial)
	if len(pem) == 0 {
		return fmt.Errorf("failed to complete certificate %s: no PEM", serial)
	}
	err := s.inTx(ctx, func(tx tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE certs SET state = 'issued', pem = ?, fingerprint = ?
			WHERE serial = ? AND state = 'pending' AND revoked_at IS NULL`, pem, fingerprint, serial)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("no pending, unrevoked certificate with serial %s", serial)
		}
		if sup != nil {
			if err := supersede(ctx, tx, sup, serial); err != nil {
				return err
			}
		}
		return bumpRevocationGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("failed to complete certificate %s: %w", serial, err)
	}
	return nil
}

// supersede marks sup.Serial replaced by serial from sup.At; an earlier
// supersession of the same certificate is kept.
func supersede(ctx context.Context, tx tx, sup *Supersession, serial string) error {
	_, err := tx.ExecContext(ctx, `UPDATE certs SET superseded_at = ?, superseded_by = ?
		WHERE serial = ? AND (superseded_at IS NULL OR superseded_at > ?)`,
		sup.At.Unix(), serial, NormalizeSerial(sup.Serial), sup.At.Unix())
	return err
}

// PendingCerts lists the unrevoked certificates whose issuance has not
// completed, oldest first. Seen while holding the issuing lock, they belong
// to an issuance that was interrupted.
func (s *Store) PendingCerts(ctx context.Context) ([]Cert, error) {
	return s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs
		WHERE state = 'pending' AND revoked_at IS NULL ORDER BY not_before, serial`)
}

// Certs lists every certificate, ordered by kind, name and issue time.
func (s *Store) Certs(ctx context.Context) ([]Cert, error) {
	return s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs ORDER BY kind, name, not_before, serial`)
}

// CertsByName lists the certificates issued under name, oldest first.
// An unknown name gives an empty list, not an error.
func (s *Store) CertsByName(ctx context.Context, name string) ([]Cert, error) {
	return s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs WHERE name = ?
		ORDER BY not_before, serial`, name)
}

// RevokedCerts lists the revoked certificates, oldest revocation first.
func (s *Store) RevokedCerts(ctx context.Context) ([]Cert, error) {
	return s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs WHERE revoked_at IS NOT NULL
		ORDER BY revoked_at, serial`)
}

// CertBySerial finds a certificate by its full serial or, failing that, by a
// prefix of at least MinSerialPrefix hex digits that matches exactly one
// serial. Colons and upper case are accepted. It returns ErrNotFound or
// ErrAmbiguous otherwise.
func (s *Store) CertBySerial(ctx context.Context, serialOrPrefix string) (Cert, error) {
	p := NormalizeSerial(serialOrPrefix)
	if !isHex(p) {
		return Cert{}, fmt.Errorf("certificate with serial %q %w", serialOrPrefix, ErrNotFound)
	}
	exact, err := s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs WHERE serial = ?`, p)
	if err != nil || len(exact) == 1 {
		return first(exact), err
	}
	if len(p) < MinSerialPrefix {
		return Cert{}, fmt.Errorf("certificate with serial %s %w (a prefix needs %d hex digits)", p, ErrNotFound, MinSerialPrefix)
	}
	// 'g' sorts right after 'f', so [p, p+"g") is every hex string
	// starting with p, and the primary key index answers the range.
	matches, err := s.queryCerts(ctx, `SELECT `+certColumns+` FROM certs
		WHERE serial >= ? AND serial < ? ORDER BY serial LIMIT 2`, p, p+"g")
	switch {
	case err != nil:
		return Cert{}, err
	case len(matches) == 0:
		return Cert{}, fmt.Errorf("certificate with serial %s %w", p, ErrNotFound)
	case len(matches) > 1:
		return Cert{}, fmt.Errorf("serial prefix %s %w: give more digits", p, ErrAmbiguous)
	}
	return matches[0], nil
}

func first(cs []Cert) Cert {
	if len(cs) == 0 {
		return Cert{}
	}
	return cs[0]
}

// Revoke marks the certificate with this exact serial as revoked at the
// given time. It returns ErrNotFound for an unknown serial and
// ErrAlreadyRevoked if it was revoked before (the first time is kept).
func (s *Store) Revoke(ctx context.Context, serial, reason string, at time.Time) error {
	serial = NormalizeSerial(serial)
	err := s.inTx(ctx, func(tx tx) error {
		var revokedAt sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM certs WHERE serial = ?`, serial).Scan(&revokedAt)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("certificate with serial %s %w", serial, ErrNotFound)
		case err != nil:
			return err
		case revokedAt.Valid:
			return fmt.Errorf("certificate %s %w", serial, ErrAlreadyRevoked)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE certs SET revoked_at = ?, reason = ? WHERE serial = ?`,
			at.Unix(), reason, serial); err != nil {
			return err
		}
		return bumpRevocationGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("failed to revoke: %w", err)
	}
	return nil
}

// NextCRLNumber returns a CRL number larger than any returned before, by any
// process sharing this state directory. RFC 5280 section 5.2.3 requires CRL
// numbers to increase monotonically. The first is 1.
func (s *Store) NextCRLNumber(ctx context.Context) (int64, error) {
	var n int64
	err := s.q.QueryRowContext(ctx,
		`UPDATE counters SET value = value + 1 WHERE name = 'crl_number' RETURNING value`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("failed to allocate a CRL number: %w", err)
	}
	return n, nil
}

func (s *Store) queryCerts(ctx context.Context, query string, args ...any) ([]Cert, error) {
	return queryCerts(ctx, s.q, query, args...)
}

func queryCerts(ctx context.Context, q conn, query string, args ...any) ([]Cert, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("failed to read certificates: %w", err)
	}
	defer rows.Close()
	var out []Cert
	for rows.Next() {
		c, err := scanCert(rows)
		if err != nil {
			return nil, fmt.Errorf("failed to read certificates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("failed to read certificates: %w", err)
	}
	return out, nil
}

func scanCert(rows *sql.Rows) (Cert, error) {
	var (
		c                       Cert
		groups, sans            string
		notBefore, notAfter     int64
		revokedAt, supersededAt sql.NullInt64
	)
	err := rows.Scan(&c.Serial, &c.Kind, &c.Name, &groups, &sans, &notBefore, &notAfter,
		&c.Fingerprint, &revokedAt, &c.Reason, &c.PEM, &c.State, &supersededAt, &c.SupersededBy)
	if err != nil {
		return Cert{}, err
	}
	if c.Groups, err = parseList(groups); err != nil {
		return Cert{}, err
	}
	if c.SANs, err = parseList(sans); err != nil {
		return Cert{}, err
	}
	c.NotBefore, c.NotAfter = unixTime(notBefore), unixTime(notAfter)
	c.RevokedAt = nullableTime(revokedAt)
	c.SupersededAt = nullableTime(supersededAt)
	return c, nil
}

// jsonList encodes a list of strings for a *_json column.
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("corrupt list %q: %w", s, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}

// nonNilBytes keeps a pending row's empty PEM from being stored as NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func nullTime(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

func nullableTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return unixTime(n.Int64)
}

// Certificate statuses, as `dockgate certs` shows them.
const (
	StatusValid      = "valid"
	StatusExpiring   = "expiring"
	StatusExpired    = "expired"
	StatusRevoked    = "revoked"
	StatusPending    = "pending"
	StatusSuperseded = "superseded"
)

// Status classifies the certificate at now: revoked, pending (issuance not
// completed; the gateway refuses it), superseded (renewed, and past its
// overlap window), expired, expiring (less than a third of its lifetime
// left: the point at which dockgate's renewal, and ACME clients such as
// certbot, renew), or valid. The threshold is relative so that
// short-lived certificates (enrollment's 7 days) are not "expiring" from
// the moment they are issued; for the common 30-day and longer lifetimes
// a third is more than a week.
func (c Cert) Status(now time.Time) string {
	left := c.NotAfter.Sub(now)
	switch {
	case c.Revoked():
		return StatusRevoked
	case c.Pending():
		return StatusPending
	case c.Superseded(now):
		return StatusSuperseded
	case left <= 0:
		return StatusExpired
	case left < c.NotAfter.Sub(c.NotBefore)/3:
		return StatusExpiring
	}
	return StatusValid
}

// DeletePending removes the row of a pending certificate whose issuance
// failed without leaving a copy of it. Rows that are issued, or that were
// revoked meanwhile (a record someone made), are never deleted.
func (s *Store) DeletePending(ctx context.Context, serial string) error {
	err := s.inTx(ctx, func(tx tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM certs WHERE serial = ? AND state = 'pending' AND revoked_at IS NULL`,
			NormalizeSerial(serial)); err != nil {
			return err
		}
		return bumpRevocationGeneration(ctx, tx)
	})
	if err != nil {
		return fmt.Errorf("failed to remove pending certificate %s: %w", serial, err)
	}
	return nil
}
