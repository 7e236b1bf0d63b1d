package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func openTest(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(%s) error = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// randomSerial makes a 128-bit serial the way the CA does.
func randomSerial() string {
	b := make([]byte, 16)
	rand.Read(b) // crypto/rand.Read never fails
	return strings.TrimLeft(hex.EncodeToString(b), "0")
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func testCert(serial, kind, name string) Cert {
	return Cert{
		Serial:      serial,
		Kind:        kind,
		Name:        name,
		NotBefore:   epoch,
		NotAfter:    epoch.Add(30 * 24 * time.Hour),
		Fingerprint: strings.Repeat("ab", 32),
		PEM:         []byte("-----BEGIN CERTIFICATE-----\n" + serial + "\n-----END CERTIFICATE-----\n"),
	}
}

func integrityOK(t *testing.T, s *Store) {
	t.Helper()
	if s.Backend() != "sqlite" {
		return // PostgreSQL checks its own pages (data checksums, amcheck)
	}
	var res string
	if err := s.DB().QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatal(err)
	}
	if res != "ok" {
		t.Errorf("integrity_check = %q, want ok", res)
	}
}

func TestOpenPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := openTest(t, dir)
	if err := s.AddCert(context.Background(), testCert("01", KindCA, "ca")); err != nil {
		t.Fatal(err)
	}
	if got := perm(t, dir); got != 0o700 {
		t.Errorf("state dir mode = %v, want 0700", got)
	}
	for _, f := range []string{DBFile, DBFile + "-wal"} {
		if got := perm(t, filepath.Join(dir, f)); got != 0o600 {
			t.Errorf("%s mode = %v, want 0600", f, got)
		}
	}
	if got, want := s.Path("ca", "ca.pem"), filepath.Join(dir, "ca", "ca.pem"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}
	var mode string
	if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenRefusesAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Open(file) error = %v, want 'not a directory'", err)
	}
}

func TestMigrationsIdempotentOnReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := openTest(t, dir)
	if err := s.AddCert(ctx, testCert("abcd01", KindClient, "alice")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	for i := range 3 {
		s := openTest(t, dir)
		var rows, version int
		if err := s.DB().QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_version`).Scan(&rows, &version); err != nil {
			t.Fatal(err)
		}
		if rows != 1 || version != SchemaVersion() {
			t.Errorf("reopen %d: schema_version has %d rows, version %d; want 1 row, version %d", i, rows, version, SchemaVersion())
		}
		certs, err := s.Certs(ctx)
		if err != nil || len(certs) != 1 {
			t.Errorf("reopen %d: Certs() = %d certs, %v; want 1", i, len(certs), err)
		}
		s.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	if _, err := s.DB().Exec(`UPDATE schema_version SET version = ?`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "upgrade dockgate") {
		t.Fatalf("Open() error = %v, want one asking to upgrade", err)
	}
}

func TestCertRoundTrip(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		want := testCert("f00d", KindServer, "web")
		want.SANs = []string{"web.example", "192.0.2.1"}
		want.Groups = []string{"ops"}
		if err := s.AddCert(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.CertBySerial(ctx, "f00d")
		if err != nil {
			t.Fatal(err)
		}
		if got.Serial != want.Serial || got.Kind != want.Kind || got.Name != want.Name ||
			!slices.Equal(got.SANs, want.SANs) || !slices.Equal(got.Groups, want.Groups) ||
			!got.NotBefore.Equal(want.NotBefore) || !got.NotAfter.Equal(want.NotAfter) ||
			got.Fingerprint != want.Fingerprint || string(got.PEM) != string(want.PEM) || got.Revoked() {
			t.Errorf("CertBySerial() = %+v, want %+v", got, want)
		}
	})
}

func TestAddCertRefuses(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		if err := s.AddCert(ctx, testCert("beef", KindClient, "a")); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			cert Cert
			want error
		}{
			{name: "duplicate serial", cert: testCert("beef", KindClient, "b"), want: ErrDuplicateSerial},
			{name: "upper-case serial", cert: testCert("BEEF01", KindClient, "b")},
			{name: "serial with colons", cert: testCert("be:ef", KindClient, "b")},
			{name: "empty serial", cert: testCert("", KindClient, "b")},
			{name: "unknown kind", cert: testCert("cafe", "intermediate", "b")},
			{name: "no name", cert: testCert("cafe", KindClient, "")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.AddCert(ctx, tt.cert)
				if err == nil {
					t.Fatal("AddCert() succeeded, want an error")
				}
				if tt.want != nil && !errors.Is(err, tt.want) {
					t.Errorf("AddCert() error = %v, want %v", err, tt.want)
				}
			})
		}
		certs, _ := s.Certs(ctx)
		if len(certs) != 1 || certs[0].Name != "a" {
			t.Errorf("Certs() = %v, want only the first cert", certs)
		}
	})
}

func TestCertsOrderAndByName(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		add := func(serial, kind, name string, age time.Duration) {
			c := testCert(serial, kind, name)
			c.NotBefore = epoch.Add(-age)
			if err := s.AddCert(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		add("05", KindServer, "web", 0)
		add("04", KindClient, "bob", 0)
		add("03", KindClient, "alice", 0)
		add("02", KindClient, "alice", time.Hour)
		add("01", KindCA, "dockgate CA", 0)
		certs, err := s.Certs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, c := range certs {
			got = append(got, c.Serial)
		}
		if want := []string{"01", "02", "03", "04", "05"}; !slices.Equal(got, want) {
			t.Errorf("Certs() order = %v, want %v", got, want)
		}
		alice, err := s.CertsByName(ctx, "alice")
		if err != nil || len(alice) != 2 || alice[0].Serial != "02" || alice[1].Serial != "03" {
			t.Errorf("CertsByName(alice) = %v, %v; want 02 then 03", alice, err)
		}
		none, err := s.CertsByName(ctx, "carol")
		if err != nil || len(none) != 0 {
			t.Errorf("CertsByName(carol) = %v, %v; want nothing", none, err)
		}
	})
}

func TestCertBySerial(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		for _, serial := range []string{"abcdef0123", "abcdff4567", "12345678"} {
			if err := s.AddCert(ctx, testCert(serial, KindClient, "c"+serial)); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			query   string
			want    string
			wantErr error
		}{
			{query: "abcdef0123", want: "abcdef0123"},
			{query: "AB:CD:EF:01:23", want: "abcdef0123"},
			{query: "abcde", want: "abcdef0123"},
			{query: "abcdf", want: "abcdff4567"},
			{query: "1234", want: "12345678"},
			{query: "abcd", wantErr: ErrAmbiguous},
			{query: "123", wantErr: ErrNotFound},
			{query: "1235", wantErr: ErrNotFound},
			{query: "abcdef01234", wantErr: ErrNotFound},
			{query: "alice", wantErr: ErrNotFound},
			{query: "", wantErr: ErrNotFound},
			{query: "abcd%", wantErr: ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.query, func(t *testing.T) {
				got, err := s.CertBySerial(ctx, tt.query)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("CertBySerial(%q) = %v, %v; want error %v", tt.query, got.Serial, err, tt.wantErr)
					}
					return
				}
				if err != nil || got.Serial != tt.want {
					t.Errorf("CertBySerial(%q) = %q, %v; want %q", tt.query, got.Serial, err, tt.want)
				}
			})
		}
	})
}

func TestRevoke(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := t.TempDir()
		s := b.open(t, dir)
		other := b.open(t, dir) // a second process's view, e.g. the gateway
		for _, serial := range []string{"aa01", "aa02"} {
			if err := s.AddCert(ctx, testCert(serial, KindClient, "c"+serial)); err != nil {
				t.Fatal(err)
			}
		}
		before, err := other.RevokedSerials(ctx)
		if err != nil || len(before) != 0 {
			t.Fatalf("RevokedSerials() before = %v, %v; want empty", before, err)
		}
		gen0, _ := other.RevocationGeneration(ctx)

		at := epoch.Add(time.Hour)
		if err := s.Revoke(ctx, "AA01", "keyCompromise", at); err != nil {
			t.Fatalf("Revoke() error = %v", err)
		}
		if err := s.Revoke(ctx, "aa01", "superseded", at.Add(time.Hour)); !errors.Is(err, ErrAlreadyRevoked) {
			t.Errorf("second Revoke() error = %v, want ErrAlreadyRevoked", err)
		}
		if err := s.Revoke(ctx, "ffff", "", at); !errors.Is(err, ErrNotFound) {
			t.Errorf("Revoke(unknown) error = %v, want ErrNotFound", err)
		}

		if gen1, _ := other.RevocationGeneration(ctx); gen1 == gen0 {
			t.Errorf("RevocationGeneration() unchanged after a revocation: %d", gen1)
		}
		got, err := other.RevokedSerials(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got["aa01"].Equal(at) {
			t.Errorf("RevokedSerials() = %v, want only aa01 at %v", got, at)
		}
		got["aa02"] = at // the caller's map must not leak into the cache
		if again, _ := other.RevokedSerials(ctx); len(again) != 1 {
			t.Errorf("RevokedSerials() after caller modification = %v, want 1 entry", again)
		}

		revoked, err := other.RevokedCerts(ctx)
		if err != nil || len(revoked) != 1 {
			t.Fatalf("RevokedCerts() = %v, %v; want 1", revoked, err)
		}
		if c := revoked[0]; c.Serial != "aa01" || c.Reason != "keyCompromise" || !c.RevokedAt.Equal(at) || !c.Revoked() {
			t.Errorf("RevokedCerts()[0] = %+v, want aa01 revoked for keyCompromise at %v (the first revocation kept)", c, at)
		}
	})
}

func TestAddRevokedCertMovesGeneration(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		if _, err := s.RevokedSerials(ctx); err != nil {
			t.Fatal(err)
		}
		c := testCert("dd", KindClient, "imported")
		c.RevokedAt, c.Reason = epoch, "superseded"
		if err := s.AddCert(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.RevokedSerials(ctx)
		if err != nil || len(got) != 1 {
			t.Errorf("RevokedSerials() = %v, %v; want the imported revoked cert", got, err)
		}
	})
}

func TestNextCRLNumberStartsAtOne(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		for want := int64(1); want <= 3; want++ {
			if got, err := s.NextCRLNumber(ctx); err != nil || got != want {
				t.Errorf("NextCRLNumber() = %d, %v; want %d", got, err, want)
			}
		}
	})
}

// TestConcurrentAddCert has many goroutines on several handles (each its own
// connection pool, as separate processes would have) insert at once.
func TestConcurrentAddCert(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		const handles, workers, perWorker = 4, 6, 10
		ctx := context.Background()
		dir := t.TempDir()
		stores := make([]*Store, handles)
		for i := range stores {
			stores[i] = b.open(t, dir)
		}
		var wg sync.WaitGroup
		errs := make(chan error, handles*workers*perWorker)
		serials := make(chan string, handles*workers*perWorker)
		for h := range handles {
			for range workers {
				wg.Go(func() {
					for range perWorker {
						serial := randomSerial()
						if err := stores[h].AddCert(ctx, testCert(serial, KindClient, "c")); err != nil {
							errs <- err
							continue
						}
						serials <- serial
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		close(serials)
		for err := range errs {
			t.Errorf("AddCert() error = %v", err)
		}
		certs, err := stores[0].Certs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(certs) != handles*workers*perWorker {
			t.Errorf("Certs() has %d rows, want %d", len(certs), handles*workers*perWorker)
		}
		have := map[string]bool{}
		for _, c := range certs {
			have[c.Serial] = true
		}
		for s := range serials {
			if !have[s] {
				t.Errorf("serial %s was added but is missing", s)
			}
		}
		integrityOK(t, stores[0])
	})
}

func TestConcurrentNextCRLNumber(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		const handles, workers, perWorker = 3, 4, 15
		ctx := context.Background()
		dir := t.TempDir()
		var mu sync.Mutex
		seen := map[int64]bool{}
		var wg sync.WaitGroup
		for range handles {
			s := b.open(t, dir)
			for range workers {
				wg.Go(func() {
					last := int64(0)
					for range perWorker {
						n, err := s.NextCRLNumber(ctx)
						if err != nil {
							t.Errorf("NextCRLNumber() error = %v", err)
							return
						}
						if n <= last {
							t.Errorf("NextCRLNumber() = %d after %d, want strictly increasing", n, last)
						}
						last = n
						mu.Lock()
						if seen[n] {
							t.Errorf("NextCRLNumber() returned %d twice", n)
						}
						seen[n] = true
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		total := handles * workers * perWorker
		for n := int64(1); n <= int64(total); n++ {
			if !seen[n] {
				t.Errorf("CRL number %d was never returned; want exactly 1..%d", n, total)
			}
		}
	})
}

func BenchmarkRevokedSerials(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir())
	for i := range 1000 {
		serial := randomSerial()
		if err := s.AddCert(ctx, testCert(serial, KindClient, "c")); err != nil {
			b.Fatal(err)
		}
		if i%10 == 0 {
			if err := s.Revoke(ctx, serial, "", epoch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.RevokedSerials(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRevocationGeneration(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir())
	for b.Loop() {
		if _, err := s.RevocationGeneration(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddCert(b *testing.B) {
	ctx := context.Background()
	s := openTest(b, b.TempDir())
	for b.Loop() {
		if err := s.AddCert(ctx, testCert(randomSerial(), KindClient, "c")); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCertStatus(t *testing.T) {
	day := 24 * time.Hour
	client := testCert("01", KindClient, "c") // 30 days from epoch
	server := testCert("02", KindServer, "s")
	server.NotAfter = epoch.Add(397 * day)
	revoked := client
	revoked.RevokedAt = epoch
	tests := []struct {
		name string
		cert Cert
		now  time.Time
		want string
	}{
		{"fresh client", client, epoch, StatusValid},
		{"client with 11 days left", client, epoch.Add(19 * day), StatusValid},
		{"client with 9 days left (under a third)", client, epoch.Add(21 * day), StatusExpiring},
		{"server with 140 days left", server, epoch.Add(257 * day), StatusValid},
		{"server with 130 days left (under a third)", server, epoch.Add(267 * day), StatusExpiring},
		// Enrollment's default: a 7-day certificate is valid when issued
		// and expiring once it is past its renewal point (two thirds).
		{"fresh 7-day cert", Cert{NotBefore: epoch, NotAfter: epoch.Add(7 * day)}, epoch, StatusValid},
		{"7-day cert with 3 days left", Cert{NotBefore: epoch, NotAfter: epoch.Add(7 * day)}, epoch.Add(4 * day), StatusValid},
		{"7-day cert with 2 days left", Cert{NotBefore: epoch, NotAfter: epoch.Add(7 * day)}, epoch.Add(5 * day), StatusExpiring},
		{"fresh 1-day cert", Cert{NotBefore: epoch, NotAfter: epoch.Add(day)}, epoch, StatusValid},
		{"at expiry", client, client.NotAfter, StatusExpired},
		{"revoked beats expired", revoked, epoch.Add(100 * day), StatusRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cert.Status(tt.now); got != tt.want {
				t.Errorf("Status() = %s, want %s", got, tt.want)
			}
		})
	}
}
