package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/dockgate/dockgate/internal/config"
)

// A classic build's body is its context: a tar, possibly compressed,
// which dockerd extracts whole before it reads the Dockerfile from it. To
// judge the Dockerfile, Evaluate reads the body up to the Dockerfile's
// entry (holding what it read, at most limits.max_build_prefix bytes) and hands the
// gateway a stream that is exactly the client's body: the bytes held,
// then the rest. The stream goes on reading the tar as it passes, because
// extraction lets a later entry replace the Dockerfile or a directory on
// its path; such an entry ends the stream with an error, so dockerd gets
// a truncated context and builds nothing.

// maxContextPeek is the default bound on the bytes of a build context
// held before its Dockerfile (limits.max_build_prefix).
const maxContextPeek = config.DefaultBuildPrefix

// maxDockerfile bounds the Dockerfile itself; BuildKit's own limit for a
// Dockerfile read from a context is far smaller in practice.
const maxDockerfile = 1 << 20

// ErrBuildContext is wrapped by every error readBuildContext returns, and
// by the error with which a Verdict's Stream ends when the rest of a
// build context would replace the Dockerfile that was judged.
var ErrBuildContext = errors.New("build context refused")

// buildContext is what readBuildContext found in a build's body.
type buildContext struct {
	// Dockerfile is the content of the Dockerfile dockerd will read.
	Dockerfile []byte
	// Name is its path in the context.
	Name string
	// Stream is the whole body to forward: the bytes read, then the rest,
	// checked as they pass.
	Stream io.Reader
	// Read is how many bytes of the body were read (and are held).
	Read int
}

// readBuildContext reads a build context tar from body up to its
// Dockerfile, as dockerd's classic builder finds it: the path the
// "dockerfile" query parameter names in the context (default
// "Dockerfile", then "dockerfile"). Plain and gzip-compressed tars are
// read; dockerd also accepts bzip2, xz and zstd, which are refused.
//
// The returned context is never nil: when err is set its Stream is the
// body unchecked (the bytes read, then the rest), for a role in audit mode
// that forwards what it would deny.
func readBuildContext(body io.Reader, dockerfile string, limit int) (*buildContext, error) {
	s := &contextScan{body: body, limit: limit}
	s.held.limit = limit
	ctx, err := s.read(dockerfile)
	s.held.limit = 0 // what is read from now on is forwarded as it comes
	if err != nil {
		return &buildContext{Stream: io.MultiReader(&s.held, body), Read: s.held.Len()}, err
	}
	ctx.Read = s.held.Len()
	ctx.Stream = s
	return ctx, nil
}

func (s *contextScan) read(dockerfile string) (*buildContext, error) {
	body := s.body
	s.watch = dockerfileCandidates(dockerfile)
	in := io.TeeReader(body, &s.held)
	head := make([]byte, 6)
	n, err := io.ReadFull(in, head)
	head = head[:n]
	switch {
	case n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: the body is empty, so there is no Dockerfile to read", ErrBuildContext)
	case err != nil && err != io.ErrUnexpectedEOF:
		return nil, fmt.Errorf("failed to read the build context: %w", err)
	}
	rest := io.MultiReader(bytes.NewReader(head), in)
	switch compression(head) {
	case "":
		s.tar = tar.NewReader(rest)
	case "gzip":
		zr, err := gzip.NewReader(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: gzip: %w", ErrBuildContext, err)
		}
		s.tar = tar.NewReader(zr)
	default:
		return nil, fmt.Errorf("%w: the context is %s-compressed; send it as a plain or gzip-compressed tar", ErrBuildContext, compression(head))
	}
	return s.find()
}

// compression names the compression of a stream by its magic bytes, as
// dockerd's archive.DetectCompression does; "" is none.
func compression(head []byte) string {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b, 0x08}):
		return "gzip"
	case bytes.HasPrefix(head, []byte("BZh")):
		return "bzip2"
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return "xz"
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}),
		len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], []byte{0x2a, 0x4d, 0x18}):
		return "zstd"
	}
	return ""
}

// dockerfileCandidates are the context paths dockerd may read the
// Dockerfile from, cleaned as it resolves them inside the context.
func dockerfileCandidates(name string) []string {
	if name == "" {
		return []string{"Dockerfile", "dockerfile"}
	}
	return []string{contextPath(name)}
}

// contextPath cleans a path inside the context: dockerd resolves it
// under the context's root, so "/a/../Dockerfile" is "Dockerfile".
func contextPath(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

// contextScan reads a context tar while holding the raw bytes it read
// until they are forwarded.
type contextScan struct {
	body  io.Reader
	tar   *tar.Reader
	held  heldBuffer // raw bytes read from body, not yet forwarded
	limit int
	watch []string // paths whose entries decide the Dockerfile
	found string   // the path the Dockerfile was read from
	seen  map[string]bool
	links map[string]string // symbolic links so far: path -> target, in the context
	done  bool              // the tar has ended; the rest passes through
	err   error             // a later entry replaced the Dockerfile
	chunk []byte
}

// find reads entries up to the Dockerfile and returns it.
func (s *contextScan) find() (*buildContext, error) {
	s.seen = map[string]bool{}
	s.links = map[string]string{}
	var df []byte
	for {
		hdr, err := s.tar.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, errHeldLimit) || s.held.Len() > s.limit {
			return nil, fmt.Errorf("%w: no %s in the first %d bytes of the build context (limits.max_build_prefix); put it earlier in the tar or raise the limit", ErrBuildContext, s.watch[0], s.limit)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: the tar cannot be read: %w", ErrBuildContext, err)
		}
		if err := s.check(hdr); err != nil {
			return nil, err
		}
		if s.resolve(contextPath(hdr.Name)) == s.watch[0] {
			if df, err = s.readDockerfile(hdr); err != nil {
				return nil, err
			}
			s.found = s.watch[0]
			s.watch = s.watch[:1] // dockerd reads this one; a fallback no longer matters
			return &buildContext{Dockerfile: df, Name: s.found}, nil
		}
	}
	if len(s.watch) > 1 && s.seen[s.watch[1]] {
		// dockerd falls back to "dockerfile" when the context has no
		// "Dockerfile"; the whole tar was read to know there is none.
		return nil, fmt.Errorf("%w: the Dockerfile is named dockerfile; name it Dockerfile", ErrBuildContext)
	}
	return nil, fmt.Errorf("%w: the build context has no %s", ErrBuildContext, s.watch[0])
}

