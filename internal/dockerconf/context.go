package dockerconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/dockgate/dockgate/internal/atomicfile"
)

// File and directory modes of the docker CLI's context store (docker/cli
// cli/context/store: metadatastore.go and tlsstore.go). Metadata is public;
// TLS material is private to the user.
const (
	metaDirPerm  = 0o755
	metaFilePerm = 0o644
	tlsDirPerm   = 0o700
	tlsFilePerm  = 0o600
	// configDirPerm is what the docker CLI creates the config directory with
	// when it saves config.json (configfile.Save), which may hold registry
	// credentials.
	configDirPerm  = 0o700
	configFilePerm = 0o600
)

// File names of the docker CLI's context store and config directory.
const (
	contextsDir    = "contexts"
	metaDir        = "meta"
	tlsDir         = "tls"
	metaFile       = "meta.json"
	configFileName = "config.json"
	caFile         = "ca.pem"
	certFile       = "cert.pem"
	keyFile        = "key.pem"
)

// ErrContextExists is returned by WriteContext when the context is already
// there and force is false.
var ErrContextExists = errors.New("already exists")

// ErrContextNotFound is returned when no context has the given name.
var ErrContextNotFound = errors.New("does not exist")

// Context is a docker context with one TLS-protected docker endpoint.
type Context struct {
	Name        string
	Description string
	Host        string // tcp://HOST:PORT
	// SkipTLSVerify is read from contexts made by others; WriteContext
	// refuses it.
	SkipTLSVerify bool
	CA, Cert, Key []byte // PEM, as ca.pem, cert.pem and key.pem
}

// StorageInfo says where a context lives, as `docker context inspect` shows.
type StorageInfo struct {
	MetadataPath string // directory holding meta.json
	TLSPath      string // directory holding docker/{ca,cert,key}.pem
}

// Storage returns the directories of the context name under configDir.
func Storage(configDir, name string) StorageInfo {
	id := contextID(name)
	return StorageInfo{
		MetadataPath: filepath.Join(configDir, contextsDir, metaDir, id),
		TLSPath:      filepath.Join(configDir, contextsDir, tlsDir, id),
	}
}

// ConfigDir returns the docker CLI's configuration directory: $DOCKER_CONFIG,
// else ~/.docker (cli/config.Dir in docker/cli).
func ConfigDir(getenv func(string) string) (string, error) {
	if d := getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Abs(d)
	}
	// The docker CLI's home directory (pkg/homedir in moby) is $USERPROFILE
	// on Windows and $HOME elsewhere.
	homeVar := "HOME"
	if runtime.GOOS == "windows" {
		homeVar = "USERPROFILE"
	}
	home := getenv(homeVar)
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil || home == "" {
			return "", errors.New("failed to find the docker configuration directory: set DOCKER_CONFIG or HOME")
		}
	}
	return filepath.Join(home, ".docker"), nil
}

// WriteContext creates the docker context c under configDir, or replaces it
// when force is true. The configuration directory is created if the docker
// CLI never ran. TLS files are swapped in as a whole before meta.json is
// written, so a reader sees either no context, the old one or the new one;
// an interrupted replacement can at worst pair the new TLS files with the
// old meta.json.
func WriteContext(configDir string, c Context, force bool) error {
	if err := c.validate(); err != nil {
		return err
	}
	where := Storage(configDir, c.Name)
	metaPath := filepath.Join(where.MetadataPath, metaFile)
	exists, err := fileExists(metaPath)
	if err != nil {
		return fmt.Errorf("failed to check for context %q: %w", c.Name, err)
	}
	if exists && !force {
		return fmt.Errorf("context %q %w", c.Name, ErrContextExists)
	}
	meta, err := MarshalMeta(c)
	if err != nil {
		return fmt.Errorf("failed to encode context %q: %w", c.Name, err)
	}
	if err := ensureConfigDir(configDir); err != nil {
		return err
	}
	if err := writeTLS(where.TLSPath, c); err != nil {
		return fmt.Errorf("failed to write TLS files of context %q: %w", c.Name, err)
	}
	if err := os.MkdirAll(where.MetadataPath, metaDirPerm); err != nil {
		return fmt.Errorf("failed to write context %q: %w", c.Name, err)
	}
	if err := atomicfile.Write(metaPath, meta, metaFilePerm); err != nil {
		return fmt.Errorf("failed to write context %q: %w", c.Name, err)
	}
	return nil
}

// validate refuses what would make a context the docker CLI cannot use, or
// one that would not verify the daemon.
func (c Context) validate() error {
	if err := ValidateContextName(c.Name); err != nil {
		return err
	}
	if _, _, err := ParseClientHost(c.Host); err != nil {
		return err
	}
	if c.SkipTLSVerify {
		return fmt.Errorf("context %q: refusing to write a context that skips TLS verification", c.Name)
	}
	return checkTLSMaterial(c.CA, c.Cert, c.Key)
}

