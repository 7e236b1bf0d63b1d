package authority

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/store"
)

// fileSpec is one file to write.
type fileSpec struct {
	name string
	data []byte
	perm os.FileMode
}

// stageFiles writes each file to a temporary file in dir, with its final
// mode set before any data is written, and fsyncs it. The caller places the
// staged files (placeFiles) or discards them.
func stageFiles(dir string, files []fileSpec) (staged []*atomicfile.Pending, err error) {
	defer func() {
		if err != nil {
			discardAll(staged)
		}
	}()
	for _, f := range files {
		p, err := atomicfile.Stage(filepath.Join(dir, f.name), f.data, f.perm)
		if err != nil {
			return staged, err
		}
		staged = append(staged, p)
	}
	return staged, nil
}

// placeFiles moves staged files to their final names in dir and fsyncs
// dir. Without overwrite it links them, which fails if the name exists, so
// a file another process created a moment ago is never replaced; on failure
// the files already placed are removed again. The temporaries are always
// gone afterwards.
func placeFiles(dir string, files []fileSpec, staged []*atomicfile.Pending, overwrite bool) error {
	var placed []string
	for i, f := range files {
		final := filepath.Join(dir, f.name)
		if err := placeFile(staged[i], final, overwrite); err != nil {
			discardAll(staged[i+1:])
			removeAll(placed)
			return err
		}
		placed = append(placed, final)
	}
	return atomicfile.SyncDir(dir)
}

func placeFile(p *atomicfile.Pending, final string, overwrite bool) error {
	if overwrite {
		return p.Replace()
	}
	err := p.Link()
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %w", final, ErrFileExists)
	}
	return err
}

// writeFilesExclusive writes files into dir, refusing (ErrFileExists) if any
// of them exists. Either all are written or none.
func writeFilesExclusive(dir string, files []fileSpec) error {
	for _, f := range files {
		if err := refuseExisting(filepath.Join(dir, f.name)); err != nil {
			return err
		}
	}
	staged, err := stageFiles(dir, files)
	if err != nil {
		return err
	}
	return placeFiles(dir, files, staged, false)
}

func refuseExisting(path string) error {
	_, err := os.Lstat(path)
	switch {
	case err == nil:
		return fmt.Errorf("%s %w", path, ErrFileExists)
	case errors.Is(err, fs.ErrNotExist):
		return nil
	default:
		return fmt.Errorf("failed to check %s: %w", path, err)
	}
}

// dirSwap is a directory installed by installDir, with the one it replaced
// kept aside until commit or rollback.
type dirSwap struct {
	dir, old string
}

// installDir makes dir a new directory (0700) holding exactly files. The
// files are written and fsynced in a hidden sibling directory which is then
// renamed to dir, so dir is never seen half-written. An existing dir is
// renamed aside first; commit deletes it, rollback puts it back.
func installDir(dir string, files []fileSpec) (*dirSwap, error) {
	parent, base := filepath.Split(dir)
	if err := store.EnsureDir(parent); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".new-")
	if err != nil {
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	swap, err := fillAndSwap(tmp, dir, files)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return swap, nil
}

func fillAndSwap(tmp, dir string, files []fileSpec) (*dirSwap, error) {
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(tmp, f.name), f.data, f.perm); err != nil {
			return nil, err
		}
	}
	swap := &dirSwap{dir: dir}
	if _, err := os.Lstat(dir); err == nil {
		swap.old = asideName(dir)
		if err := os.Rename(dir, swap.old); err != nil {
			return nil, fmt.Errorf("failed to replace %s: %w", dir, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		swap.restoreOld()
		return nil, fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(dir)); err != nil {
		swap.rollback()
		return nil, err
	}
	return swap, nil
}

// commit deletes the replaced directory.
func (s *dirSwap) commit() {
	if s.old != "" {
		os.RemoveAll(s.old)
	}
}

// rollback removes the new directory and restores the replaced one.
func (s *dirSwap) rollback() {
	os.RemoveAll(s.dir)
	s.restoreOld()
}

func (s *dirSwap) restoreOld() {
	if s.old != "" {
		os.Rename(s.old, s.dir)
		atomicfile.SyncDir(filepath.Dir(s.dir))
	}
}

// asideName is a hidden, unique sibling name for a directory being replaced.
func asideName(dir string) string {
	var b [8]byte
	rand.Read(b[:])
	parent, base := filepath.Split(dir)
	return filepath.Join(parent, "."+base+".old-"+hex.EncodeToString(b[:]))
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

func discardAll(staged []*atomicfile.Pending) {
	for _, p := range staged {
		p.Discard()
	}
}
