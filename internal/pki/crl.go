package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// DefaultCRLValidity is how long a CRL stays current (its nextUpdate). Seven
// days sits inside the ten days the CA/Browser Forum Baseline Requirements
// (section 4.9.7) allow for CRLs, and the gateway regenerates it long before.
const DefaultCRLValidity = 7 * 24 * time.Hour

// Revoked is one entry of a CRL.
type Revoked struct {
	Serial    *big.Int
	RevokedAt time.Time
	Reason    string // a name ParseRevocationReason accepts; empty means unspecified
}

// revocationReasons are the CRLReason codes of RFC 5280 section 5.3.1, by
// their canonical kebab-case names. Code 7 is unused, and removeFromCRL (8)
// only has meaning in delta CRLs, which dockgate does not produce.
var revocationReasons = []struct {
	name string
	code int
}{
	{"unspecified", 0},
	{"key-compromise", 1},
	{"ca-compromise", 2},
	{"affiliation-changed", 3},
	{"superseded", 4},
	{"cessation-of-operation", 5},
	{"certificate-hold", 6},
	{"privilege-withdrawn", 9},
	{"aa-compromise", 10},
}

// ParseRevocationReason parses an RFC 5280 revocation reason, in kebab-case
// ("key-compromise") or as RFC 5280 spells it ("keyCompromise"), ignoring
// case. The empty string means unspecified (0).
func ParseRevocationReason(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	want := normalizeReason(s)
	for _, r := range revocationReasons {
		if normalizeReason(r.name) == want {
			return r.code, nil
		}
	}
	return 0, fmt.Errorf("unknown revocation reason %q (valid: %s)", s, reasonList())
}

// ReasonName is the canonical kebab-case name of a reason code.
func ReasonName(code int) string {
	for _, r := range revocationReasons {
		if r.code == code {
			return r.name
		}
	}
	return fmt.Sprintf("reason-%d", code)
}

// CanonicalReason parses s with ParseRevocationReason and returns its
// canonical name, the form to store.
func CanonicalReason(s string) (string, error) {
	code, err := ParseRevocationReason(s)
	if err != nil {
		return "", err
	}
	return ReasonName(code), nil
}

func normalizeReason(s string) string {
	return strings.ToLower(strings.NewReplacer("-", "", "_", "").Replace(s))
}

func reasonList() string {
	names := make([]string, len(revocationReasons))
	for i, r := range revocationReasons {
		names[i] = r.name
	}
	return strings.Join(names, ", ")
}

// CreateCRL signs a CRL listing revoked, with the given CRL number, current
// from now (less Backdate) until now+validity
// (DefaultCRLValidity when zero). It returns PEM "X509 CRL".
func (ca *CA) CreateCRL(revoked []Revoked, number *big.Int, now time.Time, validity time.Duration) ([]byte, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("failed to create CRL: no CA")
	}
	if number == nil || number.Sign() < 0 {
		return nil, errors.New("failed to create CRL: the CRL number must be non-negative")
	}
	if validity < 0 {
		return nil, fmt.Errorf("failed to create CRL: validity %s is negative", validity)
	}
	if validity == 0 {
		validity = DefaultCRLValidity
	}
	entries, err := crlEntries(revoked)
	if err != nil {
		return nil, fmt.Errorf("failed to create CRL: %w", err)
	}
	tmpl := &x509.RevocationList{
		Number:                    number,
		ThisUpdate:                now.Add(-Backdate),
		NextUpdate:                now.Add(validity),
		RevokedCertificateEntries: entries,
	}
	der, err := x509.CreateRevocationList(rand.Reader, tmpl, ca.Cert, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("failed to create CRL: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCRL, Bytes: der}), nil
}

func crlEntries(revoked []Revoked) ([]x509.RevocationListEntry, error) {
	entries := make([]x509.RevocationListEntry, 0, len(revoked))
	for _, r := range revoked {
		if r.Serial == nil || r.Serial.Sign() <= 0 {
			return nil, errors.New("revoked entry without a valid serial number")
		}
		code, err := ParseRevocationReason(r.Reason)
		if err != nil {
			return nil, err
		}
		entries = append(entries, x509.RevocationListEntry{
			SerialNumber:   r.Serial,
			RevocationTime: r.RevokedAt.UTC(),
			ReasonCode:     code, // zero (unspecified) omits the extension, as RFC 5280 5.3.1 asks
		})
	}
	return entries, nil
}

// ParseCRLPEM decodes a PEM "X509 CRL". It does not check the signature; use
// (*x509.RevocationList).CheckSignatureFrom with the CA certificate.
func ParseCRLPEM(data []byte) (*x509.RevocationList, error) {
	block, err := firstBlock(data, "CRL")
	if err != nil {
		return nil, err
	}
	if block.Type != pemTypeCRL {
		return nil, fmt.Errorf("failed to parse CRL: PEM block is %q, want %q", block.Type, pemTypeCRL)
	}
	crl, err := x509.ParseRevocationList(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse CRL: %w", err)
	}
	return crl, nil
}
