//go:build linux

package dockertest

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestUnescapeMountinfo(t *testing.T) {
	tests := []struct{ in, want string }{
		{`/tmp/plain`, "/tmp/plain"},
		{`/tmp/with\040space`, "/tmp/with space"},
		{`/tmp/tab\011and\134backslash`, "/tmp/tab\tand\\backslash"},
		{`/tmp/trailing\04`, `/tmp/trailing\04`},
	}
	for _, tt := range tests {
		if got := unescapeMountinfo(tt.in); got != tt.want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestStartStop starts a daemon of its own, runs containers, and checks
// that Stop leaves no process, cgroup or directory behind.
func TestStartStop(t *testing.T) {
	SkipUnlessIntegration(t)
	d, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = d.Stop()
		}
	}()
	if got := len(strings.TrimPrefix(d.Host(), "unix://")); got >= maxSocketPath {
		t.Errorf("socket path is %d bytes, want < %d", got, maxSocketPath)
	}

	if got := d.Docker(t, "run", "--rm", "--network", "none", d.Image(), "echo", "ok"); got != "ok\n" {
		t.Errorf("docker run echo ok printed %q, want %q", got, "ok\n")
	}
	// A running container makes Stop kill it instead of waiting out its
	// stop timeout, and gives the leftover check something to find.
	d.Docker(t, "run", "-d", "--network", "none", d.Image(), "sleep", "1000")

	dir, name, pid := d.Dir(), filepath.Base(d.Dir()), d.PID()
	procs, err := daemonProcesses(dir, name)
	if err != nil {
		t.Fatalf("daemonProcesses: %v", err)
	}
	// The leftover check below means something only if it can see the
	// daemon's processes while they run.
	for _, want := range []string{"containerd --config " + dir, "containerd-shim", "sleep 1000"} {
		if !hasProcess(procs, want) {
			t.Errorf("while running, daemonProcesses lacks %q; found %v", want, procs)
		}
	}
	if cgroups, _ := findCgroups(name); len(cgroups) == 0 {
		t.Errorf("while running, no cgroup named %s found", name)
	}

	stopped = true
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("dockerd pid %d still exists after Stop (kill 0: %v)", pid, err)
	}
	if procs, _ := daemonProcesses(dir, name); len(procs) != 0 {
		t.Errorf("processes left after Stop: %v", procs)
	}
	if cgroups, _ := findCgroups(name); len(cgroups) != 0 {
		t.Errorf("cgroups left after Stop: %v", cgroups)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("daemon directory %s after Stop: %v, want it gone", dir, err)
	}
	if err := d.Stop(); err != nil {
		t.Errorf("second Stop: %v, want nil", err)
	}
}

// TestStopAfterCrash kills dockerd with a container running, as a crash
// would, and checks that Stop finds and kills what it left behind.
func TestStopAfterCrash(t *testing.T) {
	SkipUnlessIntegration(t)
	d, err := Start(t.Context(), Options{})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer d.Stop()
	d.Docker(t, "run", "-d", "--network", "none", d.Image(), "sleep", "1000")
	dir, name := d.Dir(), filepath.Base(d.Dir())

	if err := syscall.Kill(d.PID(), syscall.SIGKILL); err != nil {
		t.Fatalf("kill dockerd: %v", err)
	}
	<-d.Exited()
	err = d.Stop()
	if err == nil || !strings.Contains(err.Error(), "left behind") || !strings.Contains(err.Error(), "sleep 1000") {
		t.Errorf("Stop after a crash = %v, want it to report the leftover container process", err)
	}
	if procs, _ := daemonProcesses(dir, name); len(procs) != 0 {
		t.Errorf("processes left after Stop: %v", procs)
	}
	if cgroups, _ := findCgroups(name); len(cgroups) != 0 {
		t.Errorf("cgroups left after Stop: %v", cgroups)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("daemon directory %s after Stop: %v, want it gone", dir, err)
	}
}

// TestRestart kills dockerd and starts it again on the same socket, with
// the same images.
func TestRestart(t *testing.T) {
	d := StartForTest(t, Options{})
	before := d.PID()
	if err := d.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if _, _, err := RunDocker(t.Context(), d.Env(), "version"); err == nil {
		t.Fatal("docker version succeeded with dockerd killed")
	}
	if err := d.Restart(t.Context()); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if d.PID() == before {
		t.Errorf("dockerd has the same PID %d after Restart", before)
	}
	if out := d.Docker(t, "image", "inspect", "--format", "{{.Id}}", d.Image()); strings.TrimSpace(out) == "" {
		t.Errorf("the test image is gone after Restart")
	}
}

func hasProcess(procs []process, substr string) bool {
	for _, p := range procs {
		if strings.Contains(p.cmdline, substr) {
			return true
		}
	}
	return false
}

// TestImage checks the shared daemon's test image has the tools tests use.
func TestImage(t *testing.T) {
	d := ForTest(t)
	script := `set -e
for tool in sh cat echo sleep ls head sha256sum dd wc grep; do command -v "$tool" >/dev/null; done
id -un
echo data | cat`
	got := d.Docker(t, "run", "--rm", "--network", "none", d.Image(), "sh", "-c", script)
	if want := "root\ndata\n"; got != want {
		t.Errorf("image script printed %q, want %q", got, want)
	}
}

// TestReuse checks that a reused daemon works and survives Stop.
func TestReuse(t *testing.T) {
	d := ForTest(t)
	r, err := Reuse(t.Context(), d.Host())
	if err != nil {
		t.Fatalf("Reuse(%s): %v", d.Host(), err)
	}
	if got := r.Docker(t, "run", "--rm", "--network", "none", r.Image(), "echo", "reused"); got != "reused\n" {
		t.Errorf("docker run via the reused daemon printed %q, want %q", got, "reused\n")
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop of a reused daemon: %v", err)
	}
	if got := d.Docker(t, "version", "--format", "{{.Server.Os}}"); got != "linux\n" {
		t.Errorf("after stopping the reused handle, the daemon answered %q, want linux", got)
	}
}
