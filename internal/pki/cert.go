package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RFC 5280 method 1 key identifiers are SHA-1 by definition; not a security use.
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
)

// Kind is what a certificate is for.
type Kind string

// Certificate kinds.
const (
	KindCA     Kind = "ca"
	KindServer Kind = "server"
	KindClient Kind = "client"
)

// ParseKind parses "ca", "server" or "client".
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindCA, KindServer, KindClient:
		return k, nil
	}
	return "", fmt.Errorf("unknown certificate kind %q (valid: ca, server, client)", s)
}

// Default validities.
const (
	// DefaultCAValidity is ten years, as mkcert uses: the CA is the trust
	// anchor copied to every client, so replacing it is the expensive event.
	DefaultCAValidity = 3650 * 24 * time.Hour

	// DefaultServerValidity is 397 days, the CA/Browser Forum Baseline
	// Requirements maximum for TLS server certificates (ballot SC31, 2020),
	// which Apple and Chrome also enforce.
	DefaultServerValidity = 397 * 24 * time.Hour

	// DefaultClientValidity is 30 days: a client certificate is a login, so a
	// short life bounds the damage of a copied key, and renewing is one command.
	DefaultClientValidity = 30 * 24 * time.Hour

	// Backdate is how far NotBefore (and a CRL's thisUpdate) lies before the
	// issuing time, so a certificate issued on one machine is already valid on
	// another whose clock runs a little behind. A leaf's validity period is
	// therefore its requested validity plus Backdate.
	Backdate = time.Minute

	// maxCommonNameLength is ub-common-name from RFC 5280 appendix A.
	maxCommonNameLength = 64

	// serialBits is the size of random serials: 128 bits, well above the
	// 64 bits of entropy the CA/Browser Forum requires and within the 20
	// octets RFC 5280 section 4.1.2.2 allows.
	serialBits = 128
)

// DefaultValidity is the validity used when a request asks for none.
func DefaultValidity(k Kind) time.Duration {
	switch k {
	case KindCA:
		return DefaultCAValidity
	case KindServer:
		return DefaultServerValidity
	}
	return DefaultClientValidity
}

