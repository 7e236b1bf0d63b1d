package doctor

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ImageSaver is the part of the Docker API client InspectImage uses.
type ImageSaver interface {
	ImageSave(ctx context.Context, images []string, opts ...client.ImageSaveOption) (client.ImageSaveResult, error)
}

// ImageReport is what InspectImage found in an image.
type ImageReport struct {
	Image   string   `json:"image"`
	Command []string `json:"command,omitempty"` // Entrypoint then Cmd
	// Executable is the command's program resolved in the image: PATH
	// searched, symbolic links followed.
	Executable  string  `json:"executable,omitempty"`
	Binary      *Binary `json:"binary,omitempty"`
	BinaryError string  `json:"binary_error,omitempty"`
	// InterpreterMissing is set when the program's ELF interpreter or #!
	// program is not in the image: the container cannot start.
	InterpreterMissing bool   `json:"interpreter_missing,omitempty"`
	SSLCertFile        string `json:"ssl_cert_file,omitempty"`
	SSLCertDir         string `json:"ssl_cert_dir,omitempty"`
	// GoRoots is what a Go program loads, given the image's environment.
	GoRoots RootSet `json:"go_roots"`
	// OpenSSLRoots is what OpenSSL finds in its usual places.
	OpenSSLRoots RootSet `json:"openssl_roots"`

	OK      bool     `json:"ok"` // outbound TLS to public CAs can verify
	Verdict string   `json:"verdict"`
	Fixes   []string `json:"fixes,omitempty"`
}

// dockerDefaultPath is the PATH Docker gives a container whose image sets
// none (moby's oci.DefaultPathEnv for Linux).
const dockerDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// openSSLDirs are OPENSSLDIR on Debian and Ubuntu, Alpine, Fedora and RHEL,
// and OpenSSL's own default. OpenSSL reads OPENSSLDIR/cert.pem and the
// hashed files in OPENSSLDIR/certs unless SSL_CERT_FILE or SSL_CERT_DIR
// point elsewhere.
var openSSLDirs = []string{"/usr/lib/ssl", "/etc/ssl", "/etc/pki/tls", "/usr/local/ssl"}

