package authority

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// crashBeforeCompleting runs issue in a goroutine that stops dead (as if
// killed) at the commit point, after the certificate is signed and its
// bundle written: no rollback runs. The state lock's unlock is deferred,
// so it is released as the kernel would release it.
func crashBeforeCompleting(t *testing.T, a *Authority, issue func()) (signed *x509.Certificate) {
	t.Helper()
	a.signed = func(c *x509.Certificate) { signed = c }
	a.complete = func(context.Context, string, []byte, string, *store.Supersession) error {
		runtime.Goexit()
		return nil
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		issue()
	}()
	<-done
	a.signed, a.complete = nil, a.st.CompleteCert
	if signed == nil {
		t.Fatal("the issuance stopped before signing")
	}
	return signed
}

func TestRecoverAfterInterruptedRenewal(t *testing.T) {
	a := testAuthority(t)
	first, err := a.IssueClient(ctx, "alice", []string{"dev"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	signed := crashBeforeCompleting(t, a, func() { a.Renew(ctx, "alice", 0, time.Now()) })

	row := recordFor(t, a.Store(), signed)
	if row.Status(time.Now()) != store.StatusPending {
		t.Errorf("interrupted renewal's certificate is %s, want pending", row.Status(time.Now()))
	}
	if inBundle := checkBundle(t, first.Dir, a.Cert(), pki.KindClient); !inBundle.Equal(signed) {
		t.Fatal("the crash did not leave the new bundle in place (the test no longer simulates what it should)")
	}

	var notices bytes.Buffer
	if err := Recover(ctx, a.Store(), slog.New(slog.NewTextHandler(&notices, nil))); err != nil {
		t.Fatal(err)
	}
	if row := recordFor(t, a.Store(), signed); !row.Revoked() || row.Reason != reasonInterrupted {
		t.Errorf("after recovery the interrupted certificate is %s (%s), want revoked %s", row.Status(time.Now()), row.Reason, reasonInterrupted)
	}
	if inBundle := checkBundle(t, first.Dir, a.Cert(), pki.KindClient); !inBundle.Equal(first.Cert) {
		t.Error("recovery did not put the previous bundle back")
	}
	if old := recordFor(t, a.Store(), first.Cert); old.Status(time.Now()) != store.StatusValid {
		t.Errorf("the previous certificate is %s after recovery, want valid", old.Status(time.Now()))
	}
	checkNoLeftovers(t, filepath.Dir(first.Dir))
	for _, want := range []string{"revoked a certificate whose issuance was interrupted", "restored the bundle", "removed the bundle"} {
		if !strings.Contains(notices.String(), want) {
			t.Errorf("recovery did not say %q:\n%s", want, notices.String())
		}
	}
	// The name renews normally afterwards.
	if _, err := a.Renew(ctx, "alice", 0, time.Now()); err != nil {
		t.Errorf("renewal after recovery: %v", err)
	}
}

func TestRecoverAfterInterruptedIssue(t *testing.T) {
	a := testAuthority(t)
	signed := crashBeforeCompleting(t, a, func() { a.IssueClient(ctx, "bob", nil, 0, "") })
	dir := BundleDir(a.Store().Dir(), pki.KindClient, "bob")
	// Staging an issuance in flight would have, and a temporary CA file.
	for _, p := range []string{filepath.Join(filepath.Dir(dir), ".carol.new-1234"), filepath.Join(filepath.Dir(dir), ".dave.del-99")} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(filepath.Dir(CACertPath(a.Store().Dir())), ".ca.pem8231749")
	if err := os.WriteFile(tmp, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	// The next issuance recovers first, under the same lock.
	if _, err := a.IssueClient(ctx, "erin", nil, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bundle of the interrupted issue: %v, want removed", err)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary CA file: %v, want removed", err)
	}
	checkNoLeftovers(t, filepath.Dir(dir))
	if row := recordFor(t, a.Store(), signed); !row.Revoked() {
		t.Errorf("interrupted certificate is %s, want revoked", row.Status(time.Now()))
	}
	// bob's name is free again.
	if _, err := a.IssueClient(ctx, "bob", nil, 0, ""); err != nil {
		t.Errorf("issuing bob again: %v", err)
	}
}

func TestFailedPendingRecordSignsNothing(t *testing.T) {
	a := testAuthority(t)
	boom := errors.New("disk full")
	a.record = func(context.Context, store.Cert) error { return boom }
	a.signed = func(*x509.Certificate) { t.Error("signed although the pending row was not recorded") }
	if _, err := a.IssueClient(ctx, "fresh", nil, 0, ""); !errors.Is(err, boom) {
		t.Errorf("IssueClient: %v, want the recording error", err)
	}
	if _, err := a.SignCSR(ctx, csrFor(t), Request{Kind: pki.KindClient, Name: "csr"}); !errors.Is(err, boom) {
		t.Errorf("SignCSR: %v, want the recording error", err)
	}
}

func TestSignCSRIsCompleteWhenReturned(t *testing.T) {
	a := testAuthority(t)
	var pendingWhenSigned bool
	a.signed = func(c *x509.Certificate) {
		row, err := a.Store().CertBySerial(ctx, pki.SerialHex(c.SerialNumber))
		pendingWhenSigned = err == nil && row.Pending()
	}
	cert, err := a.SignCSR(ctx, csrFor(t), Request{Kind: pki.KindClient, Name: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if !pendingWhenSigned {
		t.Error("the row was not pending when the certificate was signed")
	}
	if row := recordFor(t, a.Store(), cert); row.Pending() || string(row.PEM) != string(pki.EncodeCertPEM(cert)) {
		t.Errorf("returned certificate's row: state %q, PEM recorded %v; want issued with its PEM", row.State, len(row.PEM) > 0)
	}
}

func TestRenewCSRSupersedesAfterTheOverlap(t *testing.T) {
	a := testAuthority(t)
	old, err := a.IssueClient(ctx, "alice", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	oldSerial := pki.SerialHex(old.Cert.SerialNumber)
	cert, err := a.RenewCSR(ctx, csrFor(t), oldSerial, now)
	if err != nil {
		t.Fatal(err)
	}
	row := recordFor(t, a.Store(), old.Cert)
	if row.Superseded(now) || !row.Superseded(now.Add(RenewOverlap)) || row.SupersededBy != pki.SerialHex(cert.SerialNumber) {
		t.Errorf("old certificate superseded at %v by %s; want at %v by the new one", row.SupersededAt, row.SupersededBy, now.Add(RenewOverlap))
	}
	if _, err := a.RenewCSR(ctx, csrFor(t), oldSerial, now.Add(RenewOverlap)); !errors.Is(err, ErrRenewRevoked) {
		t.Errorf("renewing with a superseded certificate: %v, want ErrRenewRevoked", err)
	}
}