// CA is a certificate authority: its certificate and signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewCA creates a self-signed CA certificate for key, valid from now (less
// Backdate) for validity (DefaultCAValidity when zero).
func NewCA(cn string, key crypto.Signer, validity time.Duration, now time.Time) (*CA, error) {
	if err := checkCommonName(cn); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, errors.New("failed to create CA: no key")
	}
	validity, err := validityOrDefault(KindCA, validity)
	if err != nil {
		return nil, err
	}
	tmpl, err := baseTemplate(cn, key.Public(), now, now.Add(validity))
	if err != nil {
		return nil, fmt.Errorf("failed to create CA: %w", err)
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	// The CA signs leaves only, never intermediate CAs.
	tmpl.MaxPathLen = 0
	tmpl.MaxPathLenZero = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	// crypto/x509 leaves AuthorityKeyId out of a self-signed certificate
	// unless the template sets it: the CA names its own key, as every
	// leaf names it, so chain builders can match them by key id.
	tmpl.AuthorityKeyId = tmpl.SubjectKeyId
	cert, err := createCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("failed to create CA: %w", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LeafRequest describes a server or client certificate to issue.
type LeafRequest struct {
	Kind Kind
	Name string // Subject CommonName

	// Groups are a client's groups, carried in Subject Organization as
	// Kubernetes does. Servers have none. They form a set: duplicates are
	// dropped, and DER orders the values of one RDN by their encoding, so
	// the certificate does not keep the order given.
	Groups []string

	// DNSNames and IPs are a server's subject alternative names; a server
	// needs at least one. Clients have none.
	DNSNames []string
	IPs      []net.IP

	PublicKey crypto.PublicKey
	Validity  time.Duration // zero means DefaultValidity(Kind)
	Now       time.Time
}

// Issue signs a server or client certificate for req.PublicKey. NotAfter is
// capped at the CA's own NotAfter: a leaf cannot outlive its issuer, and
// capping keeps issuance working late in the CA's life instead of failing.
func (ca *CA) Issue(req LeafRequest) (*x509.Certificate, error) {
	d, err := ca.Draft(req)
	if err != nil {
		return nil, err
	}
	return ca.Sign(d)
}

// Draft is a leaf certificate with every field fixed, serial included, but
// not signed yet, so that the caller can record it before it exists.
type Draft struct {
	// Template is what Sign will sign; callers read it and must not change it.
	Template *x509.Certificate
	kind     Kind
	pub      crypto.PublicKey
}

// Draft checks req and fixes the certificate Issue would sign for it.
func (ca *CA) Draft(req LeafRequest) (*Draft, error) {
	tmpl, err := ca.leafTemplate(req)
	if err != nil {
		return nil, fmt.Errorf("failed to issue %s certificate: %w", req.Kind, err)
	}
	return &Draft{Template: tmpl, kind: req.Kind, pub: req.PublicKey}, nil
}

// Sign signs a draft.
func (ca *CA) Sign(d *Draft) (*x509.Certificate, error) {
	cert, err := createCertificate(d.Template, ca.Cert, d.pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("failed to issue %s certificate: %w", d.kind, err)
	}
	return cert, nil
}

// SignCSR issues a certificate for the public key in csr after checking the
// CSR's signature (proof that the requester holds the private key). Only the
// key is taken from the CSR: subject, groups, SANs and validity come from req,
// so a requester can never choose its own identity. req.PublicKey is ignored.
func (ca *CA) SignCSR(csr *x509.CertificateRequest, req LeafRequest) (*x509.Certificate, error) {
	d, err := ca.DraftCSR(csr, req)
	if err != nil {
		return nil, err
	}
	return ca.Sign(d)
}

// DraftCSR is Draft for the key in csr, with SignCSR's checks.
func (ca *CA) DraftCSR(csr *x509.CertificateRequest, req LeafRequest) (*Draft, error) {
	if csr == nil {
		return nil, errors.New("failed to sign CSR: no CSR")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("failed to sign CSR: bad signature: %w", err)
	}
	if _, err := KeyTypeOf(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("failed to sign CSR: %w", err)
	}
	req.PublicKey = csr.PublicKey
	return ca.Draft(req)
}

func (ca *CA) leafTemplate(req LeafRequest) (*x509.Certificate, error) {
	if ca == nil || ca.Cert == nil || ca.Key == nil {
		return nil, errors.New("no CA")
	}
	if err := checkLeafRequest(req); err != nil {
		return nil, err
	}
	validity, err := validityOrDefault(req.Kind, req.Validity)
	if err != nil {
		return nil, err
	}
	if !req.Now.Before(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("the CA certificate expired on %s", ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	notAfter := req.Now.Add(validity)
	if notAfter.After(ca.Cert.NotAfter) {
		notAfter = ca.Cert.NotAfter
	}
	tmpl, err := baseTemplate(req.Name, req.PublicKey, req.Now, notAfter)
	if err != nil {
		return nil, err
	}
	tmpl.KeyUsage = leafKeyUsage(req.PublicKey)
	tmpl.BasicConstraintsValid = true // CA:FALSE, stated explicitly
	switch req.Kind {
	case KindServer:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = req.DNSNames
		tmpl.IPAddresses = req.IPs
	case KindClient:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.Subject.Organization = uniqueSorted(req.Groups)
	}
	return tmpl, nil
}

func checkLeafRequest(req LeafRequest) error {
	if req.Kind != KindServer && req.Kind != KindClient {
		return fmt.Errorf("kind must be %q or %q, not %q", KindServer, KindClient, req.Kind)
	}
	if err := checkCommonName(req.Name); err != nil {
		return err
	}
	if identity.IsPeerCN(req.Name) {
		return fmt.Errorf("name %q starts with %q, which names local socket users", req.Name, identity.PeerCNPrefix)
	}
	if req.PublicKey == nil {
		return errors.New("no public key")
	}
	if _, err := KeyTypeOf(req.PublicKey); err != nil {
		return err
	}
	for _, g := range req.Groups {
		if g == "" || len(g) > maxCommonNameLength {
			return fmt.Errorf("group %q must be 1 to %d characters", g, maxCommonNameLength)
		}
	}
	switch req.Kind {
	case KindServer:
		if len(req.DNSNames) == 0 && len(req.IPs) == 0 {
			return errors.New("a server certificate needs at least one DNS name or IP address")
		}
		if len(req.Groups) > 0 {
			return errors.New("a server certificate has no groups")
		}
	case KindClient:
		if len(req.DNSNames) > 0 || len(req.IPs) > 0 {
			return errors.New("a client certificate has no DNS names or IP addresses")
		}
	}
	return nil
}

// leafKeyUsage is digitalSignature, plus keyEncipherment for RSA keys, which
// TLS 1.2 RSA key exchange uses.
func leafKeyUsage(pub crypto.PublicKey) x509.KeyUsage {
	if _, ok := pub.(*rsa.PublicKey); ok {
		return x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	}
	return x509.KeyUsageDigitalSignature
}

func baseTemplate(cn string, pub crypto.PublicKey, now, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := NewSerial()
	if err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-Backdate),
		NotAfter:     notAfter,
		SubjectKeyId: ski,
	}, nil
}

func createCertificate(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func validityOrDefault(k Kind, d time.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, fmt.Errorf("validity %s is negative", d)
	}
	if d == 0 {
		return DefaultValidity(k), nil
	}
	return d, nil
}

func checkCommonName(cn string) error {
	if cn == "" {
		return errors.New("name is empty")
	}
	if len(cn) > maxCommonNameLength {
		return fmt.Errorf("name %q is longer than %d characters", cn, maxCommonNameLength)
	}
	return nil
}

// NewSerial returns a random positive serial number of at most 128 bits.
func NewSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), serialBits)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("failed to generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// SubjectKeyID computes a key identifier as RFC 5280 section 4.2.1.2
// method 1 describes: the SHA-1 of the subjectPublicKey BIT STRING.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("failed to encode public key: %w", err)
	}
	var info struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(spki, &info); err != nil {
		return nil, fmt.Errorf("failed to decode public key: %w", err)
	}
	sum := sha1.Sum(info.PublicKey.Bytes) //nolint:gosec // see import
	return sum[:], nil
}

func uniqueSorted(values []string) []string {
	if len(values) == 0 {
		return nil
	}
	out := slices.Clone(values)
	slices.Sort(out)
	return slices.Compact(out)
}
