package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte
		oldPerm  fs.FileMode
		perm     fs.FileMode
	}{
		{name: "new key file", perm: 0o600},
		{name: "new certificate", perm: 0o644},
		{name: "read-only key", perm: 0o400},
		{name: "replaces a longer file", existing: []byte("old content that is longer"), oldPerm: 0o644, perm: 0o644},
		{name: "tightens a loosened key", existing: []byte("old"), oldPerm: 0o666, perm: 0o600},
		{name: "loosens on purpose", existing: []byte("old"), oldPerm: 0o600, perm: 0o644},
	}
	// The umask must not narrow the mode asked for.
	defer syscall.Umask(syscall.Umask(0o077))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "key.pem")
			if tt.existing != nil {
				writeOld(t, path, tt.existing, tt.oldPerm)
			}
			want := []byte("new content")
			if err := Write(path, want, tt.perm); err != nil {
				t.Fatalf("Write() error = %v", err)
			}
			assertFile(t, path, want, tt.perm)
			assertOnlyFiles(t, dir, "key.pem")
		})
	}
}

func TestWriteBareName(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := Write("ca.pem", []byte("x"), 0o644); err != nil {
		t.Fatalf("Write(bare name) error = %v", err)
	}
	assertFile(t, filepath.Join(dir, "ca.pem"), []byte("x"), 0o644)
}

func TestFailedWriteLeavesTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	old := []byte("the old key")
	writeOld(t, path, old, 0o600)

	// A file size limit makes the write of the new content fail half way
	// (EFBIG), which a full disk would do too; root ignores permissions,
	// so they cannot stand in for it.
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	small := limit
	small.Cur = 4
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
		t.Fatal(err)
	}
	err := Write(path, []byte("a new key, longer than four bytes"), 0o600)
	if rerr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limit); rerr != nil {
		t.Fatal(rerr)
	}
	if err == nil {
		t.Fatal("Write() beyond the file size limit succeeded, want an error")
	}
	assertFile(t, path, old, 0o600)
	assertOnlyFiles(t, dir, "key.pem")
}

func TestFailedRenameLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// The target is a non-empty directory, so the rename fails after the
	// temporary file was written.
	target := filepath.Join(dir, "cert.pem")
	if err := os.MkdirAll(filepath.Join(target, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(target, []byte("data"), 0o600); err == nil {
		t.Fatal("Write() over a directory succeeded, want an error")
	}
	assertOnlyFiles(t, dir, "cert.pem")
	if fi, err := os.Stat(target); err != nil || !fi.IsDir() {
		t.Errorf("target changed: %v, %v", fi, err)
	}
	if err := Write(filepath.Join(dir, "nope", "key.pem"), []byte("data"), 0o600); err == nil {
		t.Fatal("Write() into a missing directory succeeded, want an error")
	}
}

func TestLink(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ca-key.pem")
	p, err := Stage(path, []byte("first"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Link(); err != nil {
		t.Fatalf("Link() to a new name: %v", err)
	}
	assertFile(t, path, []byte("first"), 0o600)

	p, err = Stage(path, []byte("second"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Link(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Link() over an existing file: error = %v, want fs.ErrExist", err)
	}
	assertFile(t, path, []byte("first"), 0o600)
	assertOnlyFiles(t, dir, "ca-key.pem")
}

func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cert.pem")
	writeOld(t, path, []byte("old"), 0o644)
	p, err := Stage(path, []byte("new"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Fatalf("after Stage the directory holds %d entries, want the target and one temporary file", len(entries))
	}
	p.Discard()
	assertFile(t, path, []byte("old"), 0o644)
	assertOnlyFiles(t, dir, "cert.pem")
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Errorf("SyncDir() error = %v", err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("SyncDir(missing) succeeded, want an error")
	}
}

func writeOld(t *testing.T, path string, data []byte, perm fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil { // past the umask
		t.Fatal(err)
	}
}

func assertFile(t *testing.T, path string, want []byte, perm fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("content = %q, want %q", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != perm {
		t.Errorf("mode = %v, want %v", fi.Mode().Perm(), perm)
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
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %v, want %v (a temporary file left behind?)", got, want)
	}
}
