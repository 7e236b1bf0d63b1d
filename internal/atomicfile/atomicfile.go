// Package atomicfile writes files so that a reader, or the system after a
// crash, sees either the old file or the complete new one, never a torn
// write.
//
// # How
//
// The data goes to a temporary file beside the target (a hidden name in the
// same directory, so the rename stays on one file system), created 0600 and
// given its final mode before any data is written: a key never exists with
// a looser mode. The temporary file is fsynced, renamed (or linked) over
// the target, and then the directory is fsynced, so that the rename itself
// survives a crash. The temporary file handling, fsync and rename come from
// github.com/google/renameio/v2; the directory fsync is done here, since
// renameio leaves it to the caller.
//
// # Modes
//
// The mode given is the mode the file gets, exactly: the umask does not
// apply and an existing file's mode is not kept, so rewriting a key that
// someone loosened to 0644 makes it 0600 again. Directories are the
// caller's business (modes differ: the state directory is 0700, a docker
// context's metadata directory 0755); the parent must exist.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// Write replaces path with data, with mode perm. On failure path is left as
// it was and no temporary file remains.
func Write(path string, data []byte, perm fs.FileMode) error {
	p, err := Stage(path, data, perm)
	if err != nil {
		return err
	}
	if err := p.Replace(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Pending is a file written and fsynced under a temporary name beside its
// target, not yet in place. Staging several files before placing any keeps
// the moment in which some are new and some old as short as it can be.
// Exactly one of Replace, Link or Discard must follow.
type Pending struct {
	file *renameio.PendingFile
	path string
}

// Stage writes data with mode perm to a temporary file beside path and
// fsyncs it.
func Stage(path string, data []byte, perm fs.FileMode) (*Pending, error) {
	f, err := renameio.NewPendingFile(path,
		renameio.WithTempDir(filepath.Dir(path)), // never $TMPDIR: the file may be a key
		renameio.WithStaticPermissions(perm))
	if err != nil {
		return nil, fmt.Errorf("failed to write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Cleanup()
		return nil, fmt.Errorf("failed to write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Cleanup()
		return nil, fmt.Errorf("failed to write %s: %w", path, err)
	}
	return &Pending{file: f, path: path}, nil
}

// Replace renames the staged file over its target. The caller fsyncs the
// directory (SyncDir) once every file of the set is in place.
func (p *Pending) Replace() error {
	if err := p.file.CloseAtomicallyReplace(); err != nil {
		p.file.Cleanup()
		return fmt.Errorf("failed to write %s: %w", p.path, err)
	}
	return nil
}

// Link puts the staged file in place only if its target does not exist
// (link(2) refuses an existing name, with no window in which another
// process's file could be replaced); the error then wraps fs.ErrExist. The
// temporary name is removed either way. The caller fsyncs the directory.
func (p *Pending) Link() error {
	defer p.file.Cleanup()
	if err := p.file.Close(); err != nil {
		return fmt.Errorf("failed to write %s: %w", p.path, err)
	}
	if err := os.Link(p.file.Name(), p.path); err != nil {
		return fmt.Errorf("failed to write %s: %w", p.path, err)
	}
	return nil
}

// Discard removes the staged file; its target is untouched.
func (p *Pending) Discard() {
	p.file.Cleanup()
}

// SyncDir fsyncs dir, which makes renames and links in it durable. Systems
// that cannot fsync a directory have nothing more to offer, so that is not
// an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) && !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("failed to sync directory %s: %w", dir, err)
	}
	return nil
}
