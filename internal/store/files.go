package store

import (
	"fmt"
	"io/fs"
	"os"
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
