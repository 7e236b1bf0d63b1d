package authority

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// reasonInterrupted is the revocation reason of a certificate whose
// issuance was interrupted: it was never handed out, and is withdrawn.
const reasonInterrupted = "cessation-of-operation"

// lock takes the state lock for an issuance and first cleans up after any
// issuance that was interrupted; the caller must unlock.
func (a *Authority) lock(ctx context.Context) (unlock func(), err error) {
	return lockAndRecover(ctx, a.st, a.log)
}

func lockAndRecover(ctx context.Context, st *store.Store, log *slog.Logger) (unlock func(), err error) {
	unlockDir, err := lockState(st.Dir())
	if err != nil {
		return nil, err
	}
	// A shared (PostgreSQL) inventory also takes its cluster-wide lock, so
	// that no host issues while another recovers: a pending row is then a
	// leftover wherever it was written.
	unlockStore, err := st.LockIssuance(ctx)
	if err != nil {
		unlockDir()
		return nil, err
	}
	unlock = func() { unlockStore(); unlockDir() }
	r := recovery{st: st, log: log}
	if err := r.run(ctx); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// Recover takes the state lock and cleans up after interrupted issuances,
// logging each step to log (nil: silently). It needs no CA key, so `certs`
// and `revoke` call it before they read the inventory, and what they show
// is settled.
func Recover(ctx context.Context, st *store.Store, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	unlock, err := lockAndRecover(ctx, st, log)
	if err != nil {
		return err
	}
	unlock()
	return nil
}

// recovery settles what interrupted issuances left in a state directory.
type recovery struct {
	st  *store.Store
	log *slog.Logger
}

// run settles what an interrupted (killed) issuance left. It runs with
// the state lock held, so no issuance is in flight and every pending row
// and staging directory is a leftover:
//   - bundle directories holding a pending certificate are removed, and
//     the bundle they replaced, kept aside, is put back;
//   - staging directories and temporary files are removed;
//   - then pending rows are revoked (cessation-of-operation): the
//     certificate may have been signed, and perhaps written, but was never
//     handed out.
//
// Files go first so that a run killed midway leaves the rows pending and
// the next run finds them again. Each step is logged.
func (a recovery) run(ctx context.Context) error {
	if !lockIsExclusive {
		return nil
	}
	pending, err := a.st.PendingCerts(ctx)
	if err != nil {
		return err
	}
	abandoned := make(map[string]bool, len(pending))
	for _, c := range pending {
		abandoned[c.Serial] = true
	}
	for _, kind := range []pki.Kind{pki.KindServer, pki.KindClient} {
		a.cleanBundles(filepath.Dir(BundleDir(a.st.Dir(), kind, "x")), abandoned)
	}
	a.removeTempFiles(filepath.Dir(CACertPath(a.st.Dir())))
	for _, c := range pending {
		err := a.st.Revoke(ctx, c.Serial, reasonInterrupted, time.Now())
		if err != nil && !errors.Is(err, store.ErrAlreadyRevoked) {
			return fmt.Errorf("failed to revoke the certificate of an interrupted issuance: %w", err)
		}
		a.log.Warn("revoked a certificate whose issuance was interrupted",
			"serial", c.Serial, "kind", c.Kind, "name", c.Name, "reason", reasonInterrupted)
	}
	return nil
}

// Marks in the hidden names installDir, asideName and discardDir give
// directories. Every other hidden entry in servers/, clients/ and ca/ is a
// staging directory or an atomic write's temporary file (atomicfile names
// those "."+name+digits).
const (
	stagingMark = ".new-"
	asideMark   = ".old-"
	discardMark = ".del-"
)

// cleanBundles settles the bundle directories under parent (servers/ or
// clients/).
func (a recovery) cleanBundles(parent string, abandoned map[string]bool) {
	entries, err := os.ReadDir(parent)
	if err != nil {
		return // no such directory yet: nothing to clean
	}
	// Visible bundles first: removing an abandoned one lets the aside copy
	// it replaced be restored below.
	for _, e := range entries {
		if len(abandoned) > 0 && !strings.HasPrefix(e.Name(), ".") && e.IsDir() {
			a.removeAbandonedBundle(filepath.Join(parent, e.Name()), abandoned)
		}
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(parent, name)
		switch {
		case !strings.HasPrefix(name, "."):
		case strings.Contains(name, asideMark):
			a.settleAside(path)
		default: // stagingMark, discardMark, or a temporary file
			a.removeLeftover(path, "staging directory of an interrupted issuance")
		}
	}
}

// removeAbandonedBundle removes dir if its certificate is one whose
// issuance was interrupted.
func (a recovery) removeAbandonedBundle(dir string, abandoned map[string]bool) {
	data, err := os.ReadFile(filepath.Join(dir, BundleCertFile))
	if err != nil {
		return
	}
	cert, err := pki.ParseCertPEM(data)
	if err != nil || !abandoned[pki.SerialHex(cert.SerialNumber)] {
		return
	}
	if err := discardDir(dir); err != nil {
		a.log.Warn("failed to remove the bundle of an interrupted issuance", "dir", dir, "err", err)
		return
	}
	a.log.Warn("removed the bundle of an interrupted issuance", "dir", dir)
}

// settleAside puts a bundle set aside by an interrupted replacement back
// in place, or removes it when its replacement was completed.
func (a recovery) settleAside(aside string) {
	parent, base := filepath.Split(aside)
	name := strings.TrimPrefix(base[:strings.LastIndex(base, asideMark)], ".")
	dir := filepath.Join(parent, name)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) && ValidateName(name) == nil {
		if err := os.Rename(aside, dir); err == nil {
			atomicfile.SyncDir(parent)
			a.log.Warn("restored the bundle an interrupted issuance had set aside", "dir", dir)
			return
		}
	}
	a.removeLeftover(aside, "previous bundle kept aside by a completed replacement")
}

// removeTempFiles removes the temporary files an interrupted atomic write
// left in dir: every hidden regular file.
func (a recovery) removeTempFiles(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
			a.removeLeftover(filepath.Join(dir, e.Name()), "temporary file of an interrupted write")
		}
	}
}

func (a recovery) removeLeftover(path, what string) {
	if err := os.RemoveAll(path); err != nil {
		a.log.Warn("failed to remove a leftover "+what, "path", path, "err", err)
		return
	}
	a.log.Warn("removed a leftover "+what, "path", path)
}
