package gateway

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
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

// resolvesHostPaths reports whether a gateway in front of this upstream
// sees the daemon's filesystem: a unix socket is on the same host.
func resolvesHostPaths(u config.Upstream) bool {
	parsed, err := url.Parse(u.URL)
	return err == nil && parsed.Scheme == "unix"
}

// resolveBindPaths snapshots the policy's allowed bind paths with their
// links resolved (policy.WithResolvedBindPaths), and logs what the gateway
// cannot check: a path it cannot see or resolve, or one that leads to /.
func resolveBindPaths(p *policy.Policy, log *slog.Logger) *policy.Policy {
	seen := map[string]bool{}
	return p.WithResolvedBindPaths(func(path string) (string, error) {
		resolved, err := resolveHostPath(path)
		if seen[path] {
			return resolved, err
		}
		seen[path] = true
		_, statErr := os.Stat(path)
		switch {
		case err != nil:
			log.Warn("bind path: its symbolic links cannot be resolved, so it is compared as written", "path", path, "err", err)
		case errors.Is(statErr, fs.ErrNotExist):
			log.Warn("bind path does not exist where the gateway runs: symbolic links under it cannot be checked", "path", path,
				"fix", "create it, or run dockgate where it sees the daemon's filesystem (on the host, or with the path mounted at the same place)")
		case resolved == "/":
			log.Warn("bind path resolves to /: every host path can be bind-mounted through it", "path", path)
		case resolved != path:
			log.Info("bind path is a symbolic link: bind sources are checked against its target", "path", path, "target", resolved)
		}
		return resolved, err
	})
}
