package doctor

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// OCI layer whiteouts (image-spec, layer.md): ".wh.NAME" removes NAME from
// the layers below; ".wh..wh..opq" in a directory hides everything the
// layers below put in it.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// maxSymlinks is how many links one lookup follows before giving up, as
// Linux does (MAXSYMLINKS, 40).
const maxSymlinks = 40

// imageFS is an image's merged filesystem: its layers applied in order.
// File contents are sections of the exported archive, never copies. It is
// an io/fs.FS whose symbolic links resolve inside the image: an absolute
// target starts at the image's root and ".." stops there.
type imageFS struct {
	root *node
}

// node is one file, directory, link or device in the merged tree.
type node struct {
	name     string
	mode     fs.FileMode
	modTime  time.Time
	target   string            // symbolic link target
	data     *io.SectionReader // regular file contents
	children map[string]*node  // directory entries
}

func newImageFS() *imageFS {
	return &imageFS{root: newDir(".", fs.ModeDir|0o755, time.Time{})}
}

func newDir(name string, mode fs.FileMode, mtime time.Time) *node {
	return &node{name: name, mode: mode, modTime: mtime, children: map[string]*node{}}
}

// layerEntry is a file a layer adds, kept until its whiteouts are applied.
type layerEntry struct {
	name string
	hdr  *tar.Header
	data *io.SectionReader
}

