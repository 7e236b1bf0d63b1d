package enroll

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"
)

// An address may be exactly maxAddressLength characters and its port
// exactly 65535; one more of either is refused.
func TestValidateAddressEdges(t *testing.T) {
	host := func(n int) string { return strings.Repeat("a", n-len(":2377")) + ":2377" }
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{host(maxAddressLength), true},
		{host(maxAddressLength + 1), false},
		{"gw:65535", true},
		{"gw:65536", false},
		{"gw:1", true},
		{"gw:0", false},
	} {
		if err := ValidateAddress(tc.addr); (err == nil) != tc.ok {
			t.Errorf("ValidateAddress(%.20q... %d chars) = %v, want ok %v", tc.addr, len(tc.addr), err, tc.ok)
		}
	}
}

// A token's group may be 64 characters (an O value's limit), not 65.
func TestTokenSpecGroupLengthEdge(t *testing.T) {
	spec := TokenSpec{Name: "n", TTL: time.Hour, Uses: 1, CertDays: 1, CA: &x509.Certificate{}}
	spec.Groups = []string{strings.Repeat("g", 64)}
	if err := spec.validate(); err != nil {
		t.Errorf("64-character group: %v", err)
	}
	spec.Groups = []string{strings.Repeat("g", 65)}
	if err := spec.validate(); err == nil {
		t.Error("65-character group accepted")
	}
}
