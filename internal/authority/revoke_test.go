package authority

import (
	"crypto/x509"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

func TestRevokeBySerialAndName(t *testing.T) {
	a := testAuthority(t)
	alice, err := a.IssueClient(ctx, "alice", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	web, err := a.IssueServer(ctx, "web", []string{"web.example"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	// A second valid certificate of one name, as enrollment plus a race
	// could leave: revoking by name takes both.
	extra := signExtra(t, a, "web")
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

	aliceSerial := pki.SerialHex(alice.Cert.SerialNumber)
	got, err := Revoke(ctx, a.Store(), strings.ToUpper(aliceSerial[:10]), "keyCompromise", now)
	if err != nil {
		t.Fatalf("revoke by serial prefix: %v", err)
	}
	if len(got) != 1 || got[0].Serial != aliceSerial || got[0].Reason != "key-compromise" || !got[0].RevokedAt.Equal(now) {
		t.Errorf("revoked %+v, want alice with key-compromise at %v", got, now)
	}
	if rec := recordFor(t, a.Store(), alice.Cert); !rec.Revoked() || rec.Reason != "key-compromise" {
		t.Errorf("alice's record = revoked %v reason %q", rec.Revoked(), rec.Reason)
	}

	got, err = Revoke(ctx, a.Store(), "web", "", now)
	if err != nil {
		t.Fatalf("revoke by name: %v", err)
	}
	serials := []string{got[0].Serial, got[1].Serial}
	slices.Sort(serials)
	want := []string{pki.SerialHex(web.Cert.SerialNumber), pki.SerialHex(extra.SerialNumber)}
	slices.Sort(want)
	if len(got) != 2 || !slices.Equal(serials, want) || got[0].Reason != "unspecified" {
		t.Errorf("revoked %v, want both web certificates as unspecified", got)
	}
}

func signExtra(t *testing.T, a *Authority, name string) *x509.Certificate {
	t.Helper()
	key, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.ca.Issue(pki.LeafRequest{Kind: pki.KindServer, Name: name, DNSNames: []string{"x.example"},
		PublicKey: key.Public(), Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Store().AddCert(ctx, certRecord(pki.KindServer, name, cert)); err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestRevokeErrors(t *testing.T) {
	a := testAuthority(t)
	bob, err := a.IssueClient(ctx, "bob", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(ctx, a.Store(), "bob", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	// Two records sharing a serial prefix, to make the prefix ambiguous.
	for _, serial := range []string{"abcd0001", "abcd0002"} {
		rec := certRecord(pki.KindClient, "p"+serial, bob.Cert)
		rec.Serial = serial
		if err := a.Store().AddCert(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	caSerial := pki.SerialHex(a.Cert().SerialNumber)
	tests := []struct {
		name, target, reason string
		wantIs               error
		wantErr              string
	}{
		{"unknown", "nobody", "", store.ErrNotFound, "no certificate named or with serial"},
		{"bad reason", "bob", "stolen", nil, "unknown revocation reason"},
		{"all revoked", "bob", "", nil, "no valid certificate"},
		{"revoked serial", pki.SerialHex(bob.Cert.SerialNumber), "", store.ErrAlreadyRevoked, ""},
		{"CA serial", caSerial, "", ErrRevokeCA, ""},
		{"ambiguous prefix", "abcd", "", store.ErrAmbiguous, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Revoke(ctx, a.Store(), tt.target, tt.reason, time.Now())
			if err == nil || len(got) != 0 {
				t.Fatalf("Revoke(%q) = %v, %v; want an error", tt.target, got, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("err = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if rec := recordFor(t, a.Store(), a.Cert()); rec.Revoked() {
		t.Error("the CA was revoked")
	}
}

func TestCRL(t *testing.T) {
	a := testAuthority(t)
	var revoked []*x509.Certificate
	for _, name := range []string{"c1", "c2"} {
		is, err := a.IssueClient(ctx, name, nil, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		revoked = append(revoked, is.Cert)
	}
	kept, err := a.IssueClient(ctx, "c3", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	if _, err := Revoke(ctx, a.Store(), "c1", "key-compromise", now); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(ctx, a.Store(), "c2", "cessationOfOperation", now); err != nil {
		t.Fatal(err)
	}
	first := parseCRL(t, a, now)
	second := parseCRL(t, a, now)
	if second.Number.Cmp(first.Number) <= 0 {
		t.Errorf("CRL numbers %v then %v, want increasing", first.Number, second.Number)
	}
	if err := second.CheckSignatureFrom(a.Cert()); err != nil {
		t.Errorf("CRL signature: %v", err)
	}
	reasons := map[string]int{}
	for _, e := range second.RevokedCertificateEntries {
		reasons[pki.SerialHex(e.SerialNumber)] = e.ReasonCode
		if !e.RevocationTime.Equal(now) {
			t.Errorf("revocation time %v, want %v", e.RevocationTime, now)
		}
	}
	want := map[string]int{pki.SerialHex(revoked[0].SerialNumber): 1, pki.SerialHex(revoked[1].SerialNumber): 5}
	if len(reasons) != 2 || reasons[pki.SerialHex(revoked[0].SerialNumber)] != 1 || reasons[pki.SerialHex(revoked[1].SerialNumber)] != 5 {
		t.Errorf("CRL entries %v, want %v", reasons, want)
	}
	if _, ok := reasons[pki.SerialHex(kept.Cert.SerialNumber)]; ok {
		t.Error("CRL lists a valid certificate")
	}
	if !second.NextUpdate.Equal(now.Add(pki.DefaultCRLValidity)) {
		t.Errorf("NextUpdate %v, want %v", second.NextUpdate, now.Add(pki.DefaultCRLValidity))
	}
}

func parseCRL(t *testing.T, a *Authority, now time.Time) *x509.RevocationList {
	t.Helper()
	data, err := a.CRL(ctx, 0, now)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := pki.ParseCRLPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// A certificate renew superseded is on the CRL (reason superseded) once its
// overlap is over, not before.
func TestCRLListsSupersededCertificates(t *testing.T) {
	a := testAuthority(t)
	old, err := a.IssueClient(ctx, "c1", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	renewed, err := a.Renew(ctx, "c1", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	listed := func(at time.Time) map[string]int {
		out := map[string]int{}
		for _, e := range parseCRL(t, a, at).RevokedCertificateEntries {
			out[pki.SerialHex(e.SerialNumber)] = e.ReasonCode
		}
		return out
	}
	oldSerial := pki.SerialHex(old.Cert.SerialNumber)
	if got := listed(now); len(got) != 0 {
		t.Errorf("CRL during the overlap lists %v, want nothing", got)
	}
	got := listed(now.Add(time.Hour))
	if code, ok := got[oldSerial]; !ok || code != 4 || len(got) != 1 {
		t.Errorf("CRL after the overlap lists %v, want only %s with reason 4 (superseded)", got, oldSerial)
	}
	if _, ok := got[pki.SerialHex(renewed.Cert.SerialNumber)]; ok {
		t.Error("CRL lists the renewed certificate")
	}
}

// A full serial names that certificate even when another certificate's
// name is the same string: revoke takes the exact serial first, so the
// certificate meant is the one revoked.
func TestRevokeExactSerialBeforeName(t *testing.T) {
	a := testAuthority(t)
	alice, err := a.IssueClient(ctx, "alice", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	serial := pki.SerialHex(alice.Cert.SerialNumber)
	// A client whose name is alice's serial.
	namesake, err := a.IssueClient(ctx, serial, nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	got, err := Revoke(ctx, a.Store(), serial, "", now)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Serial != serial {
		t.Fatalf("revoke %s revoked %+v, want alice's certificate only", serial, got)
	}
	if rec := recordFor(t, a.Store(), namesake.Cert); rec.Revoked() {
		t.Error("the certificate named like the serial was revoked")
	}
}
