package pki

import (
	"crypto/sha256"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
)

func TestCertPEMRoundTrip(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	leaf := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "a", PublicKey: testKey(t, KeyTypeEd25519).Public()})
	got, err := ParseCertPEM(EncodeCertPEM(ca.Cert))
	if err != nil || !got.Equal(ca.Cert) {
		t.Fatalf("ParseCertPEM(EncodeCertPEM(ca)) = %v, %v", got, err)
	}
	withText := append([]byte("Certificate:\n    Data: ...\n"), EncodeCertPEM(leaf)...)
	if got, err := ParseCertPEM(withText); err != nil || !got.Equal(leaf) {
		t.Errorf("ParseCertPEM with leading text = %v, %v", got, err)
	}
	bundle := append(EncodeCertPEM(leaf), EncodeCertPEM(ca.Cert)...)
	certs, err := ParseCertsPEM(bundle)
	if err != nil || len(certs) != 2 || !certs[0].Equal(leaf) || !certs[1].Equal(ca.Cert) {
		t.Fatalf("ParseCertsPEM(bundle) = %d certs, %v; want leaf then CA", len(certs), err)
	}
}

func TestParseCertPEMErrors(t *testing.T) {
	keyPEM, err := MarshalKeyPEM(testKey(t, KeyTypeECDSAP256), nil)
	if err != nil {
		t.Fatal(err)
	}
	good := EncodeCertPEM(newTestCA(t, KeyTypeECDSAP256).Cert)
	tests := []struct {
		name    string
		data    string
		wantErr string
	}{
		{"empty", "", "no data"},
		{"not PEM", "MIIB...", "no PEM data found"},
		{"key instead", string(keyPEM), `PEM block is "PRIVATE KEY", want "CERTIFICATE"`},
		{"corrupt DER", "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n", "failed to parse certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := ParseCertPEM([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCertPEM = %v, %v; want error containing %q", c != nil, err, tt.wantErr)
			}
			if c, err := ParseCertsPEM([]byte(tt.data)); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCertsPEM = %d, %v; want error containing %q", len(c), err, tt.wantErr)
			}
		})
	}
	mixed := append(good, keyPEM...)
	if _, err := ParseCertsPEM(mixed); err == nil || !strings.Contains(err.Error(), "block 2") {
		t.Errorf("ParseCertsPEM(cert+key) err = %v, want error naming block 2", err)
	}
}

func TestParseCSRPEMErrors(t *testing.T) {
	good := EncodeCertPEM(newTestCA(t, KeyTypeECDSAP256).Cert)
	for name, data := range map[string]string{"empty": "", "certificate": string(good), "garbage": "xx"} {
		if _, err := ParseCSRPEM([]byte(data)); err == nil {
			t.Errorf("ParseCSRPEM(%s): want error", name)
		}
	}
}

func TestIdentifiers(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	der := sha256.Sum256(ca.Cert.Raw)
	if got, want := Fingerprint(ca.Cert), hex.EncodeToString(der[:]); got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
	spki := sha256.Sum256(ca.Cert.RawSubjectPublicKeyInfo)
	if got, want := SPKIHash(ca.Cert), hex.EncodeToString(spki[:]); got != want {
		t.Errorf("SPKIHash = %s, want %s", got, want)
	}
	if Fingerprint(ca.Cert) == SPKIHash(ca.Cert) {
		t.Error("Fingerprint and SPKIHash are equal")
	}
}

func TestSerialHex(t *testing.T) {
	tests := []struct {
		serial *big.Int
		want   string
	}{
		{big.NewInt(1), "1"},
		{big.NewInt(0xABCDEF), "abcdef"},
		{new(big.Int).Lsh(big.NewInt(1), 127), "80000000000000000000000000000000"},
	}
	for _, tt := range tests {
		if got := SerialHex(tt.serial); got != tt.want {
			t.Errorf("SerialHex(%v) = %q, want %q", tt.serial, got, tt.want)
		}
		for _, in := range []string{tt.want, strings.ToUpper(tt.want)} {
			if got, err := ParseSerialHex(in); err != nil || got.Cmp(tt.serial) != 0 {
				t.Errorf("ParseSerialHex(%q) = %v, %v; want %v", in, got, err, tt.serial)
			}
		}
	}
	if got, err := ParseSerialHex("0A:BC"); err != nil || got.Int64() != 0xabc {
		t.Errorf("ParseSerialHex(0A:BC) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "0", "-1", "xyz", "12 34"} {
		if _, err := ParseSerialHex(bad); err == nil {
			t.Errorf("ParseSerialHex(%q): want error", bad)
		}
	}
}
