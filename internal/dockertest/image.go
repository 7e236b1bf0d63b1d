package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"
)

// ImageName is the busybox test image every daemon from this package has.
// It is imported from the host's busybox, never pulled.
const ImageName = "dockgate-test/busybox:latest"

const (
	imageRepo = "dockgate-test/busybox"
	imageTag  = "latest"
)

// busyboxCandidates is where Debian's busybox-static installs the binary.
var busyboxCandidates = []string{"/bin/busybox", "/usr/bin/busybox"}

// findStaticBusybox returns the path of a statically linked busybox: a
// dynamically linked one (Debian's plain busybox package) would not run in
// an image that has no libc.
func findStaticBusybox() (string, error) {
	candidates := busyboxCandidates
	if p, err := exec.LookPath("busybox"); err == nil {
		candidates = append([]string{p}, candidates...)
	}
	var lastErr error
	for _, p := range candidates {
		static, err := isStaticELF(p)
		if err != nil {
			lastErr = err
			continue
		}
		if static {
			return p, nil
		}
		lastErr = fmt.Errorf("%s is dynamically linked", p)
	}
	if lastErr == nil {
		lastErr = errors.New("busybox not found")
	}
	return "", fmt.Errorf("failed to find a static busybox (install Debian's busybox-static): %w", lastErr)
}

// isStaticELF reports whether the ELF file at p has no program interpreter,
// that is, needs no dynamic loader.
func isStaticELF(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// busyboxApplets asks busybox which applets it has and where they belong,
// e.g. "bin/sh", "usr/bin/sha256sum".
func busyboxApplets(ctx context.Context, busybox string) ([]string, error) {
	out, err := exec.CommandContext(ctx, busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("failed to list busybox applets: %w", err)
	}
	var applets []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "bin/busybox" && !strings.Contains(line, "..") {
			applets = append(applets, strings.TrimPrefix(line, "/"))
		}
	}
	return applets, nil
}

// Minimal account files, so that tools resolving user and group names work.
const (
	etcPasswd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	etcGroup  = "root:x:0:\nnogroup:x:65534:\n"
)

// busyboxRootfs builds the image's root filesystem as a tar stream:
// /bin/busybox, a symlink per applet, and the directories a container
// expects.
func busyboxRootfs(busybox []byte, applets []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the archive identical from run to run.
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	addDir := func(name string, mode int64) error {
		if dirs[name] {
			return nil
		}
		dirs[name] = true
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mtime})
	}
	addFile := func(name string, mode int64, data []byte) error {
		h := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []struct {
		name string
		mode int64
	}{
		{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
		{"etc", 0o755}, {"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"var", 0o755},
		{"run", 0o755}, {"root", 0o700}, {"tmp", 0o1777},
	} {
		if err := addDir(d.name, d.mode); err != nil {
			return nil, err
		}
	}
	if err := addFile("bin/busybox", 0o755, busybox); err != nil {
		return nil, err
	}
	if err := addFile("etc/passwd", 0o644, []byte(etcPasswd)); err != nil {
		return nil, err
	}
	if err := addFile("etc/group", 0o644, []byte(etcGroup)); err != nil {
		return nil, err
	}
	for _, applet := range applets {
		if err := addDir(path.Dir(applet), 0o755); err != nil {
			return nil, err
		}
		h := &tar.Header{Typeflag: tar.TypeSymlink, Name: applet, Linkname: "/bin/busybox", Mode: 0o777, ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ensureImage imports the busybox test image unless the daemon has it.
// Concurrent callers may both import; the tag then names one of two
// equivalent images, which is harmless.
func ensureImage(ctx context.Context, api *apiClient) error {
	ok, err := api.imageExists(ctx, ImageName)
	if err != nil {
		return fmt.Errorf("failed to look up the test image: %w", err)
	}
	if ok {
		return nil
	}
	return importBusybox(ctx, api)
}

func importBusybox(ctx context.Context, api *apiClient) error {
	busybox, err := findStaticBusybox()
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("failed to read busybox: %w", err)
	}
	applets, err := busyboxApplets(ctx, busybox)
	if err != nil {
		return err
	}
	rootfs, err := busyboxRootfs(bin, applets)
	if err != nil {
		return fmt.Errorf("failed to build the test image: %w", err)
	}
	changes := []string{`CMD ["/bin/sh"]`, `ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin`}
	if err := api.importImage(ctx, bytes.NewReader(rootfs), imageRepo, imageTag, changes); err != nil {
		return fmt.Errorf("failed to import the test image: %w", err)
	}
	return nil
}
