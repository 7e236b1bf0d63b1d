package doctor

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// TrustOptions says where InspectTrust looks. The zero value inspects the
// running process on this machine.
type TrustOptions struct {
	Getenv func(string) string // nil: os.Getenv
	// FS is the filesystem the bundle paths are read from; nil: the
	// machine's root directory.
	FS fs.FS
	// Executable is the binary checked for linked fallback roots;
	// "": this process's own executable.
	Executable string
}

// TrustReport says which roots a Go binary verifies servers against.
type TrustReport struct {
	SSLCertFile string   `json:"ssl_cert_file,omitempty"`
	SSLCertDir  string   `json:"ssl_cert_dir,omitempty"`
	System      RootSet  `json:"system"`
	Fallback    Fallback `json:"fallback"`
	// Using is "system", "fallback" or "none".
	Using string `json:"using"`
	Roots int    `json:"roots"` // how many roots verification uses
}

// Fallback describes the roots embedded by FallbackPackage.
type Fallback struct {
	Linked bool `json:"linked"`
	Roots  int  `json:"roots"`
	InUse  bool `json:"in_use"`
	// Forced is GODEBUG=x509usefallbackroots=1, which prefers the
	// embedded roots even when the system has some (crypto/x509.SetFallbackRoots).
	Forced bool   `json:"forced,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Summary is one sentence about the roots in use.
func (r TrustReport) Summary() string {
	switch r.Using {
	case "system":
		return fmt.Sprintf("Go verifies servers against %d roots from %s", r.Roots, strings.Join(r.System.ReadFrom(), ", "))
	case "fallback":
		return fmt.Sprintf("no CA bundle in this environment; Go uses the %d roots embedded by %s", r.Roots, FallbackPackage)
	default:
		return "no CA bundle in this environment and no embedded fallback roots: every outbound TLS connection will fail with \"x509: certificate signed by unknown authority\""
	}
}

// InspectTrust finds the roots crypto/x509 would load for this process and
// whether the embedded fallback roots take over.
func InspectTrust(opts TrustOptions) TrustReport {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = os.DirFS("/")
	}
	files, dirs := goRootSearch(getenv)
	r := TrustReport{
		SSLCertFile: getenv(EnvCertFile),
		SSLCertDir:  getenv(EnvCertDir),
		System:      loadRoots(fsys, absPaths(files), absPaths(dirs)),
		Fallback:    inspectFallback(opts.Executable, getenv("GODEBUG")),
	}
	r.Fallback.InUse = r.Fallback.Linked && (r.System.Roots == 0 || r.Fallback.Forced)
	switch {
	case r.Fallback.InUse:
		r.Using, r.Roots = "fallback", r.Fallback.Roots
	case r.System.Roots > 0:
		r.Using, r.Roots = "system", r.System.Roots
	default:
		r.Using = "none"
	}
	return r
}

func inspectFallback(executable, godebug string) Fallback {
	fb := Fallback{Roots: fallbackRoots(), Forced: godebugValue(godebug, "x509usefallbackroots") == "1"}
	if executable == "" {
		var err error
		if executable, err = os.Executable(); err != nil {
			fb.Error = fmt.Sprintf("failed to find this executable: %v", err)
			return fb
		}
	}
	linked, err := fileContains(executable, fallbackMarker())
	if err != nil {
		fb.Error = err.Error()
	}
	fb.Linked = linked
	return fb
}

// fallbackRoots counts the roots in the bundle this binary was built with;
// it is the same module version as the fallback package when that is linked.
func fallbackRoots() int {
	n := 0
	for range bundle.Roots() {
		n++
	}
	return n
}

func fileContains(name string, needle []byte) (bool, error) {
	f, err := os.Open(name)
	if err != nil {
		return false, fmt.Errorf("failed to read %s: %w", name, err)
	}
	defer f.Close()
	found, err := containsBytes(f, needle)
	if err != nil {
		return false, fmt.Errorf("failed to read %s: %w", name, err)
	}
	return found, nil
}

// godebugValue returns key's setting in a GODEBUG list ("a=1,b=0"); the
// last one wins, as in the runtime.
func godebugValue(godebug, key string) string {
	value := ""
	for _, kv := range strings.Split(godebug, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == key {
			value = v
		}
	}
	return value
}

// absPaths makes relative SSL_CERT_* entries absolute the way the process
// would open them: against its working directory.
func absPaths(paths []string) []string {
	out := make([]string, 0, len(paths))
	for _, p := range paths {
		if abs, err := filepath.Abs(p); err == nil && p != "" {
			p = abs
		}
		out = append(out, p)
	}
	return out
}
