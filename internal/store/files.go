package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// privateDirPerm is the mode of every directory dockgate creates: only the
// owner may list or enter it, because it holds private keys.
const privateDirPerm = 0o700

// EnsureDir creates path and its parents with mode 0700. An existing
// directory that other users can read is tightened to 0700; a directory
// anyone can write to (such as /tmp) is refused, since tightening it would
// break other programs and keeping keys there would not be private.
func EnsureDir(path string) error {
	if err := os.MkdirAll(path, privateDirPerm); err != nil {
		return fmt.Errorf("failed to create directory: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("failed to create directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("failed to create directory: %s is not a directory", path)
	}
	mode := fi.Mode()
	if mode.Perm()&0o002 != 0 || mode&fs.ModeSticky != 0 {
		return fmt.Errorf("refusing to use %s: other users can write to it (mode %v)", path, mode.Perm())
	}
	if mode.Perm()&0o077 != 0 {
		if err := os.Chmod(path, privateDirPerm); err != nil {
			return fmt.Errorf("failed to restrict permissions of %s: %w", path, err)
		}
	}
	return nil
}

// WriteFileAtomic replaces path with data so that readers see either the old
// file or the complete new one, never a torn write, even across a crash: it
// writes a temporary file in the same directory with mode perm, fsyncs it,
// renames it over path and fsyncs the directory. On failure the temporary
// file is removed and path is left untouched.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// Chmod before writing, so a key never exists with CreateTemp's mode
	// and our content at once.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	return nil
}

// ensurePrivateFile creates path empty with mode 0600 if it does not exist,
// and removes group and other permissions if it does. SQLite gives its -wal
// and -shm files the mode of the database file, so this covers them too.
func ensurePrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return f.Chmod(fi.Mode().Perm() &^ 0o077)
	}
	return nil
}
