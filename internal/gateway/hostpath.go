package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// resolveHostPath resolves the symbolic links in an absolute, clean host
// path the way the kernel will follow them when dockerd mounts it. The
// part that does not exist yet (dockerd creates a missing Binds source)
// is kept as written under its deepest existing directory. A dangling
// link is an error: dockerd would create or mount whatever it points to
// once it exists.
func resolveHostPath(p string) (string, error) {
	missing := ""
	for {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return filepath.Join(resolved, missing), nil
		}
		if !errors.Is(err, fs.ErrNotExist) || p == "/" {
			return "", err
		}
		if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a dangling symbolic link", p)
		}
		p, missing = filepath.Dir(p), filepath.Join(filepath.Base(p), missing)
	}
}