// check refuses an entry that would make the Dockerfile dockerd reads
// another file than the one read here: a second entry for a watched path,
// a link or non-regular file there, anything but a directory on the way to
// it, or an entry that reaches it through a symbolic link the context
// made (extraction writes through those).
func (s *contextScan) check(hdr *tar.Header) error {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return fmt.Errorf("%w: %s is a sparse file; the docker CLI sends none", ErrBuildContext, hdr.Name)
		}
	}
	if hdr.Typeflag == tar.TypeGNUSparse {
		return fmt.Errorf("%w: %s is a sparse file; the docker CLI sends none", ErrBuildContext, hdr.Name)
	}
	name := s.resolve(contextPath(hdr.Name))
	if name == "" && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("%w: the context's root is not a directory", ErrBuildContext)
	}
	if hdr.Typeflag == tar.TypeSymlink && len(s.links) < maxContextLinks {
		target := hdr.Linkname
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(name), target)
		}
		s.links[name] = contextPath(target)
	} else if hdr.Typeflag == tar.TypeSymlink {
		return fmt.Errorf("%w: more than %d symbolic links in the context", ErrBuildContext, maxContextLinks)
	}
	for _, w := range s.watch {
		switch {
		case name == w:
			if s.seen[w] {
				return fmt.Errorf("%w: the context writes %s twice; the last one extracted wins", ErrBuildContext, w)
			}
			if hdr.Typeflag != tar.TypeReg {
				return fmt.Errorf("%w: %s is not a regular file in the context", ErrBuildContext, w)
			}
			s.seen[w] = true
		case strings.HasPrefix(w, name+"/") && hdr.Typeflag != tar.TypeDir:
			return fmt.Errorf("%w: %s in the context is not a directory, on the way to %s", ErrBuildContext, name, w)
		}
	}
	return nil
}

// errHeldLimit: the bytes held before the Dockerfile passed the limit.
var errHeldLimit = errors.New("held too many bytes")

// heldBuffer holds the raw bytes read from the body. While limit is set,
// a write beyond it is kept (so that the body can still be forwarded
// whole) but fails, which stops the tar reader: one large entry before
// the Dockerfile costs at most one read beyond the limit.
type heldBuffer struct {
	bytes.Buffer
	limit int
}

func (h *heldBuffer) Write(p []byte) (int, error) {
	n, _ := h.Buffer.Write(p)
	if h.limit > 0 && h.Len() > h.limit {
		return n, errHeldLimit
	}
	return n, nil
}

// maxContextLinks bounds the symbolic links a scan remembers; a context
// with more is refused rather than judged on a partial map.
const maxContextLinks = 1 << 16

// resolve follows the symbolic links the context has made so far in the
// directories of name, as extraction will when it writes name.
func (s *contextScan) resolve(name string) string {
	for hops := 0; hops < 64; hops++ {
		changed := false
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			if t, ok := s.links[strings.Join(parts[:i], "/")]; ok {
				name = contextPath(t + "/" + strings.Join(parts[i:], "/"))
				changed = true
				break
			}
		}
		if !changed {
			return name
		}
	}
	return name
}

func (s *contextScan) readDockerfile(hdr *tar.Header) ([]byte, error) {
	if hdr.Size > maxDockerfile {
		return nil, fmt.Errorf("%w: the Dockerfile is %d bytes, more than %d", ErrBuildContext, hdr.Size, maxDockerfile)
	}
	df, err := io.ReadAll(s.tar)
	if err != nil {
		return nil, fmt.Errorf("%w: the tar cannot be read: %w", ErrBuildContext, err)
	}
	return df, nil
}

// Read forwards the body: the bytes held, then the rest as the tar reader
// consumes it, entry by entry, checking each header. The last byte read
// is held back until the tar has been read to its end: a decompressor
// reads ahead, so bytes may be held before their entries are checked, and
// the daemon must not have the whole body before they are.
func (s *contextScan) Read(p []byte) (int, error) {
	for {
		switch {
		case s.err != nil:
			return 0, s.err
		case s.done && s.held.Len() > 0:
			return s.held.Read(p)
		case s.done:
			return s.body.Read(p)
		case s.held.Len() > 1:
			if n := s.held.Len() - 1; len(p) > n {
				p = p[:n]
			}
			return s.held.Read(p)
		}
		s.step()
	}
}

// step advances the tar reader once: a chunk of the current entry, or the
// next header. What it consumes from the body lands in held.
func (s *contextScan) step() {
	if s.chunk == nil {
		s.chunk = make([]byte, 32<<10)
	}
	if n, err := s.tar.Read(s.chunk); n > 0 || err == nil {
		return
	}
	hdr, err := s.tar.Next()
	switch {
	case err == io.EOF:
		s.done = true
	case err != nil:
		s.err = fmt.Errorf("%w: the tar cannot be read: %w", ErrBuildContext, err)
	default:
		s.err = s.check(hdr)
	}
}
