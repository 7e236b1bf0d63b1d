package authority

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestInstallJoined(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	j := Joined{Name: "dock2", CAPEM: []byte("-----CA-----\n"), CertPEM: []byte("-----CERT-----\n"), KeyPEM: []byte("-----KEY-----\n")}
	if err := InstallJoined(dir, j); err != nil {
		t.Fatal(err)
	}
	checkMode(t, dir, 0o700)
	checkMode(t, filepath.Join(dir, "ca"), 0o700)
	checkMode(t, filepath.Join(dir, "servers"), 0o700)
	bundle := filepath.Join(dir, "servers", "dock2")
	checkMode(t, bundle, 0o700)
	checkMode(t, filepath.Join(bundle, BundleKeyFile), 0o600)
	checkMode(t, filepath.Join(bundle, BundleCertFile), 0o644)
	checkMode(t, CACertPath(dir), 0o644)
	for path, want := range map[string][]byte{CACertPath(dir): j.CAPEM, filepath.Join(bundle, BundleCAFile): j.CAPEM,
		filepath.Join(bundle, BundleCertFile): j.CertPEM, filepath.Join(bundle, BundleKeyFile): j.KeyPEM} {
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s = %q, %v; want %q", path, got, err, want)
		}
	}
	if _, err := os.Lstat(CAKeyPath(dir)); !os.IsNotExist(err) {
		t.Errorf("a joined host has %s (%v)", CAKeyPath(dir), err)
	}
	t.Run("again with the same CA", func(t *testing.T) {
		j2 := j
		j2.CertPEM = []byte("-----CERT 2-----\n")
		if err := InstallJoined(dir, j2); err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(bundle, BundleCertFile)); !bytes.Equal(got, j2.CertPEM) {
			t.Errorf("cert.pem = %q, want the new one", got)
		}
	})
	t.Run("another CA is refused", func(t *testing.T) {
		j3 := j
		j3.CAPEM = []byte("-----OTHER CA-----\n")
		if err := InstallJoined(dir, j3); err == nil {
			t.Fatal("InstallJoined over another CA succeeded")
		}
		if got, _ := os.ReadFile(CACertPath(dir)); !bytes.Equal(got, j.CAPEM) {
			t.Errorf("ca.pem was replaced: %q", got)
		}
	})
}
