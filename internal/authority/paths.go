package authority

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/dockgate/dockgate/internal/pki"
)

// File names in Docker's certificate directory layout (DOCKER_CERT_PATH).
const (
	BundleCAFile   = "ca.pem"
	BundleCertFile = "cert.pem"
	BundleKeyFile  = "key.pem"
)

// Modes of the files in a bundle: certificates are public, keys are not.
const (
	certFileMode = 0o644
	keyFileMode  = 0o600
)

// CACertPath is the CA certificate in the state directory.
func CACertPath(stateDir string) string { return filepath.Join(stateDir, "ca", "ca.pem") }

// CAKeyPath is the CA private key in the state directory.
func CAKeyPath(stateDir string) string { return filepath.Join(stateDir, "ca", "ca-key.pem") }

// lockPath is the file flock(2)ed while issuing.
func lockPath(stateDir string) string { return filepath.Join(stateDir, "dockgate.lock") }

// BundleDir is where the state directory keeps the bundle of a server or
// client certificate: servers/NAME or clients/NAME.
func BundleDir(stateDir string, kind pki.Kind, name string) string {
	return filepath.Join(stateDir, string(kind)+"s", name)
}

// nameRE is the shape of certificate names: safe as a directory name, and
// never starting with a dot or a dash.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidateName checks a server or client name: 1 to 64 characters, letters,
// digits, '.', '_' and '-', starting with a letter or digit.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("invalid name %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}
