package dockerconf

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
)

// contextNamePattern is the docker CLI's rule for context names
// (cli/context/store.ValidateContextName); a name it refuses could not be
// used with `docker --context`.
const contextNamePattern = `^[a-zA-Z0-9][a-zA-Z0-9_.+-]+$`

var contextNameRE = regexp.MustCompile(contextNamePattern)

// DefaultContextName is the docker CLI's built-in context (DOCKER_HOST or the
// local socket). It cannot be written, and using it clears currentContext.
const DefaultContextName = "default"

// ValidateContextName applies the docker CLI's rules to a context name.
func ValidateContextName(name string) error {
	switch {
	case name == "":
		return errors.New("context name cannot be empty")
	case name == DefaultContextName:
		return errors.New(`"default" is a reserved context name`)
	case !contextNameRE.MatchString(name):
		return fmt.Errorf("context name %q is invalid: it must match %s", name, contextNamePattern)
	}
	return nil
}

// contextID is the directory name the docker CLI stores a context under: the
// hex SHA-256 of its name (digest.FromString(name).Encoded() in docker/cli).
func contextID(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:])
}

// certNamePattern is the rule for certificate names in the state directory
// (docs/ARCHITECTURE.md); it also keeps a name from escaping its directory.
const certNamePattern = `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`

var certNameRE = regexp.MustCompile(certNamePattern)

func validateCertName(kind, name string) error {
	if !certNameRE.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: it must match %s", kind, name, certNamePattern)
	}
	return nil
}
