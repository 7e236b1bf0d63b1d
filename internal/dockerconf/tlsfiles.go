package dockerconf

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/atomicfile"
)

// writeTLS replaces the context's TLS directory (contexts/tls/<id>) with one
// holding only docker/{ca,cert,key}.pem. The new directory is built under a
// hidden name beside the old one and swapped in, so cert.pem and key.pem
// always change together: a docker command running meanwhile never pairs a
// new certificate with an old key. The docker CLI skips hidden entries.
func writeTLS(contextTLSDir string, c Context) (err error) {
	root := filepath.Dir(contextTLSDir)
	// The docker CLI creates contexts/ world-readable and tls/ below it private.
	if err := os.MkdirAll(filepath.Dir(root), metaDirPerm); err != nil {
		return err
	}
	if err := os.MkdirAll(root, tlsDirPerm); err != nil {
		return err
	}
	staged, err := os.MkdirTemp(root, "."+filepath.Base(contextTLSDir)+".tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(staged)
		}
	}()
	if err := stageTLS(staged, c); err != nil {
		return err
	}
	old, err := swapIn(staged, contextTLSDir)
	if err != nil {
		return err
	}
	if err := atomicfile.SyncDir(root); err != nil {
		return err
	}
	if old != "" {
		// The old material is now unreachable; failing to delete it only
		// leaves a hidden directory behind, so report nothing.
		_ = os.RemoveAll(old)
	}
	return nil
}

// stageTLS writes docker/{ca,cert,key}.pem into dir, which MkdirTemp has
// already created with mode 0700.
func stageTLS(dir string, c Context) error {
	endpoint := filepath.Join(dir, dockerEndpoint)
	if err := os.Mkdir(endpoint, tlsDirPerm); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
	}{{caFile, c.CA}, {certFile, c.Cert}, {keyFile, c.Key}}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(endpoint, f.name), f.data, tlsFilePerm); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(dir)
}

// swapIn moves staged to target. If target exists, the two are exchanged
// atomically where the system can (Linux renameat2), else the old directory
// is moved aside first. It returns where the old directory ended up ("" if
// there was none).
func swapIn(staged, target string) (old string, err error) {
	err = os.Rename(staged, target)
	if err == nil {
		return "", nil
	}
	if _, statErr := os.Lstat(target); errors.Is(statErr, fs.ErrNotExist) {
		return "", err
	}
	if exchangeDirs(staged, target) == nil {
		return staged, nil
	}
	return moveAsideAndRename(staged, target)
}

// moveAsideAndRename is the portable replacement: for a moment target does
// not exist, which a reader sees as a context without TLS files.
func moveAsideAndRename(staged, target string) (string, error) {
	aside := staged + ".old"
	if err := os.Rename(target, aside); err != nil {
		return "", fmt.Errorf("failed to replace %s: %w", target, err)
	}
	if err := os.Rename(staged, target); err != nil {
		if restoreErr := os.Rename(aside, target); restoreErr != nil {
			return "", fmt.Errorf("failed to replace %s: %w; the previous files are in %s", target, err, aside)
		}
		return "", fmt.Errorf("failed to replace %s: %w", target, err)
	}
	return aside, nil
}
