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