// InspectImage exports ref through the Docker API and reports whether its
// command can make outbound TLS connections.
func InspectImage(ctx context.Context, api ImageSaver, ref string) (ImageReport, error) {
	rc, err := api.ImageSave(ctx, []string{ref})
	if err != nil {
		return ImageReport{}, fmt.Errorf("failed to export image %s: %w", ref, err)
	}
	defer rc.Close()
	tmp, err := os.CreateTemp("", "dockgate-image-*.tar")
	if err != nil {
		return ImageReport{}, fmt.Errorf("failed to export image %s: %w", ref, err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	size, err := io.Copy(tmp, rc)
	if err != nil {
		return ImageReport{}, fmt.Errorf("failed to export image %s: %w", ref, err)
	}
	return inspectSavedImage(io.NewSectionReader(tmp, 0, size), ref)
}

// savedManifest is an entry of manifest.json in a `docker save` archive
// (moby's image/tarexport); the API packages have no type for it.
type savedManifest struct {
	Config string
	Layers []string
}

// inspectSavedImage reads a `docker save` archive of one image.
func inspectSavedImage(archive *io.SectionReader, ref string) (ImageReport, error) {
	files, err := indexArchive(archive)
	if err != nil {
		return ImageReport{}, err
	}
	var manifests []savedManifest
	if err := files.decodeJSON("manifest.json", &manifests); err != nil {
		return ImageReport{}, err
	}
	if len(manifests) != 1 {
		return ImageReport{}, fmt.Errorf("failed to read the image archive: manifest.json lists %d images, want 1", len(manifests))
	}
	var img ocispec.Image
	if err := files.decodeJSON(manifests[0].Config, &img); err != nil {
		return ImageReport{}, err
	}
	fsys, closeLayers, err := mergeLayers(files, manifests[0].Layers)
	defer closeLayers()
	if err != nil {
		return ImageReport{}, err
	}
	return analyzeImage(ref, fsys, img.Config), nil
}

// archiveIndex holds the entries of a `docker save` archive. The legacy
// format stores a layer shared by two images once and links to it.
type archiveIndex struct {
	files map[string]*io.SectionReader
	links map[string]string
}

func indexArchive(archive *io.SectionReader) (archiveIndex, error) {
	idx := archiveIndex{files: map[string]*io.SectionReader{}, links: map[string]string{}}
	err := walkTar(archive, func(hdr *tar.Header, data *io.SectionReader) error {
		name, ok := cleanArchiveName(hdr.Name)
		switch {
		case !ok:
		case hdr.Typeflag == tar.TypeSymlink:
			idx.links[name] = path.Join(path.Dir(name), hdr.Linkname)
		case hdr.FileInfo().Mode().IsRegular():
			idx.files[name] = data
		}
		return nil
	})
	if err != nil {
		return archiveIndex{}, fmt.Errorf("failed to read the image archive: %w", err)
	}
	return idx, nil
}

func (idx archiveIndex) open(name string) (*io.SectionReader, error) {
	name, _ = cleanArchiveName(name)
	for range maxSymlinks {
		if f, ok := idx.files[name]; ok {
			return f, nil
		}
		target, ok := idx.links[name]
		if !ok {
			break
		}
		name, _ = cleanArchiveName(target)
	}
	return nil, fmt.Errorf("failed to read the image archive: it has no file %s", name)
}

// maxArchiveJSON caps manifest.json and the image config, which are a few
// kilobytes; 4 MiB allows for images with very long histories.
const maxArchiveJSON = 4 << 20

func (idx archiveIndex) decodeJSON(name string, v any) error {
	f, err := idx.open(name)
	if err != nil {
		return err
	}
	if f.Size() > maxArchiveJSON {
		return fmt.Errorf("failed to read the image archive: %s is %d bytes, too large", name, f.Size())
	}
	if err := json.NewDecoder(f).Decode(v); err != nil {
		return fmt.Errorf("failed to read the image archive: %s: %w", name, err)
	}
	return nil
}

// mergeLayers applies the layers in order. The returned function closes the
// temporary files behind decompressed layers; call it when done with fsys.
func mergeLayers(idx archiveIndex, layers []string) (fsys *imageFS, closeAll func(), err error) {
	var temps []*os.File
	closeAll = func() {
		for _, f := range temps {
			f.Close()
			os.Remove(f.Name())
		}
	}
	fsys = newImageFS()
	for _, name := range layers {
		layer, err := idx.open(name)
		if err != nil {
			return nil, closeAll, err
		}
		layer, temp, err := uncompressed(layer)
		if temp != nil {
			temps = append(temps, temp)
		}
		if err != nil {
			return nil, closeAll, fmt.Errorf("failed to read layer %s: %w", name, err)
		}
		if err := fsys.applyLayer(layer); err != nil {
			return nil, closeAll, fmt.Errorf("failed to read layer %s: %w", name, err)
		}
	}
	return fsys, closeAll, nil
}

// Magic numbers of compressed layers (RFC 1952, 2.3.1; RFC 8878, 3.1.1).
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// uncompressed returns the layer as a seekable tar. `docker save` writes
// plain tars; an OCI layout from the containerd image store may hold gzip
// blobs, which are inflated into a temporary file the caller removes.
func uncompressed(layer *io.SectionReader) (*io.SectionReader, *os.File, error) {
	head := make([]byte, len(zstdMagic))
	n, _ := layer.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, zstdMagic):
		return nil, nil, errors.New("zstd-compressed layers are not supported")
	case !bytes.HasPrefix(head, gzipMagic):
		return layer, nil, nil
	}
	zr, err := gzip.NewReader(io.NewSectionReader(layer, 0, layer.Size()))
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.CreateTemp("", "dockgate-layer-*.tar")
	if err != nil {
		return nil, nil, err
	}
	size, err := io.Copy(tmp, zr)
	if err != nil {
		return nil, tmp, err
	}
	return io.NewSectionReader(tmp, 0, size), tmp, nil
}

// analyzeImage judges whether the image's command can verify servers.
func analyzeImage(ref string, fsys *imageFS, cfg ocispec.ImageConfig) ImageReport {
	getenv := envLookup(cfg.Env)
	r := ImageReport{
		Image:       ref,
		Command:     append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...),
		SSLCertFile: getenv(EnvCertFile),
		SSLCertDir:  getenv(EnvCertDir),
	}
	workDir := path.Join("/", cfg.WorkingDir)
	files, dirs := goRootSearch(getenv)
	r.GoRoots = loadRoots(fsys, inDir(workDir, files), inDir(workDir, dirs))
	r.OpenSSLRoots = openSSLRoots(fsys, workDir, getenv)
	if len(r.Command) > 0 {
		r.inspectExecutable(fsys, workDir, getenv("PATH"))
	}
	r.judge()
	return r
}

// envLookup reads a container environment ("KEY=VALUE"); Docker applies
// the entries in order, so the last one wins.
func envLookup(env []string) func(string) string {
	return func(key string) string {
		value := ""
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == key {
				value = v
			}
		}
		return value
	}
}

// inWorkDir makes a path absolute the way the container's process opens
// it: relative to its working directory. "" stays "" (it names nothing).
func inWorkDir(workDir, p string) string {
	switch {
	case p == "":
		return ""
	case path.IsAbs(p):
		return path.Clean(p)
	}
	return path.Join(workDir, p)
}

func inDir(workDir string, paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = inWorkDir(workDir, p)
	}
	return out
}

