package authority

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// Joined is what a host joining the fleet received from a gateway that
// signs: its server certificate and key, and the CA certificate. Never
// the CA key: a joined host cannot sign.
type Joined struct {
	Name    string // the server certificate's name
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte
}

// InstallJoined writes j into the state directory in Docker's layout: the
// CA certificate to ca/ca.pem (kept when it is already there and the same;
// another CA there is an error) and the bundle to servers/NAME/ (key.pem
// 0600, directories 0700), each file written atomically and the bundle
// directory swapped in whole.
func InstallJoined(stateDir string, j Joined) error {
	if err := ValidateName(j.Name); err != nil {
		return err
	}
	caPath := CACertPath(stateDir)
	have, err := os.ReadFile(caPath)
	switch {
	case err == nil:
		if !bytes.Equal(bytes.TrimSpace(have), bytes.TrimSpace(j.CAPEM)) {
			return fmt.Errorf("failed to install the joined host's files: %s holds another CA", caPath)
		}
	case errors.Is(err, fs.ErrNotExist):
		if err := store.EnsureDir(filepath.Dir(caPath)); err != nil {
			return err
		}
		if err := writeFilesExclusive(filepath.Dir(caPath), []fileSpec{{name: filepath.Base(caPath), data: j.CAPEM, perm: certFileMode}}); err != nil {
			return fmt.Errorf("failed to write the CA certificate: %w", err)
		}
	default:
		return fmt.Errorf("failed to read %s: %w", caPath, err)
	}
	is := &Issued{KeyPEM: j.KeyPEM, CertPEM: j.CertPEM, CAPEM: j.CAPEM}
	swap, err := installDir(BundleDir(stateDir, pki.KindServer, j.Name), bundleFiles(is))
	if err != nil {
		return fmt.Errorf("failed to write the server certificate bundle: %w", err)
	}
	swap.commit()
	return nil
}
