package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func perm(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestEnsureDir(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(path string) error
		want    os.FileMode
		wantErr string
	}{
		{name: "creates missing parents", prepare: func(string) error { return nil }, want: 0o700},
		{name: "tightens a readable dir", prepare: func(p string) error { return os.MkdirAll(p, 0o755) }, want: 0o700},
		{name: "keeps a private dir", prepare: func(p string) error { return os.MkdirAll(p, 0o700) }, want: 0o700},
		{
			name:    "refuses a file",
			prepare: func(p string) error { os.MkdirAll(filepath.Dir(p), 0o700); return os.WriteFile(p, nil, 0o600) },
			wantErr: "not a directory",
		},
		{
			name: "refuses a world-writable dir",
			prepare: func(p string) error {
				if err := os.MkdirAll(p, 0o700); err != nil {
					return err
				}
				return os.Chmod(p, 0o777)
			},
			wantErr: "other users can write",
		},
		{
			name: "refuses a sticky dir like /tmp",
			prepare: func(p string) error {
				if err := os.MkdirAll(p, 0o700); err != nil {
					return err
				}
				return os.Chmod(p, os.ModeSticky|0o770)
			},
			wantErr: "other users can write",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "a", "b")
			if err := tt.prepare(path); err != nil {
				t.Fatal(err)
			}
			err := EnsureDir(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("EnsureDir() error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("EnsureDir() error = %v", err)
			}
			if got := perm(t, path); got != tt.want {
				t.Errorf("mode = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWriteFileAtomic(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte
		perm     os.FileMode
	}{
		{name: "new key file", perm: 0o600},
		{name: "replaces a certificate", existing: []byte("old content that is longer"), perm: 0o644},
		{name: "tightens a loose key", existing: []byte("old"), perm: 0o600},
		{name: "read-only CA key", perm: 0o400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.pem")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o666); err != nil {
					t.Fatal(err)
				}
			}
			want := []byte("new content")
			if err := WriteFileAtomic(path, want, tt.perm); err != nil {
				t.Fatalf("WriteFileAtomic() error = %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("content = %q, want %q", got, want)
			}
			if got := perm(t, path); got != tt.perm {
				t.Errorf("mode = %v, want %v", got, tt.perm)
			}
			assertOnlyFiles(t, dir, "key.pem")
		})
	}
}

func TestWriteFileAtomicFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory, so the final rename fails after
	// the temporary file was written.
	target := filepath.Join(dir, "cert.pem")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(target, []byte("data"), 0o600); err == nil {
		t.Fatal("WriteFileAtomic() over a directory succeeded, want an error")
	}
	assertOnlyFiles(t, dir, "cert.pem")
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target changed: %v, %v", fi, err)
	}

	missing := filepath.Join(dir, "nope", "key.pem")
	if err := WriteFileAtomic(missing, []byte("data"), 0o600); err == nil {
		t.Fatal("WriteFileAtomic() into a missing directory succeeded, want an error")
	}
}

func assertOnlyFiles(t *testing.T, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("directory holds %v, want %v (a temporary file left behind?)", got, want)
	}
}
