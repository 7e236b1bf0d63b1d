package doctor

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// GoBundleFiles are the CA bundle files Go's crypto/x509 tries on Linux, in
// this order; it reads the first one that exists and stops
// (crypto/x509/root_linux.go, Go 1.26). SSL_CERT_FILE replaces the list.
var GoBundleFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // OpenSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine
}

// GoBundleDirs are the directories Go reads every certificate file from
// (crypto/x509/root_linux.go, Go 1.26). SSL_CERT_DIR, a colon-separated
// list, replaces them.
var GoBundleDirs = []string{
	"/etc/ssl/certs",     // SLES
	"/etc/pki/tls/certs", // Fedora, RHEL
}

// The environment variables Go and OpenSSL both honour.
const (
	EnvCertFile = "SSL_CERT_FILE"
	EnvCertDir  = "SSL_CERT_DIR"
)

// maxBundleSize caps what is read from one certificate file. Distribution
// bundles are about 200 KB; 16 MiB leaves room for any real bundle while an
// image cannot make the check read gigabytes.
const maxBundleSize = 16 << 20

// RootSource is one file or directory where roots were looked for.
type RootSource struct {
	Path    string `json:"path"`
	Dir     bool   `json:"dir,omitempty"`
	Present bool   `json:"present"`
	Read    bool   `json:"read"`  // Go reads it: the first present file, every directory
	Certs   int    `json:"certs"` // distinct certificates it holds, read or not
	Error   string `json:"error,omitempty"`
}

// RootSet is what loading roots the way Go does found.
type RootSet struct {
	Sources []RootSource `json:"sources"`
	Roots   int          `json:"roots"` // distinct certificates Go would trust
}

// ReadFrom lists the sources Go reads that hold certificates.
func (s RootSet) ReadFrom() []string {
	var paths []string
	for _, src := range s.Sources {
		if src.Read && src.Certs > 0 {
			paths = append(paths, src.Path)
		}
	}
	return paths
}

// goRootSearch returns the files and directories Go reads, given its
// environment: SSL_CERT_FILE and SSL_CERT_DIR replace the built-in lists.
func goRootSearch(getenv func(string) string) (files, dirs []string) {
	files, dirs = GoBundleFiles, GoBundleDirs
	if f := getenv(EnvCertFile); f != "" {
		files = []string{f}
	}
	if d := getenv(EnvCertDir); d != "" {
		dirs = strings.Split(d, ":")
	}
	return files, dirs
}

// loadRoots reads roots from fsys (absolute paths are taken relative to its
// root) exactly as crypto/x509's loadSystemRoots does: the first file that
// can be read, then every file in every directory except symbolic links to
// a name in the same directory (c_rehash's hash links, duplicates).
func loadRoots(fsys fs.FS, files, dirs []string) RootSet {
	seen := make(map[[sha256.Size]byte]bool)
	var set RootSet
	fileRead := false
	for _, file := range files {
		into := seen
		if fileRead {
			into = make(map[[sha256.Size]byte]bool) // Go stops at the first file; count only
		}
		src := loadRootFile(fsys, file, into)
		src.Read = src.Present && !fileRead
		fileRead = fileRead || src.Present
		set.Sources = append(set.Sources, src)
	}
	for _, dir := range dirs {
		set.Sources = append(set.Sources, loadRootDir(fsys, dir, seen))
	}
	set.Roots = len(seen)
	return set
}

func loadRootFile(fsys fs.FS, file string, into map[[sha256.Size]byte]bool) RootSource {
	src := RootSource{Path: file}
	if file == "" {
		return src // an empty SSL_CERT_FILE entry names nothing
	}
	data, err := readCapped(fsys, fsPath(file))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			src.Error = err.Error()
		}
		return src
	}
	src.Present = true
	src.Certs = addCerts(data, into)
	return src
}

func loadRootDir(fsys fs.FS, dir string, seen map[[sha256.Size]byte]bool) RootSource {
	src := RootSource{Path: dir, Dir: true}
	if dir == "" {
		return src // "a::b" in SSL_CERT_DIR: Go fails to open "" and moves on
	}
	entries, err := fs.ReadDir(fsys, fsPath(dir))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			src.Error = err.Error()
		}
		return src
	}
	src.Present, src.Read = true, true
	inDir := make(map[[sha256.Size]byte]bool)
	for _, e := range entries {
		name := path.Join(fsPath(dir), e.Name())
		if isSameDirSymlink(fsys, name, e) {
			continue
		}
		data, err := readCapped(fsys, name)
		if err != nil {
			continue // Go skips unreadable entries, subdirectories included
		}
		addCerts(data, inDir)
	}
	for sum := range inDir {
		seen[sum] = true
	}
	src.Certs = len(inDir)
	return src
}

// isSameDirSymlink mirrors crypto/x509: a link whose target has no slash
// points into the same directory and would only add duplicates.
func isSameDirSymlink(fsys fs.FS, name string, e fs.DirEntry) bool {
	if e.Type()&fs.ModeSymlink == 0 {
		return false
	}
	target, err := fs.ReadLink(fsys, name)
	return err == nil && !strings.Contains(target, "/")
}

// addCerts adds the certificates in PEM data to seen, with the same rules
// as x509.CertPool.AppendCertsFromPEM (CERTIFICATE blocks without headers
// that parse), and returns how many distinct ones data holds.
func addCerts(data []byte, seen map[[sha256.Size]byte]bool) int {
	mine := make(map[[sha256.Size]byte]bool)
	for len(data) > 0 {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) != 0 {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			continue
		}
		sum := sha256.Sum256(block.Bytes)
		mine[sum] = true
		seen[sum] = true
	}
	return len(mine)
}

// readCapped reads a file of at most maxBundleSize bytes.
func readCapped(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%s is a directory", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxBundleSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, too large for a CA bundle", name, maxBundleSize)
	}
	return data, nil
}

// fsPath turns an absolute path into an io/fs name relative to the root.
func fsPath(p string) string {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	if p == "" {
		return "."
	}
	return p
}
