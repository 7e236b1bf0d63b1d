package authority

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

func TestInitCreatesEncryptedCA(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st := openStore(t, dir)
	pass := []byte("correct horse battery staple")
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	a, err := Init(st, InitOptions{CN: "My CA", KeyType: pki.KeyTypeEd25519, Validity: 100 * 24 * time.Hour,
		Passphrase: pass, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, "ca"), 0o700)
	checkMode(t, CAKeyPath(dir), 0o600)
	checkMode(t, CACertPath(dir), 0o644)
	keyPEM := readFile(t, CAKeyPath(dir))
	if !bytes.Contains(keyPEM, []byte("ENCRYPTED PRIVATE KEY")) {
		t.Errorf("CA key is not encrypted PKCS#8:\n%s", keyPEM)
	}
	if enc, err := KeyIsEncrypted(st); err != nil || !enc {
		t.Errorf("KeyIsEncrypted = %v, %v; want true", enc, err)
	}
	cert := a.Cert()
	if cert.Subject.CommonName != "My CA" || !cert.NotAfter.Equal(now.Add(100*24*time.Hour)) {
		t.Errorf("CA %q until %v, want My CA until %v", cert.Subject.CommonName, cert.NotAfter, now.Add(100*24*time.Hour))
	}
	if kt, _ := pki.KeyTypeOf(cert.PublicKey); kt != pki.KeyTypeEd25519 {
		t.Errorf("CA key type %s, want ed25519", kt)
	}
	rec := recordFor(t, st, cert)
	if rec.Kind != store.KindCA || rec.Name != "My CA" || rec.Fingerprint != pki.Fingerprint(cert) {
		t.Errorf("CA record = %+v", rec)
	}
	loaded, err := Load(st, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert().Equal(cert) {
		t.Error("Load returned another certificate")
	}
	if c, err := LoadCert(st); err != nil || !c.Equal(cert) {
		t.Errorf("LoadCert = %v, %v", c, err)
	}
}

func TestInitDefaults(t *testing.T) {
	a := testAuthority(t)
	cert := a.Cert()
	if kt, _ := pki.KeyTypeOf(cert.PublicKey); kt != pki.DefaultKeyType {
		t.Errorf("key type %s, want %s", kt, pki.DefaultKeyType)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != pki.DefaultCAValidity+pki.Backdate {
		t.Errorf("validity %v, want %v", got, pki.DefaultCAValidity)
	}
	if enc, err := KeyIsEncrypted(a.Store()); err != nil || enc {
		t.Errorf("KeyIsEncrypted = %v, %v; want false for a CA made without a passphrase", enc, err)
	}
	if _, err := Load(a.Store(), nil); err != nil {
		t.Errorf("Load of a plain key: %v", err)
	}
	if !strings.HasPrefix(DefaultCN(), "dockgate CA") || len(DefaultCN()) > 64 {
		t.Errorf("DefaultCN() = %q", DefaultCN())
	}
}

func TestInitRefusesExistingCA(t *testing.T) {
	tests := []struct {
		name   string
		remove string // file removed before the second Init
	}{
		{"both files", ""},
		{"key only", "ca.pem"},
		{"cert only", "ca-key.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAuthority(t)
			dir := a.Store().Dir()
			if tt.remove != "" {
				os.Remove(filepath.Join(dir, "ca", tt.remove))
			}
			before := snapshot(t, filepath.Join(dir, "ca"))
			_, err := Init(a.Store(), InitOptions{CN: "second"})
			if !errors.Is(err, ErrCAExists) {
				t.Fatalf("second Init: %v, want ErrCAExists", err)
			}
			if after := snapshot(t, filepath.Join(dir, "ca")); after != before {
				t.Errorf("second Init changed the ca directory:\nbefore %s\nafter  %s", before, after)
			}
			certs, err := a.Store().Certs(ctx)
			if err != nil || len(certs) != 1 {
				t.Errorf("inventory has %d certificates, %v; want only the first CA", len(certs), err)
			}
		})
	}
}

// snapshot describes a directory's files and contents.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		b.WriteString(e.Name() + ":" + string(data) + ";")
	}
	return b.String()
}

