package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
)

// PEM block types for certificates, requests and CRLs.
const (
	pemTypeCertificate = "CERTIFICATE"
	pemTypeCSR         = "CERTIFICATE REQUEST"
	pemTypeCSRLegacy   = "NEW CERTIFICATE REQUEST"
	pemTypeCRL         = "X509 CRL"
)

// EncodeCertPEM encodes cert as a "CERTIFICATE" PEM block.
func EncodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCertificate, Bytes: cert.Raw})
}

// ParseCertPEM decodes the first PEM block in data, which must be a
// certificate. Text before it (as openssl x509 -text prints) is skipped.
func ParseCertPEM(data []byte) (*x509.Certificate, error) {
	block, err := firstBlock(data, "certificate")
	if err != nil {
		return nil, err
	}
	return parseCertBlock(block)
}

// ParseCertsPEM decodes every PEM block in data; all must be certificates and
// there must be at least one.
func ParseCertsPEM(data []byte) ([]*x509.Certificate, error) {
	if _, err := firstBlock(data, "certificate"); err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return certs, nil
		}
		cert, err := parseCertBlock(block)
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
}

// ParseCSRPEM decodes a PEM "CERTIFICATE REQUEST". It does not check the
// request's signature; CA.SignCSR does.
func ParseCSRPEM(data []byte) (*x509.CertificateRequest, error) {
	block, err := firstBlock(data, "certificate request")
	if err != nil {
		return nil, err
	}
	if block.Type != pemTypeCSR && block.Type != pemTypeCSRLegacy {
		return nil, fmt.Errorf("failed to parse certificate request: PEM block is %q, want %q", block.Type, pemTypeCSR)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse certificate request: %w", err)
	}
	return csr, nil
}

// EncodeCSRPEM encodes a DER certificate request as PEM.
func EncodeCSRPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemTypeCSR, Bytes: der})
}

func firstBlock(data []byte, what string) (*pem.Block, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("failed to parse %s: no data", what)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("failed to parse %s: no PEM data found", what)
	}
	return block, nil
}

func parseCertBlock(block *pem.Block) (*x509.Certificate, error) {
	if block.Type != pemTypeCertificate {
		return nil, fmt.Errorf("failed to parse certificate: PEM block is %q, want %q", block.Type, pemTypeCertificate)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("failed to parse certificate: %w", err)
	}
	return cert, nil
}

// Fingerprint is the SHA-256 of the DER certificate in lower-case hex, as
// `openssl x509 -fingerprint -sha256` prints it without the colons.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// SPKIHash is the SHA-256 of the certificate's SubjectPublicKeyInfo in
// lower-case hex. It identifies a key independently of the certificate, which
// makes it the value to pin a CA by.
func SPKIHash(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}

// SerialHex formats a serial number as lower-case hex without separators,
// the form used everywhere in dockgate.
func SerialHex(serial *big.Int) string {
	return serial.Text(16)
}

// ParseSerialHex parses a serial number written by SerialHex. Colons, as
// openssl prints them, are accepted and ignored.
func ParseSerialHex(s string) (*big.Int, error) {
	clean := strings.ReplaceAll(s, ":", "")
	n, ok := new(big.Int).SetString(clean, 16)
	if !ok || n.Sign() <= 0 {
		return nil, fmt.Errorf("invalid serial number %q: want positive hexadecimal", s)
	}
	return n, nil
}
