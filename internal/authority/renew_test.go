package authority

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

func TestRenewKeepsIdentity(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		keepOld time.Duration
	}{
		{"server", Request{Kind: pki.KindServer, Name: "web", SANs: []string{"web.example", "192.0.2.1"},
			Validity: 90 * 24 * time.Hour, KeyType: pki.KeyTypeECDSAP384}, 0},
		{"client, keep old an hour", Request{Kind: pki.KindClient, Name: "ci", Groups: []string{"builders", "readers"},
			Validity: 7 * 24 * time.Hour, KeyType: pki.KeyTypeEd25519}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAuthority(t)
			old, err := a.Issue(ctx, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			oldKey := readFile(t, filepath.Join(old.Dir, "key.pem"))
			now := time.Now().Add(time.Hour)
			is, err := a.Renew(ctx, tt.req.Name, tt.keepOld, now)
			if err != nil {
				t.Fatal(err)
			}
			cert := checkBundle(t, is.Dir, a.Cert(), tt.req.Kind)
			if !cert.Equal(is.Cert) || is.Dir != old.Dir {
				t.Errorf("bundle in %s is not the renewed certificate", is.Dir)
			}
			if string(readFile(t, filepath.Join(is.Dir, "key.pem"))) == string(oldKey) {
				t.Error("renewal kept the old key")
			}
			o := old.Cert
			if cert.SerialNumber.Cmp(o.SerialNumber) == 0 {
				t.Error("renewal kept the serial")
			}
			if cert.Subject.String() != o.Subject.String() || !slices.Equal(cert.DNSNames, o.DNSNames) ||
				fmt.Sprint(cert.IPAddresses) != fmt.Sprint(o.IPAddresses) || !slices.Equal(cert.ExtKeyUsage, o.ExtKeyUsage) {
				t.Errorf("renewed identity %v %v %v %v, want %v %v %v %v", cert.Subject, cert.DNSNames, cert.IPAddresses,
					cert.ExtKeyUsage, o.Subject, o.DNSNames, o.IPAddresses, o.ExtKeyUsage)
			}
			if got, want := cert.NotAfter.Sub(cert.NotBefore), o.NotAfter.Sub(o.NotBefore); got != want {
				t.Errorf("validity %v, want %v", got, want)
			}
			if kt, _ := pki.KeyTypeOf(cert.PublicKey); kt != tt.req.KeyType {
				t.Errorf("key type %s, want %s", kt, tt.req.KeyType)
			}
			oldRec := recordFor(t, a.Store(), o)
			wantAt := now.Add(tt.keepOld).Truncate(time.Second).UTC()
			if oldRec.Revoked() || !oldRec.SupersededAt.Equal(wantAt) || oldRec.SupersededBy != pki.SerialHex(cert.SerialNumber) {
				t.Errorf("old certificate revoked=%v superseded at %v by %s, want superseded at %v by %s",
					oldRec.Revoked(), oldRec.SupersededAt, oldRec.SupersededBy, wantAt, pki.SerialHex(cert.SerialNumber))
			}
			if got, want := oldRec.Superseded(now), tt.keepOld == 0; got != want {
				t.Errorf("old certificate superseded at renewal = %v, want %v", got, want)
			}
			if !oldRec.Superseded(now.Add(tt.keepOld)) {
				t.Error("old certificate still current after the overlap")
			}
			newRec := recordFor(t, a.Store(), cert)
			if newRec.Revoked() || newRec.Pending() || newRec.Superseded(now) {
				t.Errorf("the renewed certificate is %s", newRec.Status(now))
			}
		})
	}
}

func TestRenewExpired(t *testing.T) {
	a := testAuthority(t)
	past := time.Now().Add(-72 * time.Hour)
	if _, err := a.Issue(ctx, Request{Kind: pki.KindClient, Name: "short", Validity: 24 * time.Hour, Now: past}); err != nil {
		t.Fatal(err)
	}
	is, err := a.Renew(ctx, "short", 0, time.Now())
	if err != nil {
		t.Fatalf("renewing an expired certificate: %v", err)
	}
	if !is.Cert.NotAfter.After(time.Now()) {
		t.Errorf("renewed certificate expires %v, in the past", is.Cert.NotAfter)
	}
}

func TestRenewErrors(t *testing.T) {
	a := testAuthority(t)
	if _, err := a.Renew(ctx, "ghost", 0, time.Now()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("renew unknown: %v, want store.ErrNotFound", err)
	}
	if _, err := a.IssueClient(ctx, "gone", nil, 0, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := Revoke(ctx, a.Store(), "gone", "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Renew(ctx, "gone", 0, time.Now()); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("renew revoked: %v, want an error saying it is revoked", err)
	}
	if _, err := a.Renew(ctx, "../x", 0, time.Now()); err == nil {
		t.Error("renew with an invalid name succeeded")
	}
}

// TestParallelIssuance issues from several goroutines, each with its own
// Store handle (as separate CLI runs would have) on one state directory:
// every certificate gets a distinct serial and a row, every bundle matches
// its row, contention for one name lets exactly one through, and the
// database stays intact.
func TestParallelIssuance(t *testing.T) {
	base := testAuthority(t)
	dir := base.Store().Dir()
	const workers, perWorker, contenders = 4, 5, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker+contenders)
	issue := func(name string) {
		defer wg.Done()
		st, err := store.Open(dir)
		if err != nil {
			errs <- err
			return
		}
		defer st.Close()
		a, err := Load(st, nil)
		if err != nil {
			errs <- err
			return
		}
		_, err = a.IssueClient(ctx, name, []string{"g"}, 0, "")
		errs <- err
	}
	for w := range workers {
		for i := range perWorker {
			wg.Add(1)
			go issue(fmt.Sprintf("w%d-c%d", w, i))
		}
	}
	for range contenders {
		wg.Add(1)
		go issue("contended")
	}
	wg.Wait()
	close(errs)
	var ok, inUse int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrNameInUse):
			inUse++
		default:
			t.Errorf("issue: %v", err)
		}
	}
	if ok != workers*perWorker+1 || inUse != contenders-1 {
		t.Errorf("%d issued, %d refused as in use; want %d and %d", ok, inUse, workers*perWorker+1, contenders-1)
	}
	checkInventory(t, base, workers*perWorker+1)
}

func checkInventory(t *testing.T, a *Authority, wantLeaves int) {
	t.Helper()
	var result string
	if err := a.Store().DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil || result != "ok" {
		t.Fatalf("integrity_check = %q, %v", result, err)
	}
	certs, err := a.Store().Certs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	serials := map[string]bool{}
	leaves := 0
	for _, c := range certs {
		if serials[c.Serial] {
			t.Errorf("serial %s recorded twice", c.Serial)
		}
		serials[c.Serial] = true
		if c.Kind != store.KindClient {
			continue
		}
		leaves++
		cert := checkBundle(t, BundleDir(a.Store().Dir(), pki.KindClient, c.Name), a.Cert(), pki.KindClient)
		if pki.Fingerprint(cert) != c.Fingerprint {
			t.Errorf("%s: bundle holds %s, inventory says %s", c.Name, pki.Fingerprint(cert), c.Fingerprint)
		}
	}
	if leaves != wantLeaves {
		t.Errorf("%d client certificates recorded, want %d", leaves, wantLeaves)
	}
	checkNoLeftovers(t, filepath.Join(a.Store().Dir(), "clients"))
}
