package authority

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// csrFor makes a CSR that asks for an identity it must not get.
func csrFor(t *testing.T) *x509.CertificateRequest {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: "root", Organization: []string{"admins"}},
		DNSNames: []string{"evil.example"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestRenewCSRKeepsTheCallersIdentity(t *testing.T) {
	a := testAuthority(t)
	old, err := a.IssueClient(ctx, "alice", []string{"devs", "ops"}, 7*24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	csr := csrFor(t)
	now := time.Now().Add(time.Hour)
	cert, err := a.RenewCSR(ctx, csr, pki.SerialHex(old.Cert.SerialNumber), now)
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.Cmp(old.Cert.SerialNumber) == 0 {
		t.Error("renewal kept the serial")
	}
	if got, want := cert.Subject.CommonName, "alice"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if got, want := sortedCopy(cert.Subject.Organization), []string{"devs", "ops"}; !slices.Equal(got, want) {
		t.Errorf("groups = %v, want %v", got, want)
	}
	if len(cert.DNSNames) != 0 || !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("SANs %v, EKU %v: want none and clientAuth", cert.DNSNames, cert.ExtKeyUsage)
	}
	if got, want := cert.NotAfter.Sub(cert.NotBefore), old.Cert.NotAfter.Sub(old.Cert.NotBefore); got != want {
		t.Errorf("lifetime %v, want %v", got, want)
	}
	rec, err := a.Store().CertBySerial(ctx, pki.SerialHex(cert.SerialNumber))
	if err != nil || rec.Name != "alice" || rec.Kind != store.KindClient {
		t.Errorf("inventory row %+v, %v", rec, err)
	}
	prev, _ := a.Store().CertBySerial(ctx, pki.SerialHex(old.Cert.SerialNumber))
	if prev.Revoked() {
		t.Error("the renewed certificate was revoked; live connections would be cut")
	}
}

func TestRenewCSRRefuses(t *testing.T) {
	a := testAuthority(t)
	is, err := a.IssueClient(ctx, "bob", nil, 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	serial := pki.SerialHex(is.Cert.SerialNumber)
	revoked, err := a.IssueClient(ctx, "carol", nil, 24*time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(ctx, a.Store(), "carol", "key-compromise", time.Now()); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		serial string
		now    time.Time
		want   error
	}{
		{"expired", serial, is.Cert.NotAfter.Add(time.Second), ErrRenewExpired},
		{"revoked", pki.SerialHex(revoked.Cert.SerialNumber), time.Now(), ErrRenewRevoked},
		{"unknown", "0123456789abcdef", time.Now(), store.ErrNotFound},
		{"prefix only", serial[:8], time.Now(), store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.RenewCSR(ctx, csrFor(t), tt.serial, tt.now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("RenewCSR: got %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("the CA", func(t *testing.T) {
		_, err := a.RenewCSR(ctx, csrFor(t), pki.SerialHex(a.Cert().SerialNumber), time.Now())
		if err == nil {
			t.Fatal("renewed the CA certificate through a CSR")
		}
	})
}
