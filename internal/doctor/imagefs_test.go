package doctor

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"
	"testing/fstest"
)

// newTestImageFS applies synthetic layers, lowest first.
func newTestImageFS(t testing.TB, layers ...[]byte) *imageFS {
	t.Helper()
	fsys := newImageFS()
	for i, l := range layers {
		if err := fsys.applyLayer(io.NewSectionReader(bytes.NewReader(l), 0, int64(len(l)))); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
	}
	return fsys
}

func TestImageFSWhiteouts(t *testing.T) {
	base := makeTar(t,
		dir("etc/"), file("etc/gone", []byte("x")), file("etc/kept", []byte("kept")),
		dir("opq/"), file("opq/lower", []byte("lower")), dir("opq/sub/"), file("opq/sub/deep", []byte("deep")),
		dir("tree/"), dir("tree/a/"), file("tree/a/b", []byte("b")),
		file("replaced", []byte("old")),
	)
	upper := makeTar(t,
		// Own entries before and after the opaque marker both survive it.
		file("opq/before", []byte("before")),
		file("opq/.wh..wh..opq", nil),
		file("opq/after", []byte("after")),
		file("etc/.wh.gone", nil),
		file("tree/.wh.a", nil),
		file(".wh.replaced", nil), file("replaced", []byte("new")), // a whiteout and a new file in one layer
		file(".wh.never-existed", nil),
	)
	fsys := newTestImageFS(t, base, upper)

	for _, gone := range []string{"etc/gone", "opq/lower", "opq/sub", "opq/sub/deep", "tree/a", "tree/a/b"} {
		if _, err := fs.Stat(fsys, gone); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: got %v, want it whited out", gone, err)
		}
	}
	wantFiles := map[string]string{
		"etc/kept": "kept", "opq/before": "before", "opq/after": "after", "replaced": "new",
	}
	for name, want := range wantFiles {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{".wh.never-existed", "opq/.wh..wh..opq", "etc/.wh.gone"} {
		if _, err := fs.Stat(fsys, name); err == nil {
			t.Errorf("%s: the whiteout marker itself is visible", name)
		}
	}
	if err := fstest.TestFS(fsys, "etc/kept", "opq/before", "opq/after", "replaced", "tree"); err != nil {
		t.Error(err)
	}
}

func TestImageFSLinks(t *testing.T) {
	layer := makeTar(t,
		dir("etc/ssl/certs/"),
		file("etc/ssl/certs/ca-certificates.crt", []byte("bundle")),
		symlink("etc/ssl/cert.pem", "certs/ca-certificates.crt"),              // relative
		symlink("usr/lib/ssl/cert.pem", "/etc/ssl/certs/ca-certificates.crt"), // absolute: the image root
		symlink("usr/lib/ssl/certs", "/etc/ssl/certs"),                        // a directory
		symlink("escape", "../../../../etc/ssl/cert.pem"),                     // ".." stops at the root
		symlink("bin", "usr/bin"),
		exe("usr/bin/app", []byte("program")),
		tarEntry{name: "usr/bin/hardlink", typeflag: tar.TypeLink, linkname: "usr/bin/app"},
		symlink("loop1", "loop2"), symlink("loop2", "loop1"),
		symlink("dangling", "/nowhere"),
		file("/abs/leading/slash", []byte("slash")),
		file("./dot/slash", []byte("dot")),
	)
	fsys := newTestImageFS(t, layer)

	reads := map[string]string{
		"etc/ssl/cert.pem":                      "bundle",
		"usr/lib/ssl/cert.pem":                  "bundle",
		"usr/lib/ssl/certs/ca-certificates.crt": "bundle",
		"escape":                                "bundle",
		"bin/app":                               "program",
		"usr/bin/hardlink":                      "program",
		"abs/leading/slash":                     "slash",
		"dot/slash":                             "dot",
	}
	for name, want := range reads {
		got, err := fs.ReadFile(fsys, name)
		if err != nil || string(got) != want {
			t.Errorf("%s: got %q, %v; want %q", name, got, err, want)
		}
	}
	if _, resolved, err := fsys.resolve("/bin/app", true); err != nil || resolved != "/usr/bin/app" {
		t.Errorf("resolve /bin/app = %q, %v; want /usr/bin/app", resolved, err)
	}
	if target, err := fs.ReadLink(fsys, "usr/lib/ssl/certs"); err != nil || target != "/etc/ssl/certs" {
		t.Errorf("ReadLink = %q, %v", target, err)
	}
	if info, err := fs.Lstat(fsys, "bin"); err != nil || info.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(bin) = %v, %v; want a symlink", info, err)
	}
	if _, err := fs.ReadFile(fsys, "loop1"); !errors.Is(err, errTooManyLinks) {
		t.Errorf("loop: got %v, want %v", err, errTooManyLinks)
	}
	if _, err := fs.ReadFile(fsys, "dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dangling: got %v, want not exist", err)
	}
	if _, err := fsys.Open("../etc"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(../etc): got %v, want invalid", err)
	}
}

// The bundle detection reads a merged image as Go would.
func TestImageFSBundleDetection(t *testing.T) {
	a, b := newTestCA(t, "A"), newTestCA(t, "B")
	base := makeTar(t,
		file("etc/ssl/certs/ca-certificates.crt", bundleOf(a, b)),
		file("etc/ssl/certs/b.pem", bundleOf(b)),
		symlink("etc/ssl/certs/1a2b3c4d.0", "b.pem"),
	)
	tests := []struct {
		name      string
		upper     []byte
		wantRoots int
	}{
		{"bundle and directory", nil, 2},
		{"bundle whited out, directory left", makeTar(t, file("etc/ssl/certs/.wh.ca-certificates.crt", nil)), 1},
		{"directory made opaque", makeTar(t, file("etc/ssl/certs/.wh..wh..opq", nil)), 0},
		{"whole /etc/ssl removed", makeTar(t, file("etc/.wh.ssl", nil)), 0},
		{"bundle replaced by a link into another dir", makeTar(t,
			file("etc/ssl/certs/.wh.ca-certificates.crt", nil),
			file("opt/ca/bundle.pem", bundleOf(a)),
			symlink("etc/ssl/certs/ca-certificates.crt", "/opt/ca/bundle.pem")), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			layers := [][]byte{base}
			if tt.upper != nil {
				layers = append(layers, tt.upper)
			}
			got := loadRoots(newTestImageFS(t, layers...), GoBundleFiles, GoBundleDirs)
			if got.Roots != tt.wantRoots {
				t.Errorf("got %d roots, want %d (%+v)", got.Roots, tt.wantRoots, got.Sources)
			}
		})
	}
}

func FuzzApplyLayer(f *testing.F) {
	f.Add(makeTar(f, dir("etc/"), file("etc/a", []byte("a")), symlink("b", "/etc/a")))
	f.Add(makeTar(f, file("x/.wh..wh..opq", nil), file(".wh.y", nil), symlink("l", "../../l")))
	f.Fuzz(func(t *testing.T, layer []byte) {
		fsys := newImageFS()
		if err := fsys.applyLayer(io.NewSectionReader(bytes.NewReader(layer), 0, int64(len(layer)))); err != nil {
			return
		}
		// Whatever the layer holds, walking and reading the tree terminates.
		_ = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				_, _ = fs.ReadFile(fsys, p)
			}
			return nil
		})
		_ = loadRoots(fsys, GoBundleFiles, GoBundleDirs)
	})
}
