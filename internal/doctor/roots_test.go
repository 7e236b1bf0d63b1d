package doctor

import (
	"crypto/x509"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

func TestLoadRoots(t *testing.T) {
	a, b, c := newTestCA(t, "A"), newTestCA(t, "B"), newTestCA(t, "C")
	files := []string{"/first.pem", "/second.pem", "/third.pem"}
	dirs := []string{"/certs", "/other"}
	tests := []struct {
		name        string
		fsys        fstest.MapFS
		wantRoots   int
		wantSources map[string]RootSource // by path; unlisted ones are absent
	}{
		{
			name:      "nothing anywhere",
			fsys:      fstest.MapFS{},
			wantRoots: 0,
		},
		{
			name: "the first present file is read, later ones are not",
			fsys: fstest.MapFS{
				"second.pem": {Data: bundleOf(a, b)},
				"third.pem":  {Data: bundleOf(c)},
			},
			wantRoots: 2,
			wantSources: map[string]RootSource{
				"/second.pem": {Present: true, Read: true, Certs: 2},
				"/third.pem":  {Present: true, Read: false, Certs: 1},
			},
		},
		{
			name: "an empty first file still stops the search",
			fsys: fstest.MapFS{
				"first.pem":  {Data: []byte("no certificates here")},
				"second.pem": {Data: bundleOf(a)},
			},
			wantRoots: 0,
			wantSources: map[string]RootSource{
				"/first.pem":  {Present: true, Read: true},
				"/second.pem": {Present: true, Certs: 1},
			},
		},
		{
			name: "directories add up, duplicates count once, same-dir links are skipped",
			fsys: fstest.MapFS{
				"first.pem":         {Data: bundleOf(a)},
				"certs/a.pem":       {Data: bundleOf(a)},
				"certs/b.pem":       {Data: bundleOf(b)},
				"certs/5ad8a5d6.0":  {Data: []byte("b.pem"), Mode: fs.ModeSymlink},
				"certs/sub/c.pem":   {Data: bundleOf(c)}, // Go reads no subdirectories
				"other/linked.pem":  {Data: []byte("../elsewhere/c.pem"), Mode: fs.ModeSymlink},
				"elsewhere/c.pem":   {Data: bundleOf(c)},
				"other/garbage.txt": {Data: []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")},
			},
			wantRoots: 3,
			wantSources: map[string]RootSource{
				"/first.pem": {Present: true, Read: true, Certs: 1},
				"/certs":     {Dir: true, Present: true, Read: true, Certs: 2},
				"/other":     {Dir: true, Present: true, Read: true, Certs: 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadRoots(tt.fsys, files, dirs)
			if got.Roots != tt.wantRoots {
				t.Errorf("got %d roots, want %d", got.Roots, tt.wantRoots)
			}
			if len(got.Sources) != len(files)+len(dirs) {
				t.Fatalf("got %d sources, want %d", len(got.Sources), len(files)+len(dirs))
			}
			for _, src := range got.Sources {
				want := tt.wantSources[src.Path]
				want.Path = src.Path
				want.Dir = src.Dir
				if src != want {
					t.Errorf("source %s: got %+v, want %+v", src.Path, src, want)
				}
			}
		})
	}
}

func TestGoRootSearch(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantFiles []string
		wantDirs  []string
	}{
		{"defaults", nil, GoBundleFiles, GoBundleDirs},
		{"SSL_CERT_FILE replaces the files", map[string]string{EnvCertFile: "/x.pem"}, []string{"/x.pem"}, GoBundleDirs},
		{"SSL_CERT_DIR is colon-separated", map[string]string{EnvCertDir: "/a:/b"}, GoBundleFiles, []string{"/a", "/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, dirs := goRootSearch(func(k string) string { return tt.env[k] })
			if !equal(files, tt.wantFiles) || !equal(dirs, tt.wantDirs) {
				t.Errorf("got %q %q, want %q %q", files, dirs, tt.wantFiles, tt.wantDirs)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInspectTrust(t *testing.T) {
	tmp := t.TempDir()
	a, b := newTestCA(t, "A"), newTestCA(t, "B")
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bundle := write("bundle.pem", bundleOf(a))
	certDir := filepath.Dir(write("dir/b.pem", bundleOf(b)))
	emptyDir := filepath.Join(tmp, "empty")
	if err := os.Mkdir(emptyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(tmp, "missing.pem")
	// Built at run time: as a literal, the marker would be in this test
	// binary too (see TestFallbackMarkerNotSelfReferential).
	linked := write("linked-binary", append(append([]byte("ELF\x00main.main"), fallbackMarker()...), "main.f\x00"...))
	notLinked := write("plain-binary", []byte("ELF\x00golang.org/x/crypto/x509roots/fallback/bundle.Roots\x00golang.org/x/crypto/x509roots/fallback.init.0 in a doc string"))

	tests := []struct {
		name       string
		env        map[string]string
		executable string
		wantUsing  string
		wantRoots  int
		wantInUse  bool
	}{
		{"system roots from SSL_CERT_FILE and SSL_CERT_DIR",
			map[string]string{EnvCertFile: bundle, EnvCertDir: certDir}, linked, "system", 2, false},
		{"system roots win over linked fallback",
			map[string]string{EnvCertFile: bundle, EnvCertDir: emptyDir}, linked, "system", 1, false},
		{"no system roots: the fallback takes over",
			map[string]string{EnvCertFile: missing, EnvCertDir: emptyDir}, linked, "fallback", fallbackRoots(), true},
		{"GODEBUG forces the fallback",
			map[string]string{EnvCertFile: bundle, EnvCertDir: emptyDir, "GODEBUG": "x509usefallbackroots=1"}, linked, "fallback", fallbackRoots(), true},
		{"no system roots and no fallback: nothing",
			map[string]string{EnvCertFile: missing, EnvCertDir: emptyDir}, notLinked, "none", 0, false},
		{"GODEBUG without the fallback changes nothing",
			map[string]string{EnvCertFile: bundle, EnvCertDir: emptyDir, "GODEBUG": "x509usefallbackroots=1"}, notLinked, "system", 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := InspectTrust(TrustOptions{Getenv: func(k string) string { return tt.env[k] }, Executable: tt.executable})
			if got.Using != tt.wantUsing || got.Roots != tt.wantRoots || got.Fallback.InUse != tt.wantInUse {
				t.Errorf("got using %q, %d roots, fallback in use %v; want %q, %d, %v",
					got.Using, got.Roots, got.Fallback.InUse, tt.wantUsing, tt.wantRoots, tt.wantInUse)
			}
			if got.SSLCertFile != tt.env[EnvCertFile] || got.SSLCertDir != tt.env[EnvCertDir] {
				t.Errorf("got SSL_CERT_FILE %q SSL_CERT_DIR %q, want the environment's", got.SSLCertFile, got.SSLCertDir)
			}
			if got.Summary() == "" {
				t.Error("empty summary")
			}
		})
	}
}

// The bundle compiled in is the one x509roots/fallback hands to crypto/x509:
// a real one holds over a hundred public roots.
func TestFallbackRootsCount(t *testing.T) {
	if n := fallbackRoots(); n < 100 {
		t.Errorf("fallback bundle holds %d roots, want the public set (>100)", n)
	}
}

func TestGodebugValue(t *testing.T) {
	tests := []struct{ godebug, want string }{
		{"", ""},
		{"x509usefallbackroots=1", "1"},
		{"http2client=0, x509usefallbackroots=1", "1"},
		{"x509usefallbackroots=1,x509usefallbackroots=0", "0"},
		{"x509usefallbackroots", ""},
	}
	for _, tt := range tests {
		if got := godebugValue(tt.godebug, "x509usefallbackroots"); got != tt.want {
			t.Errorf("godebugValue(%q) = %q, want %q", tt.godebug, got, tt.want)
		}
	}
}

// This test binary links the doctor package (and the fallback bundle, to
// count it) but not the fallback package: the marker must not be found in
// the package's own code.
func TestFallbackMarkerNotSelfReferential(t *testing.T) {
	if fb := InspectTrust(TrustOptions{}).Fallback; fb.Linked || fb.Error != "" {
		t.Errorf("got %+v for a test binary without the fallback package, want not linked", fb)
	}
}

// BenchmarkFallbackRootsInit is the start-up work that importing
// x509roots/fallback adds to every dockgate run: its init parses the
// embedded bundle into a pool, as here (docs/BENCHMARKS.md).
func BenchmarkFallbackRootsInit(b *testing.B) {
	for b.Loop() {
		pool := x509.NewCertPool()
		for root := range bundle.Roots() {
			cert, err := x509.ParseCertificate(root.Certificate)
			if err != nil {
				b.Fatal(err)
			}
			if root.Constraint == nil {
				pool.AddCert(cert)
			} else {
				pool.AddCertWithConstraint(cert, root.Constraint)
			}
		}
	}
}