// checkTLSMaterial does what the docker CLI does when it loads a context
// (cli/context/docker/load.go), so problems show now and not at first use.
func checkTLSMaterial(ca, cert, key []byte) error {
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return errors.New("invalid TLS material: ca.pem holds no PEM certificate")
	}
	block, _ := pem.Decode(key)
	if block == nil {
		return errors.New("invalid TLS material: key.pem holds no PEM private key")
	}
	//lint:ignore SA1019 detecting legacy encryption is all we use it for; the docker CLI refuses such keys.
	if x509.IsEncryptedPEMBlock(block) || block.Type == "ENCRYPTED PRIVATE KEY" {
		return errors.New("invalid TLS material: key.pem is encrypted, which the docker CLI cannot use")
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("invalid TLS material: cert.pem and key.pem: %w", err)
	}
	return nil
}

// ReadContext loads a context from configDir: its metadata and whichever of
// ca.pem, cert.pem and key.pem exist for its docker endpoint.
func ReadContext(configDir, name string) (Context, error) {
	if err := ValidateContextName(name); err != nil {
		return Context{}, err
	}
	where := Storage(configDir, name)
	data, err := os.ReadFile(filepath.Join(where.MetadataPath, metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Context{}, fmt.Errorf("context %q %w", name, ErrContextNotFound)
	}
	if err != nil {
		return Context{}, fmt.Errorf("failed to read context %q: %w", name, err)
	}
	c, err := ParseMeta(data)
	if err != nil {
		return Context{}, err
	}
	if c.Name != name {
		return Context{}, fmt.Errorf("failed to read context %q: its metadata names %q", name, c.Name)
	}
	endpoint := filepath.Join(where.TLSPath, dockerEndpoint)
	for file, dst := range map[string]*[]byte{caFile: &c.CA, certFile: &c.Cert, keyFile: &c.Key} {
		if *dst, err = readOptional(filepath.Join(endpoint, file)); err != nil {
			return Context{}, fmt.Errorf("failed to read context %q: %w", name, err)
		}
	}
	return c, nil
}

// ContextExists reports whether configDir holds a context called name.
func ContextExists(configDir, name string) (bool, error) {
	return fileExists(filepath.Join(Storage(configDir, name).MetadataPath, metaFile))
}

// UseContext makes name the docker CLI's current context by setting
// "currentContext" in config.json, keeping every other setting. The context
// must exist; "default" clears the setting. config.json is created (0600) if
// absent, keeps its mode if present, and a symlinked config.json is updated
// where it points, as the docker CLI does.
func UseContext(configDir, name string) error {
	if name != DefaultContextName {
		if err := ValidateContextName(name); err != nil {
			return err
		}
		ok, err := ContextExists(configDir, name)
		if err != nil {
			return fmt.Errorf("failed to check for context %q: %w", name, err)
		}
		if !ok {
			return fmt.Errorf("context %q %w", name, ErrContextNotFound)
		}
	}
	path, perm, old, err := readConfigFile(configDir)
	if err != nil {
		return err
	}
	updated, err := SetCurrentContext(old, name)
	if err != nil {
		return fmt.Errorf("%w (%s left unchanged)", err, path)
	}
	if err := ensureConfigDir(configDir); err != nil {
		return err
	}
	if err := atomicfile.Write(path, updated, perm); err != nil {
		return fmt.Errorf("failed to update %s: %w", path, err)
	}
	return nil
}

// CurrentContext returns the "currentContext" of config.json in configDir:
// "" when the file or the setting is absent. See ActiveContext for the
// environment variables that override it.
func CurrentContext(configDir string) (string, error) {
	_, _, data, err := readConfigFile(configDir)
	if err != nil {
		return "", err
	}
	return CurrentContextOf(data)
}

// ActiveContext returns the context the docker CLI would use, following its
// order (cli/command.resolveContextName): DOCKER_HOST selects "default",
// then DOCKER_CONTEXT, then config.json, then "default".
func ActiveContext(configDir string, getenv func(string) string) (string, error) {
	if getenv("DOCKER_HOST") != "" {
		return DefaultContextName, nil
	}
	if name := getenv("DOCKER_CONTEXT"); name != "" {
		return name, nil
	}
	name, err := CurrentContext(configDir)
	if err != nil || name != "" {
		return name, err
	}
	return DefaultContextName, nil
}

// readConfigFile returns where config.json really lives (following a
// symlink, even a dangling one), the mode to write it with, and its content
// (nil if it does not exist).
func readConfigFile(configDir string) (path string, perm fs.FileMode, data []byte, err error) {
	path = filepath.Join(configDir, configFileName)
	if target, err := filepath.EvalSymlinks(path); err == nil {
		path = target
	} else if target, err := os.Readlink(path); err == nil {
		if !filepath.IsAbs(target) {
			target = filepath.Join(configDir, target)
		}
		path = target
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return path, configFilePerm, nil, nil
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if data, err = os.ReadFile(path); err != nil {
		return "", 0, nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	return path, fi.Mode().Perm(), data, nil
}

// ensureConfigDir creates the docker configuration directory if the docker
// CLI never ran; an existing one is left as it is.
func ensureConfigDir(configDir string) error {
	if err := os.MkdirAll(configDir, configDirPerm); err != nil {
		return fmt.Errorf("failed to create the docker configuration directory: %w", err)
	}
	return nil
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func readOptional(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
