package doctor

import (
	"bufio"
	"bytes"
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"io"
	"strings"
)

// FallbackPackage embeds Mozilla's roots in a Go binary and hands them to
// x509.SetFallbackRoots, which uses them only when the system has none.
const FallbackPackage = "golang.org/x/crypto/x509roots/fallback"

// fallbackMarker is the name of the fallback package's init function as the
// Go linker stores it in pclntab's function name table: NUL-terminated,
// after the previous name's NUL. -ldflags "-s -w" does not strip pclntab
// (the runtime needs it), and an init function is never dead code, so the
// name is there exactly when the package is linked in. Its bundle
// subpackage alone, which this package imports to count the roots, has no
// init function. The marker is built at run time: as a constant it would
// be a string in every binary that links this package.
func fallbackMarker() []byte {
	m := append([]byte{0}, FallbackPackage...)
	m = append(m, ".init.0"...)
	return append(m, 0)
}

// Binary describes an executable as the kernel and Go see it.
type Binary struct {
	Format string `json:"format"` // "elf", "script" or "unknown"
	// Interpreter is the ELF program interpreter (PT_INTERP) of a
	// dynamically linked binary, or the program named by a script's #! line.
	Interpreter string `json:"interpreter,omitempty"`
	Static      bool   `json:"static"` // an ELF binary without PT_INTERP
	GoVersion   string `json:"go_version,omitempty"`
	// FallbackLinked is true for a Go binary that imports FallbackPackage.
	FallbackLinked bool `json:"fallback_linked"`
}

// Describe is a short phrase such as "static Go binary (go1.26.8)".
func (b Binary) Describe() string {
	switch {
	case b.Format == "script":
		return fmt.Sprintf("script run by %s", b.Interpreter)
	case b.Format != "elf":
		return "not an ELF binary"
	}
	kind := "static"
	if !b.Static {
		kind = "dynamic (interpreter " + b.Interpreter + ")"
	}
	if b.GoVersion == "" {
		return kind + " ELF binary"
	}
	return fmt.Sprintf("%s Go binary (%s)", kind, b.GoVersion)
}

// elfMagic starts every ELF file (ELF specification, e_ident[EI_MAG0..3]).
var elfMagic = []byte("\x7fELF")

// InspectBinary reads the first size bytes of r as an executable.
func InspectBinary(r io.ReaderAt, size int64) (Binary, error) {
	head := make([]byte, 4)
	n, _ := r.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.Equal(head, elfMagic):
		return inspectELF(r, size)
	case bytes.HasPrefix(head, []byte("#!")):
		return inspectScript(io.NewSectionReader(r, 0, size))
	default:
		return Binary{Format: "unknown"}, nil
	}
}

func inspectELF(r io.ReaderAt, size int64) (Binary, error) {
	f, err := elf.NewFile(r)
	if err != nil {
		return Binary{}, fmt.Errorf("failed to parse ELF: %w", err)
	}
	b := Binary{Format: "elf", Static: true}
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		interp, err := readInterp(p)
		if err != nil {
			return Binary{}, err
		}
		b.Interpreter, b.Static = interp, false
	}
	if bi, err := buildinfo.Read(r); err == nil {
		b.GoVersion = bi.GoVersion
		b.FallbackLinked, err = containsBytes(io.NewSectionReader(r, 0, size), fallbackMarker())
		if err != nil {
			return Binary{}, fmt.Errorf("failed to read binary: %w", err)
		}
	}
	return b, nil
}

// maxInterpLen bounds PT_INTERP, a path: PATH_MAX is 4096 on Linux.
const maxInterpLen = 4096

func readInterp(p *elf.Prog) (string, error) {
	if p.Filesz > maxInterpLen {
		return "", fmt.Errorf("failed to parse ELF: PT_INTERP is %d bytes, longer than a path", p.Filesz)
	}
	data, err := io.ReadAll(p.Open())
	if err != nil {
		return "", fmt.Errorf("failed to read PT_INTERP: %w", err)
	}
	return string(bytes.TrimRight(data, "\x00")), nil
}

// maxShebangLen is the kernel's limit on a #! line (BINPRM_BUF_SIZE, 256
// since Linux 5.1).
const maxShebangLen = 256

func inspectScript(r io.Reader) (Binary, error) {
	line, err := bufio.NewReaderSize(io.LimitReader(r, maxShebangLen), maxShebangLen).ReadString('\n')
	if err != nil && err != io.EOF {
		return Binary{}, fmt.Errorf("failed to read script: %w", err)
	}
	fields := strings.Fields(strings.TrimPrefix(line, "#!"))
	b := Binary{Format: "script"}
	if len(fields) > 0 {
		b.Interpreter = fields[0]
	}
	return b, nil
}

// scanChunk is how much containsBytes reads at a time: large enough to keep
// syscalls few on a 20 MB binary, small enough not to matter for memory.
const scanChunk = 1 << 20

// containsBytes reports whether r holds needle, reading it in chunks that
// overlap by len(needle)-1 bytes so a match across a boundary is found.
func containsBytes(r io.Reader, needle []byte) (bool, error) {
	overlap := len(needle) - 1
	buf := make([]byte, scanChunk+overlap)
	kept := 0
	for {
		n, err := io.ReadFull(r, buf[kept:])
		window := buf[:kept+n]
		if bytes.Contains(window, needle) {
			return true, nil
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		kept = copy(buf, window[max(len(window)-overlap, 0):])
	}
}
