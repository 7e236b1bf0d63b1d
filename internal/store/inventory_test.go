package store

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// An inventory made by schema version 1 opens with every row issued and
// current, and takes pending rows afterwards.
func TestMigrateVersion1Inventory(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := testCert("aa01", KindClient, "alice")
	writeVersion1(t, dir, `INSERT INTO certs (serial, kind, name, not_before, not_after, fingerprint, pem)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, old.Serial, old.Kind, old.Name, old.NotBefore.Unix(), old.NotAfter.Unix(),
		old.Fingerprint, old.PEM)

	s := openTest(t, dir)
	var v int
	if err := s.DB().QueryRow(`SELECT MAX(version) FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion() {
		t.Fatalf("schema version %d, %v; want %d", v, err, SchemaVersion())
	}
	got, err := s.CertBySerial(ctx, "aa01")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != StateIssued || !got.SupersededAt.IsZero() || got.Status(epoch) != StatusValid {
		t.Errorf("migrated row: state %q superseded %v status %s; want issued, current, valid", got.State, got.SupersededAt, got.Status(epoch))
	}
	pending := testCert("bb02", KindClient, "bob")
	pending.State, pending.PEM = StatePending, nil
	if err := s.AddCert(ctx, pending); err != nil {
		t.Fatalf("pending row in a migrated inventory: %v", err)
	}
	integrityOK(t, s)
}

func TestPendingCertificateLifecycle(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		old := testCert("aa01", KindClient, "alice")
		if err := s.AddCert(ctx, old); err != nil {
			t.Fatal(err)
		}
		next := testCert("bb02", KindClient, "alice")
		pem := next.PEM
		next.State, next.PEM, next.Fingerprint = StatePending, nil, ""
		if err := s.AddCert(ctx, next); err != nil {
			t.Fatal(err)
		}
		standing := func(serial string) Standing {
			t.Helper()
			all, err := s.ClientStandings(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return all[serial]
		}
		if got := standing("bb02").Refusal(epoch); got != StatusPending {
			t.Errorf("pending row refused as %q, want pending", got)
		}
		if pend, err := s.PendingCerts(ctx); err != nil || len(pend) != 1 || pend[0].Status(epoch) != StatusPending {
			t.Fatalf("PendingCerts() = %v, %v; want bb02 pending", pend, err)
		}

		at := epoch.Add(time.Hour)
		if err := s.CompleteCert(ctx, "bb02", pem, "cd", &Supersession{Serial: "aa01", At: at}); err != nil {
			t.Fatal(err)
		}
		if err := s.CompleteCert(ctx, "bb02", pem, "cd", nil); err == nil {
			t.Error("completing a certificate twice succeeded")
		}
		if got := standing("bb02").Refusal(epoch); got != "" {
			t.Errorf("completed certificate refused as %q", got)
		}
		prev, err := s.CertBySerial(ctx, "aa01")
		if err != nil {
			t.Fatal(err)
		}
		if !prev.SupersededAt.Equal(at) || prev.SupersededBy != "bb02" {
			t.Errorf("old certificate superseded at %v by %q, want %v by bb02", prev.SupersededAt, prev.SupersededBy, at)
		}
		for _, tc := range []struct {
			now  time.Time
			want string
		}{{epoch, ""}, {at, StatusSuperseded}} {
			if got := standing("aa01").Refusal(tc.now); got != tc.want {
				t.Errorf("old certificate at %v refused as %q, want %q", tc.now, got, tc.want)
			}
			if got, want := prev.Status(tc.now), map[string]string{"": StatusValid, StatusSuperseded: StatusSuperseded}[tc.want]; got != want {
				t.Errorf("old certificate status at %v = %s, want %s", tc.now, got, want)
			}
		}
	})
}

func TestRevokedPendingCertificateCannotComplete(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		c := testCert("aa01", KindClient, "alice")
		pem := c.PEM
		c.State, c.PEM = StatePending, nil
		if err := s.AddCert(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.Revoke(ctx, "aa01", "cessation-of-operation", epoch); err != nil {
			t.Fatalf("revoking a pending certificate: %v", err)
		}
		if err := s.CompleteCert(ctx, "aa01", pem, "ab", nil); err == nil {
			t.Error("a revoked pending certificate was completed")
		}
		if err := s.DeletePending(ctx, "aa01"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CertBySerial(ctx, "aa01"); err != nil {
			t.Errorf("the revocation of a pending certificate was deleted: %v", err)
		}
		st, err := s.ClientStandings(ctx)
		if err != nil || st["aa01"].Refusal(epoch) != StatusRevoked {
			t.Errorf("standing %+v, %v; want revoked", st["aa01"], err)
		}
	})
}

func TestDeletePendingKeepsIssuedRows(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		issued := testCert("aa01", KindClient, "alice")
		pending := testCert("bb02", KindClient, "bob")
		pending.State, pending.PEM = StatePending, nil
		for _, c := range []Cert{issued, pending} {
			if err := s.AddCert(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		for _, serial := range []string{"aa01", "bb02"} {
			if err := s.DeletePending(ctx, serial); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.CertBySerial(ctx, "aa01"); err != nil {
			t.Errorf("issued row deleted: %v", err)
		}
		if _, err := s.CertBySerial(ctx, "bb02"); !errors.Is(err, ErrNotFound) {
			t.Errorf("pending row: %v, want deleted", err)
		}
	})
}

func TestStandingRefusal(t *testing.T) {
	now := epoch
	tests := []struct {
		name string
		st   Standing
		want string
	}{
		{"issued", Standing{State: StateIssued}, ""},
		{"pending", Standing{State: StatePending}, StatusPending},
		{"revoked", Standing{State: StateIssued, RevokedAt: now.Add(-time.Hour)}, StatusRevoked},
		{"revoked while pending", Standing{State: StatePending, RevokedAt: now}, StatusRevoked},
		{"superseded, overlap running", Standing{State: StateIssued, SupersededAt: now.Add(time.Second)}, ""},
		{"superseded, overlap over", Standing{State: StateIssued, SupersededAt: now}, StatusSuperseded},
		{"empty state", Standing{}, StatusPending},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.Refusal(now); got != tt.want {
				t.Errorf("Refusal() = %q, want %q", got, tt.want)
			}
		})
	}
}

// writeVersion1 makes dir's inventory as schema version 1 made it, then
// runs query with args in it (nothing when query is empty).
func writeVersion1(t *testing.T, dir, query string, args ...any) {
	t.Helper()
	path := filepath.Join(dir, DBFile)
	if err := ensurePrivateFile(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE schema_version (version INTEGER NOT NULL)`,
		migrations[0],
		`INSERT INTO schema_version (version) VALUES (1)`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	if query == "" {
		return
	}
	if _, err := db.Exec(query, args...); err != nil {
		t.Fatal(err)
	}
}