func TestLoadErrors(t *testing.T) {
	pass := []byte("s3cret passphrase")
	st := openStore(t, t.TempDir())
	for name, fn := range map[string]func() error{
		"Load":           func() error { _, err := Load(st, nil); return err },
		"LoadCert":       func() error { _, err := LoadCert(st); return err },
		"KeyIsEncrypted": func() error { _, err := KeyIsEncrypted(st); return err },
	} {
		if err := fn(); !errors.Is(err, ErrNoCA) || !strings.Contains(err.Error(), "dockgate init") {
			t.Errorf("%s without a CA: %v, want ErrNoCA suggesting dockgate init", name, err)
		}
	}
	if _, err := Init(st, InitOptions{Passphrase: pass}); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(st, []byte("guess")); !errors.Is(err, pki.ErrWrongPassphrase) {
		t.Errorf("Load with a wrong passphrase: %v, want pki.ErrWrongPassphrase", err)
	} else if strings.Contains(err.Error(), "guess") {
		t.Errorf("error %q reveals the passphrase", err)
	}
	if _, err := Load(st, nil); !errors.Is(err, pki.ErrPassphraseRequired) {
		t.Errorf("Load without a passphrase: %v, want pki.ErrPassphraseRequired", err)
	}
}

func TestLoadDetectsBrokenCA(t *testing.T) {
	otherKey, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		t.Fatal(err)
	}
	otherKeyPEM, err := pki.MarshalKeyPEM(otherKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    func(dir string) string
		data    []byte // nil: remove the file
		wantErr string
	}{
		{"key of another CA", CAKeyPath, otherKeyPEM, "does not belong to"},
		{"corrupt certificate", CACertPath, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "failed to load the CA certificate"},
		{"key missing", CAKeyPath, nil, "ca-key.pem is missing"},
		{"certificate missing", CACertPath, nil, "ca.pem is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAuthority(t)
			path := tt.file(a.Store().Dir())
			if tt.data == nil {
				os.Remove(path)
			} else if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Load(a.Store(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, ErrNoCA) {
				t.Errorf("Load: %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("leaf as CA", func(t *testing.T) {
		a := testAuthority(t)
		is, err := a.IssueClient(ctx, "alice", nil, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(CACertPath(a.Store().Dir()), is.CertPEM, 0o644)
		if _, err := LoadCert(a.Store()); err == nil || !strings.Contains(err.Error(), "not a CA certificate") {
			t.Errorf("LoadCert of a leaf: %v", err)
		}
	})
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"docker-1.example_x", true},
		{"A9", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{".hidden", false},
		{"-dash", false},
		{"_under", false},
		{"..", false},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"a\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidateName(tt.name); (err == nil) != tt.ok {
				t.Errorf("ValidateName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestInitConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	openStore(t, dir) // create the inventory once, as the first CLI run would
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			st, err := store.Open(dir)
			if err != nil {
				errs <- err
				return
			}
			defer st.Close()
			_, err = Init(st, InitOptions{})
			errs <- err
		}()
	}
	var ok, exists int
	for range n {
		switch err := <-errs; {
		case err == nil:
			ok++
		case errors.Is(err, ErrCAExists):
			exists++
		default:
			t.Errorf("Init: %v", err)
		}
	}
	if ok != 1 || exists != n-1 {
		t.Errorf("%d Inits succeeded and %d were refused, want 1 and %d", ok, exists, n-1)
	}
	st := openStore(t, dir)
	if _, err := Load(st, nil); err != nil {
		t.Fatalf("Load after concurrent Inits: %v", err)
	}
	certs, err := st.Certs(ctx)
	if err != nil || len(certs) != 1 {
		t.Errorf("inventory has %d certificates, %v; want one CA", len(certs), err)
	}
}

func TestInitRemovesFilesWhenRecordingFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	st.Close() // recording in a closed inventory fails
	if _, err := Init(st, InitOptions{}); err == nil {
		t.Fatal("Init succeeded without an inventory")
	}
	for _, p := range []string{CACertPath(dir), CAKeyPath(dir)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "ca"))
	if len(entries) != 0 {
		t.Errorf("ca/ holds %v, want nothing", entries)
	}
}
