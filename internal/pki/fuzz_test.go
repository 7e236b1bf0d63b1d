package pki

import (
	"bytes"
	"crypto"
	"strings"
	"testing"
)

// The fuzz targets check that parsers never panic and that whatever they
// accept survives a round trip through the matching encoder. Seeds live in
// testdata/fuzz/FuzzXxx.

func FuzzParseCertPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := ParseCertPEM(data)
		if err != nil {
			return
		}
		again, err := ParseCertPEM(EncodeCertPEM(cert))
		if err != nil || !again.Equal(cert) {
			t.Fatalf("round trip failed: %v", err)
		}
		if certs, err := ParseCertsPEM(data); err == nil && !certs[0].Equal(cert) {
			t.Fatal("ParseCertsPEM and ParseCertPEM disagree on the first certificate")
		}
	})
}

// FuzzParseKeyPEM parses without a passphrase: encrypted keys stop at
// ErrPassphraseRequired, since the key derivation's iteration count comes
// from the input and would make the fuzzer crawl.
func FuzzParseKeyPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		key, err := ParseKeyPEM(data, nil)
		if err != nil {
			return
		}
		encoded, err := MarshalKeyPEM(key, nil)
		if err != nil {
			t.Fatalf("MarshalKeyPEM of a parsed key: %v", err)
		}
		again, err := ParseKeyPEM(encoded, nil)
		if err != nil || !bytes.Equal(mustSKI(t, again), mustSKI(t, key)) {
			t.Fatalf("round trip changed the key: %v", err)
		}
	})
}

func FuzzParseSAN(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		dns, ip, err := ParseSAN(s)
		if err != nil {
			return
		}
		if (dns == "") == (ip == nil) {
			t.Fatalf("ParseSAN(%q) = %q, %v: want exactly one of DNS name and IP", s, dns, ip)
		}
		canonical := dns
		if ip != nil {
			canonical = ip.String()
		}
		dns2, ip2, err := ParseSAN(canonical)
		if err != nil || dns2 != dns || !ip2.Equal(ip) {
			t.Fatalf("ParseSAN(%q) = %q, %v; its canonical form %q parses to %q, %v, %v", s, dns, ip, canonical, dns2, ip2, err)
		}
		if dns != strings.ToLower(dns) {
			t.Fatalf("DNS name %q is not lower case", dns)
		}
	})
}

func FuzzParseCSRPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ParseCSRPEM(data)
		if err != nil {
			return
		}
		again, err := ParseCSRPEM(EncodeCSRPEM(csr.Raw))
		if err != nil || !bytes.Equal(again.Raw, csr.Raw) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzParseCRLPEM(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		crl, err := ParseCRLPEM(data)
		if err != nil {
			return
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber == nil {
				t.Fatal("parsed CRL entry without a serial number")
			}
		}
	})
}

func mustSKI(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	ski, err := SubjectKeyID(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return ski
}

// FuzzParseSerialHex checks the parse of a serial number typed on the
// command line (revoke, renew): what it accepts is positive, formats back
// (SerialHex) to the same digits with the colons, case and leading zeros
// dropped, and parses again to the same number.
func FuzzParseSerialHex(f *testing.F) {
	for _, seed := range []string{"1", "abcdef0123", "AB:CD:EF", "00:ab", "0", "-1", "+1", "0x1f", "ab cd", ":", "", "1_0", "ffffffffffffffffffffffffffffffffffffffff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSerialHex(s)
		if err != nil {
			return
		}
		if n.Sign() <= 0 {
			t.Fatalf("ParseSerialHex(%q) = %v, not positive", s, n)
		}
		digits := strings.TrimLeft(strings.TrimPrefix(strings.ToLower(strings.ReplaceAll(s, ":", "")), "+"), "0")
		if got := SerialHex(n); got != digits {
			t.Fatalf("ParseSerialHex(%q) formats as %q, want %q", s, got, digits)
		}
		again, err := ParseSerialHex(SerialHex(n))
		if err != nil || again.Cmp(n) != 0 {
			t.Fatalf("ParseSerialHex(SerialHex(%v)) = %v, %v", n, again, err)
		}
	})
}