// applyLayer applies one uncompressed layer archive. Whiteouts only hide
// what lower layers hold (image-spec, layer.md), so they are applied before
// any of this layer's own entries are added, whatever their order in the
// archive.
func (t *imageFS) applyLayer(layer *io.SectionReader) error {
	var entries []layerEntry
	var whiteouts, opaques []string
	err := walkTar(layer, func(hdr *tar.Header, data *io.SectionReader) error {
		name, ok := cleanArchiveName(hdr.Name)
		if !ok {
			return nil
		}
		dir, base := path.Split(name)
		switch {
		case base == whiteoutOpaque:
			opaques = append(opaques, dir)
		case strings.HasPrefix(base, whiteoutPrefix):
			whiteouts = append(whiteouts, dir+strings.TrimPrefix(base, whiteoutPrefix))
		default:
			entries = append(entries, layerEntry{name: name, hdr: hdr, data: data})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, name := range whiteouts {
		if parent, base := t.parentOf(name); parent != nil {
			delete(parent.children, base)
		}
	}
	for _, dir := range opaques {
		if n := t.lookupLiteral(dir); n != nil && n.mode.IsDir() {
			clear(n.children)
		}
	}
	for _, e := range entries {
		t.add(e)
	}
	return nil
}

// cleanArchiveName turns a layer entry name into a path relative to the
// image root; ".." stops at the root, as a safe extractor has it. The root
// itself is reported as not ok: it carries nothing to apply.
func cleanArchiveName(name string) (string, bool) {
	name = path.Clean("/" + name)
	if name == "/" {
		return "", false
	}
	return strings.TrimPrefix(name, "/"), true
}

func (t *imageFS) add(e layerEntry) {
	dir, base := path.Split(e.name)
	parent := t.mkdirAll(strings.TrimSuffix(dir, "/"))
	hdr := e.hdr
	mode := hdr.FileInfo().Mode()
	if old := parent.children[base]; old != nil && old.mode.IsDir() && mode.IsDir() {
		old.mode, old.modTime = mode, hdr.ModTime // a directory entry keeps what lower layers put in it
		return
	}
	n := &node{name: base, mode: mode, modTime: hdr.ModTime}
	switch {
	case hdr.Typeflag == tar.TypeLink:
		target, _ := cleanArchiveName(hdr.Linkname)
		src := t.lookupLiteral(target)
		if src == nil || !src.mode.IsRegular() {
			return // a hard link to nothing this layer or those below hold
		}
		n.mode, n.data = src.mode, src.data
	case mode.IsDir():
		n.children = map[string]*node{}
	case mode&fs.ModeSymlink != 0:
		n.target = hdr.Linkname
	case mode.IsRegular():
		n.data = e.data
	}
	parent.children[base] = n
}

// mkdirAll returns the directory at dir, creating missing ones and
// replacing anything that is not a directory, as extracting the layer would.
func (t *imageFS) mkdirAll(dir string) *node {
	cur := t.root
	for _, part := range splitPath(dir) {
		next := cur.children[part]
		if next == nil || !next.mode.IsDir() {
			next = newDir(part, fs.ModeDir|0o755, time.Time{})
			cur.children[part] = next
		}
		cur = next
	}
	return cur
}

// lookupLiteral finds name without following any symbolic link: layer
// archives name real paths.
func (t *imageFS) lookupLiteral(name string) *node {
	cur := t.root
	for _, part := range splitPath(name) {
		if cur.children == nil {
			return nil
		}
		if cur = cur.children[part]; cur == nil {
			return nil
		}
	}
	return cur
}

func (t *imageFS) parentOf(name string) (*node, string) {
	dir, base := path.Split(name)
	parent := t.lookupLiteral(dir)
	if parent == nil || parent.children == nil {
		return nil, ""
	}
	return parent, base
}

func splitPath(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
}

var errTooManyLinks = errors.New("too many levels of symbolic links")

// resolve finds name, following symbolic links inside the image; the last
// element is followed only when followLast. It returns the node and its
// path with every link resolved.
func (t *imageFS) resolve(name string, followLast bool) (*node, string, error) {
	parts := splitPath(name)
	dirs := []*node{t.root}
	var names []string
	links := 0
	for len(parts) > 0 {
		part := parts[0]
		parts = parts[1:]
		cur := dirs[len(dirs)-1]
		switch part {
		case ".":
			continue
		case "..":
			if len(dirs) > 1 {
				dirs, names = dirs[:len(dirs)-1], names[:len(names)-1]
			}
			continue
		}
		if !cur.mode.IsDir() {
			return nil, "", fs.ErrNotExist
		}
		child := cur.children[part]
		if child == nil {
			return nil, "", fs.ErrNotExist
		}
		if child.mode&fs.ModeSymlink != 0 && (len(parts) > 0 || followLast) {
			if links++; links > maxSymlinks {
				return nil, "", errTooManyLinks
			}
			if strings.HasPrefix(child.target, "/") {
				dirs, names = dirs[:1], names[:0]
			}
			parts = append(splitPath(child.target), parts...)
			continue
		}
		dirs, names = append(dirs, child), append(names, part)
	}
	return dirs[len(dirs)-1], "/" + path.Join(names...), nil
}

// lookup is resolve for the io/fs methods: it checks the name and returns
// *fs.PathError.
func (t *imageFS) lookup(op, name string, followLast bool) (*node, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	n, _, err := t.resolve(name, followLast)
	if err != nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: err}
	}
	return n, nil
}

// Open implements fs.FS.
func (t *imageFS) Open(name string) (fs.File, error) {
	n, err := t.lookup("open", name, true)
	if err != nil {
		return nil, err
	}
	if n.mode.IsDir() {
		return &openDir{node: n, entries: n.dirEntries()}, nil
	}
	data := n.data
	if data == nil {
		data = io.NewSectionReader(strings.NewReader(""), 0, 0) // devices and fifos read as empty
	}
	return &openFile{node: n, SectionReader: io.NewSectionReader(data, 0, data.Size())}, nil
}

// Stat implements fs.StatFS.
func (t *imageFS) Stat(name string) (fs.FileInfo, error) {
	n, err := t.lookup("stat", name, true)
	if err != nil {
		return nil, err
	}
	return fileInfo{n}, nil
}

// Lstat implements fs.ReadLinkFS.
func (t *imageFS) Lstat(name string) (fs.FileInfo, error) {
	n, err := t.lookup("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return fileInfo{n}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (t *imageFS) ReadLink(name string) (string, error) {
	n, err := t.lookup("readlink", name, false)
	if err != nil {
		return "", err
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.target, nil
}

// ReadDir implements fs.ReadDirFS.
func (t *imageFS) ReadDir(name string) ([]fs.DirEntry, error) {
	n, err := t.lookup("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return n.dirEntries(), nil
}

// openSection resolves an absolute path in the image to a regular file's
// contents and the path it resolved to.
func (t *imageFS) openSection(name string) (*io.SectionReader, string, error) {
	n, resolved, err := t.resolve(name, true)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if !n.mode.IsRegular() {
		return nil, resolved, fmt.Errorf("%s is not a regular file (%s)", resolved, n.mode.Type())
	}
	return io.NewSectionReader(n.data, 0, n.data.Size()), resolved, nil
}

func (n *node) size() int64 {
	if n.data == nil {
		return int64(len(n.target))
	}
	return n.data.Size()
}

func (n *node) dirEntries() []fs.DirEntry {
	entries := make([]fs.DirEntry, 0, len(n.children))
	for _, c := range n.children {
		entries = append(entries, fs.FileInfoToDirEntry(fileInfo{c}))
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries
}

// fileInfo implements fs.FileInfo for a node.
type fileInfo struct{ n *node }

func (fi fileInfo) Name() string       { return fi.n.name }
func (fi fileInfo) Size() int64        { return fi.n.size() }
func (fi fileInfo) Mode() fs.FileMode  { return fi.n.mode }
func (fi fileInfo) ModTime() time.Time { return fi.n.modTime }
func (fi fileInfo) IsDir() bool        { return fi.n.mode.IsDir() }
func (fi fileInfo) Sys() any           { return nil }

// openFile is an open regular file (or device, read as empty).
type openFile struct {
	node *node
	*io.SectionReader
}

func (f *openFile) Stat() (fs.FileInfo, error) { return fileInfo{f.node}, nil }
func (f *openFile) Close() error               { return nil }

// openDir is an open directory; ReadDir pages through a snapshot.
type openDir struct {
	node    *node
	entries []fs.DirEntry
	offset  int
}

func (d *openDir) Stat() (fs.FileInfo, error) { return fileInfo{d.node}, nil }
func (d *openDir) Close() error               { return nil }

func (d *openDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.node.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *openDir) ReadDir(count int) ([]fs.DirEntry, error) {
	rest := d.entries[d.offset:]
	if count <= 0 {
		d.offset = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(count, len(rest))]
	d.offset += len(rest)
	return rest, nil
}

// walkTar calls fn for every entry of the tar archive r, with the entry's
// data as a section of r. archive/tar's Next reads exactly the header
// blocks, so r's offset afterwards is where the data starts.
func walkTar(r *io.SectionReader, fn func(*tar.Header, *io.SectionReader) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read tar archive: %w", err)
		}
		offset, err := r.Seek(0, io.SeekCurrent)
		if err != nil {
			return fmt.Errorf("failed to read tar archive: %w", err)
		}
		if hdr.Size < 0 || offset+hdr.Size > r.Size() {
			return fmt.Errorf("failed to read tar archive: %s: entry runs past the end", hdr.Name)
		}
		if err := fn(hdr, io.NewSectionReader(r, offset, hdr.Size)); err != nil {
			return err
		}
	}
}
