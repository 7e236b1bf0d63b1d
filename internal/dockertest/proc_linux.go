//go:build linux

package dockertest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func platformSupported() error { return nil }

// sysProcAttr puts dockerd in its own process group, so a Ctrl-C at the
// terminal reaches the test process (which stops dockerd in order) rather
// than dockerd directly, and sends dockerd SIGTERM should the test process
// die without stopping it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// process is a running process found in /proc.
type process struct {
	pid     int
	cmdline string
}

// daemonProcesses lists live processes that belong to the daemon in dir:
// containerd and the shims name dir on their command line; container
// processes run in a cgroup named cgroupName (dockerd's --cgroup-parent).
func daemonProcesses(dir, cgroupName string) ([]process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var procs []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || isZombie(pid) {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue // exited meanwhile
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(raw), "\x00", " "))
		if strings.Contains(cmdline, dir+"/") || inCgroup(pid, cgroupName) {
			procs = append(procs, process{pid: pid, cmdline: cmdline})
		}
	}
	return procs, nil
}

// isZombie reports whether pid has exited and waits for its parent to reap
// it: it holds no resources and cannot be killed.
func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may contain
	// spaces and parentheses itself.
	i := strings.LastIndexByte(string(stat), ')')
	return i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

func inCgroup(pid int, name string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (strings.Contains(parts[2]+"/", "/"+name+"/")) {
			return true
		}
	}
	return false
}

// killStrays kills, by PID, processes the daemon in dir left behind, and
// reports them: after a clean dockerd shutdown there are none.
func killStrays(dir, cgroupName string) error {
	procs, err := daemonProcesses(dir, cgroupName)
	if err != nil {
		return fmt.Errorf("failed to look for leftover processes: %w", err)
	}
	if len(procs) == 0 {
		return nil
	}
	var names []string
	for _, p := range procs {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
		names = append(names, fmt.Sprintf("%d (%s)", p.pid, p.cmdline))
	}
	waitGone(procs, 5*time.Second)
	return fmt.Errorf("killed %d processes dockerd left behind: %s", len(procs), strings.Join(names, "; "))
}

func waitGone(procs []process, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for _, p := range procs {
		for time.Now().Before(deadline) && syscall.Kill(p.pid, 0) == nil && !isZombie(p.pid) {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// cgroupRoot is where cgroup hierarchies are mounted.
const cgroupRoot = "/sys/fs/cgroup"

// maxCgroupDepth bounds the search for the daemon's cgroups. The deepest
// seen in practice is cgroup v1 memory under a container runtime's own
// nesting: memory/process_api/ID/NAME.
const maxCgroupDepth = 6

// removeCgroups removes the (by now empty) cgroups named name, and the
// per-container cgroups in them, from every hierarchy: dockerd leaves its
// --cgroup-parent behind.
func removeCgroups(name string) error {
	found, err := findCgroups(name)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range found {
		errs = append(errs, removeCgroupTree(p))
	}
	return errors.Join(errs...)
}

// findCgroups lists the cgroup directories named name in every hierarchy.
func findCgroups(name string) ([]string, error) {
	var found []string
	err := filepath.WalkDir(cgroupRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil // unreadable hierarchies are not ours
		}
		if depth(p) > maxCgroupDepth {
			return fs.SkipDir
		}
		if e.Name() == name {
			found = append(found, p)
			return fs.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to look for the daemon's cgroups: %w", err)
	}
	return found, nil
}

func depth(p string) int {
	rel, err := filepath.Rel(cgroupRoot, p)
	if err != nil || rel == "." {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// removeCgroupTree rmdirs a cgroup and its child cgroups, deepest first. A
// cgroup directory is removed with rmdir although it lists control files.
func removeCgroupTree(p string) error {
	entries, err := os.ReadDir(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeCgroupTree(filepath.Join(p, e.Name())); err != nil {
				return err
			}
		}
	}
	if err := syscall.Rmdir(p); err != nil && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("failed to remove cgroup %s: %w", p, err)
	}
	return nil
}

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var mounts []string
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mounts = append(mounts, mp)
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) that
// the kernel uses in /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir.
func unmountUnder(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("failed to read the mount table: %w", err)
	}
	for _, mp := range mounts {
		if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
			return fmt.Errorf("failed to unmount %s: %w", mp, err)
		}
	}
	return nil
}
