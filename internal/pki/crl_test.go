package pki

import (
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestParseRevocationReason(t *testing.T) {
	tests := []struct {
		in   string
		want int
		name string
	}{
		{"", 0, "unspecified"},
		{"unspecified", 0, "unspecified"},
		{"keyCompromise", 1, "key-compromise"},
		{"key-compromise", 1, "key-compromise"},
		{"KEY_COMPROMISE", 1, "key-compromise"},
		{"caCompromise", 2, "ca-compromise"},
		{"cACompromise", 2, "ca-compromise"},
		{"ca-compromise", 2, "ca-compromise"},
		{"affiliationChanged", 3, "affiliation-changed"},
		{"superseded", 4, "superseded"},
		{"cessation-of-operation", 5, "cessation-of-operation"},
		{"certificateHold", 6, "certificate-hold"},
		{"privilegeWithdrawn", 9, "privilege-withdrawn"},
		{"aACompromise", 10, "aa-compromise"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRevocationReason(tt.in)
			if err != nil || got != tt.want {
				t.Fatalf("ParseRevocationReason(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
			if name, err := CanonicalReason(tt.in); err != nil || name != tt.name {
				t.Errorf("CanonicalReason(%q) = %q, %v; want %q", tt.in, name, err, tt.name)
			}
		})
	}
	for _, bad := range []string{"removeFromCRL", "7", "stolen", "key compromise"} {
		_, err := ParseRevocationReason(bad)
		if err == nil || !strings.Contains(err.Error(), "key-compromise") {
			t.Errorf("ParseRevocationReason(%q) err = %v, want error listing valid reasons", bad, err)
		}
	}
}

func TestCreateCRL(t *testing.T) {
	for _, kt := range []KeyType{KeyTypeECDSAP256, KeyTypeEd25519, KeyTypeRSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			ca := newTestCA(t, kt)
			revoked := []Revoked{
				{Serial: mustSerial(t), RevokedAt: testNow.Add(-2 * time.Hour), Reason: "keyCompromise"},
				{Serial: mustSerial(t), RevokedAt: testNow.Add(-time.Hour), Reason: ""},
				{Serial: mustSerial(t), RevokedAt: testNow, Reason: "superseded"},
			}
			data, err := ca.CreateCRL(revoked, big.NewInt(42), testNow, 0)
			if err != nil {
				t.Fatal(err)
			}
			checkPEMType(t, data, "X509 CRL")
			crl, err := ParseCRLPEM(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := crl.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("CRL signature: %v", err)
			}
			if crl.Number.Int64() != 42 {
				t.Errorf("Number = %v, want 42", crl.Number)
			}
			if !crl.ThisUpdate.Equal(testNow.Add(-time.Minute)) || !crl.NextUpdate.Equal(testNow.Add(7*24*time.Hour)) {
				t.Errorf("ThisUpdate %v NextUpdate %v, want %v and 7 days after now", crl.ThisUpdate, crl.NextUpdate, testNow.Add(-time.Minute))
			}
			if string(crl.AuthorityKeyId) != string(ca.Cert.SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want %x", crl.AuthorityKeyId, ca.Cert.SubjectKeyId)
			}
			if len(crl.RevokedCertificateEntries) != len(revoked) {
				t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(revoked))
			}
			wantCodes := []int{1, 0, 4}
			for i, e := range crl.RevokedCertificateEntries {
				if e.SerialNumber.Cmp(revoked[i].Serial) != 0 {
					t.Errorf("entry %d serial = %x, want %x", i, e.SerialNumber, revoked[i].Serial)
				}
				if e.ReasonCode != wantCodes[i] {
					t.Errorf("entry %d reason = %d, want %d", i, e.ReasonCode, wantCodes[i])
				}
				if !e.RevocationTime.Equal(revoked[i].RevokedAt) {
					t.Errorf("entry %d time = %v, want %v", i, e.RevocationTime, revoked[i].RevokedAt)
				}
			}
			other := newTestCAWithKey(t, KeyTypeECDSAP256)
			if err := crl.CheckSignatureFrom(other.Cert); err == nil {
				t.Error("CRL verifies against another CA")
			}
		})
	}
}

func TestCreateCRLEmptyAndErrors(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	data, err := ca.CreateCRL(nil, big.NewInt(1), testNow, 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRLPEM(data)
	if err != nil || len(crl.RevokedCertificateEntries) != 0 || !crl.NextUpdate.Equal(testNow.Add(24*time.Hour)) {
		t.Fatalf("empty CRL = %+v, %v", crl, err)
	}
	tests := []struct {
		name    string
		revoked []Revoked
		number  *big.Int
		valid   time.Duration
	}{
		{"nil number", nil, nil, 0},
		{"negative number", nil, big.NewInt(-1), 0},
		{"negative validity", nil, big.NewInt(1), -time.Hour},
		{"bad reason", []Revoked{{Serial: big.NewInt(5), Reason: "lost"}}, big.NewInt(1), 0},
		{"no serial", []Revoked{{Reason: "superseded"}}, big.NewInt(1), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ca.CreateCRL(tt.revoked, tt.number, testNow, tt.valid); err == nil {
				t.Error("CreateCRL: want error")
			}
		})
	}
}

func mustSerial(t *testing.T) *big.Int {
	t.Helper()
	s, err := NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
