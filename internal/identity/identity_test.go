package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"slices"
	"testing"
	"time"
)

// selfSigned returns a parsed certificate with the given subject and serial.
func selfSigned(t *testing.T, subject pkix.Name, serial *big.Int, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: subject,
		NotBefore: notAfter.Add(-time.Hour), NotAfter: notAfter,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestFromCertificate(t *testing.T) {
	notAfter := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	big128, _ := new(big.Int).SetString("00ABCDEF0123456789abcdef01234567", 16)
	tests := []struct {
		name       string
		subject    pkix.Name
		serial     *big.Int
		wantGroups []string
		wantSerial string
	}{
		{"no groups", pkix.Name{CommonName: "alice"}, big.NewInt(255), nil, "ff"},
		{"groups from O", pkix.Name{CommonName: "ci", Organization: []string{"builders", "ops"}},
			big.NewInt(0x1234), []string{"builders", "ops"}, "1234"},
		{"128-bit serial, lower-case, no leading zero", pkix.Name{CommonName: "bob"}, big128, nil,
			"abcdef0123456789abcdef01234567"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cert := selfSigned(t, tt.subject, tt.serial, notAfter)
			id := FromCertificate(cert)
			sum := sha256.Sum256(cert.Raw)
			if id.CN != tt.subject.CommonName {
				t.Errorf("CN = %q, want %q", id.CN, tt.subject.CommonName)
			}
			// The order of several O attributes is x509's business; the set is ours.
			if !slices.Equal(sorted(id.Groups), tt.wantGroups) {
				t.Errorf("Groups = %q, want %q", id.Groups, tt.wantGroups)
			}
			if id.Serial != tt.wantSerial {
				t.Errorf("Serial = %q, want %q", id.Serial, tt.wantSerial)
			}
			if want := hex.EncodeToString(sum[:]); id.Fingerprint != want {
				t.Errorf("Fingerprint = %q, want %q", id.Fingerprint, want)
			}
			if !id.NotAfter.Equal(notAfter) {
				t.Errorf("NotAfter = %v, want %v", id.NotAfter, notAfter)
			}
		})
	}
}

func sorted(s []string) []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(slices.Values(s))
}

func TestSerialHexOfNothing(t *testing.T) {
	if got := SerialHex(nil); got != "" {
		t.Errorf("SerialHex(nil) = %q, want empty", got)
	}
	if got := SerialHex(&x509.Certificate{}); got != "" {
		t.Errorf("SerialHex(no serial) = %q, want empty", got)
	}
}

func TestContextRoundTrip(t *testing.T) {
	id := &Identity{CN: "alice", Serial: "ff"}
	got, ok := FromContext(NewContext(context.Background(), id))
	if !ok || got != id {
		t.Errorf("FromContext(NewContext(id)) = %v, %v; want %v, true", got, ok, id)
	}
	if got, ok := FromContext(context.Background()); ok || got != nil {
		t.Errorf("FromContext(empty) = %v, %v; want nil, false", got, ok)
	}
	if got, ok := FromContext(NewContext(context.Background(), nil)); ok || got != nil {
		t.Errorf("FromContext(NewContext(nil)) = %v, %v; want nil, false", got, ok)
	}
}

func TestWhoamiWireForm(t *testing.T) {
	local := time.FixedZone("CEST", 2*60*60)
	id := &Identity{CN: "alice", Serial: "ff", Fingerprint: "ab", NotAfter: time.Date(2031, 1, 2, 5, 4, 5, 0, local)}
	data, err := json.Marshal(id.Whoami(""))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"cn":"alice","groups":[],"serial":"ff","fingerprint_sha256":"ab","not_after":"2031-01-02T03:04:05Z"}`
	if string(data) != want {
		t.Errorf("Whoami JSON =\n%s\nwant\n%s", data, want)
	}
	if w := id.Whoami("dev"); w.Role != "dev" {
		t.Errorf("Role = %q, want dev", w.Role)
	}
}
