package authority

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/store"
)

// WriteBundle writes is in Docker's layout into dir (for --out), so that
// DOCKER_CERT_PATH=dir works: ca.pem and cert.pem 0644, key.pem 0600, each
// written atomically. A missing dir is created 0700; an existing one keeps
// its mode, since it may be the user's own (~/.docker), but one that other
// users can write to is refused. Without overwrite, an existing ca.pem,
// cert.pem or key.pem is refused with ErrFileExists and nothing is written.
func WriteBundle(dir string, is *Issued, overwrite bool) error {
	if err := prepareOutDir(dir); err != nil {
		return err
	}
	files := bundleFiles(is)
	if !overwrite {
		if err := writeFilesExclusive(dir, files); err != nil {
			return fmt.Errorf("failed to write the bundle: %w", err)
		}
		return nil
	}
	staged, err := stageFiles(dir, files)
	if err != nil {
		return fmt.Errorf("failed to write the bundle: %w", err)
	}
	if err := placeFiles(dir, files, staged, true); err != nil {
		return fmt.Errorf("failed to write the bundle: %w", err)
	}
	return nil
}

func prepareOutDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return store.EnsureDir(dir)
	}
	if err != nil {
		return fmt.Errorf("failed to write the bundle: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("failed to write the bundle: %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o002 != 0 {
		return fmt.Errorf("refusing to write a private key to %s: other users can write to it (mode %v)", dir, fi.Mode().Perm())
	}
	return nil
}

// BundlePaths are the three files of a bundle directory.
func BundlePaths(dir string) (ca, cert, key string) {
	return filepath.Join(dir, BundleCAFile), filepath.Join(dir, BundleCertFile), filepath.Join(dir, BundleKeyFile)
}