func openSSLRoots(fsys *imageFS, workDir string, getenv func(string) string) RootSet {
	var files, dirs []string
	for _, d := range openSSLDirs {
		files, dirs = append(files, d+"/cert.pem"), append(dirs, d+"/certs")
	}
	if f := getenv(EnvCertFile); f != "" {
		files = []string{inWorkDir(workDir, f)}
	}
	if d := getenv(EnvCertDir); d != "" {
		dirs = inDir(workDir, strings.Split(d, ":"))
	}
	seen := map[[sha256.Size]byte]bool{}
	var set RootSet
	for _, f := range files {
		src := loadRootFile(fsys, f, seen)
		src.Read = src.Present // each OpenSSL build reads its own OPENSSLDIR
		set.Sources = append(set.Sources, src)
	}
	for _, d := range dirs {
		set.Sources = append(set.Sources, loadRootDir(fsys, d, seen))
	}
	set.Roots = len(seen)
	return set
}

func (r *ImageReport) inspectExecutable(fsys *imageFS, workDir, pathEnv string) {
	if pathEnv == "" {
		pathEnv = dockerDefaultPath
	}
	exe, err := fsys.lookPath(r.Command[0], pathEnv, workDir)
	if err != nil {
		r.BinaryError = err.Error()
		return
	}
	data, resolved, err := fsys.openSection(exe)
	if err != nil {
		r.BinaryError = err.Error()
		return
	}
	r.Executable = resolved
	bin, err := InspectBinary(data, data.Size())
	if err != nil {
		r.BinaryError = fmt.Sprintf("%s: %v", resolved, err)
		return
	}
	r.Binary = &bin
	if bin.Interpreter != "" {
		interp, _, err := fsys.resolve(inWorkDir(workDir, bin.Interpreter), true)
		r.InterpreterMissing = err != nil || !interp.mode.IsRegular()
	}
}

// lookPath finds a command the way the container runtime does: a name with
// a slash is a path (relative to the working directory), anything else is
// searched for in PATH as an executable regular file.
func (t *imageFS) lookPath(file, pathEnv, workDir string) (string, error) {
	if strings.Contains(file, "/") {
		p := inWorkDir(workDir, file)
		if _, _, err := t.resolve(p, true); err != nil {
			return "", fmt.Errorf("%s does not exist in the image", p)
		}
		return p, nil
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		p := inWorkDir(workDir, path.Join(dir, file))
		if n, _, err := t.resolve(p, true); err == nil && n.mode.IsRegular() && n.mode&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not in the image's PATH (%s)", file, pathEnv)
}

// judge sets the verdict: one sentence, and the fixes when it fails.
func (r *ImageReport) judge() {
	bin := r.Binary
	switch {
	case r.BinaryError != "":
		r.fail(fmt.Sprintf("the container cannot start: %s", r.BinaryError))
	case r.InterpreterMissing && bin.Format == "script":
		r.fail(fmt.Sprintf("the container cannot start: %s is a script for %s, which the image does not have", r.Executable, bin.Interpreter))
	case r.InterpreterMissing:
		r.fail(fmt.Sprintf("the container cannot start (\"no such file or directory\"): %s is dynamically linked against %s, which the image does not have",
			r.Executable, bin.Interpreter),
			"build it static (for Go: CGO_ENABLED=0 go build), or use a base image that has the C library")
	case r.GoRoots.Roots > 0 && (bin == nil || bin.GoVersion != ""):
		r.pass(fmt.Sprintf("outbound TLS can verify: Go finds %d roots in %s", r.GoRoots.Roots, strings.Join(r.GoRoots.ReadFrom(), ", ")))
	case bin != nil && bin.GoVersion != "" && bin.FallbackLinked:
		r.pass(fmt.Sprintf("outbound TLS to public CAs can verify: there is no CA bundle where Go looks, but %s embeds the roots of %s (a private CA still needs a bundle or SSL_CERT_FILE)",
			r.Executable, FallbackPackage))
	case bin != nil && bin.GoVersion != "":
		r.fail(fmt.Sprintf("outbound TLS will fail with \"x509: certificate signed by unknown authority\": %s, and %s embeds no fallback roots",
			r.missingBundle("where Go looks"), r.Executable), NoCABundleFixes...)
	case r.GoRoots.Roots > 0 || r.OpenSSLRoots.Roots > 0:
		r.pass(fmt.Sprintf("outbound TLS can verify: the image has a CA bundle (%s)",
			strings.Join(append(r.GoRoots.ReadFrom(), r.OpenSSLRoots.ReadFrom()...), ", ")))
	default:
		r.fail("outbound TLS will fail: "+r.missingBundle("where Go or OpenSSL look"), NoCABundleFixes...)
	}
}

// missingBundle says which bundle is missing, naming SSL_CERT_FILE when it
// points at nothing: the mistake then is the path, not the image.
func (r *ImageReport) missingBundle(where string) string {
	if r.SSLCertFile != "" {
		return fmt.Sprintf("SSL_CERT_FILE=%s holds no certificates in the image, and there is no other CA bundle %s", r.SSLCertFile, where)
	}
	return "the image has no CA bundle " + where
}

func (r *ImageReport) pass(verdict string) { r.OK, r.Verdict = true, verdict }

func (r *ImageReport) fail(verdict string, fixes ...string) {
	r.OK, r.Verdict, r.Fixes = false, verdict, fixes
}
