package dockertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Environment variables that control integration tests.
const (
	// EnvIntegration=1 runs integration tests; a daemon that cannot be
	// started fails them.
	EnvIntegration = "DOCKGATE_INTEGRATION"
	// EnvDockerHost names a running test daemon (unix://...) to reuse.
	EnvDockerHost = "DOCKGATE_TEST_DOCKER_HOST"
	// envCI is set by CI systems; there integration tests always run.
	envCI = "CI"
)

// skipReason is what a skipped integration test says.
const skipReason = "integration test: set " + EnvIntegration + "=1 to run it against a private dockerd (./scripts/test does)"

// integrationRequired reports whether integration tests must run: when
// DOCKGATE_INTEGRATION is true, or in CI. Otherwise they are skipped.
func integrationRequired(getenv func(string) string) bool {
	return isTrue(getenv(EnvIntegration)) || isTrue(getenv(envCI))
}

// isTrue accepts the ways people and CI systems say yes ("1", "true",
// "yes"; CI=true, CI=1). Empty, "0" and "false" are no.
func isTrue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

// state shared by the tests of one test binary.
var (
	mainCalled atomic.Bool

	shared struct {
		once   sync.Once
		daemon *Daemon
		err    error
	}

	dockgate struct {
		once sync.Once
		dir  string
		bin  string
		err  error
	}
)

// Main runs the tests, then stops the shared daemon and removes the built
// dockgate binary. Call it from TestMain:
//
//	func TestMain(m *testing.M) { dockertest.Main(m) }
//
// A failure to clean up fails the run: leftover daemons must be noticed.
func Main(m *testing.M) {
	mainCalled.Store(true)
	code := m.Run()
	if code != 0 && shared.daemon != nil && shared.daemon.Dir() != "" {
		fmt.Fprintf(os.Stderr, "dockertest: the test dockerd's log ends:\n%s\n", tail(shared.daemon.Logs(), 30))
	}
	if err := cleanup(); err != nil {
		fmt.Fprintf(os.Stderr, "dockertest: cleanup failed: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

func cleanup() error {
	var errs []error
	if shared.daemon != nil {
		errs = append(errs, shared.daemon.Stop())
	}
	if dockgate.dir != "" {
		errs = append(errs, os.RemoveAll(dockgate.dir))
	}
	return errors.Join(errs...)
}

// requireMain fails t when TestMain does not call Main: without it the
// shared daemon would outlive the test binary.
func requireMain(t testing.TB) {
	t.Helper()
	if !mainCalled.Load() {
		t.Fatal("dockertest: this package's TestMain must call dockertest.Main(m)")
	}
}

// SkipUnlessIntegration skips t unless integration tests are on
// (DOCKGATE_INTEGRATION=1, or CI). Tests that need setup before they start a
// daemon call it first; [ForTest] and [StartForTest] call it themselves.
func SkipUnlessIntegration(t testing.TB) {
	t.Helper()
	if !integrationRequired(os.Getenv) {
		t.Skip(skipReason)
	}
}

// ForTest returns the daemon shared by every test in this test binary,
// starting it on first use (or reusing $DOCKGATE_TEST_DOCKER_HOST). It
// skips t when integration tests are off and fails t when they are on but
// no daemon can be had. The daemon is stopped by [Main].
func ForTest(t testing.TB) *Daemon {
	t.Helper()
	SkipUnlessIntegration(t)
	requireMain(t)
	shared.once.Do(func() {
		// Not t.Context: the daemon outlives this test.
		ctx := context.Background()
		if host := os.Getenv(EnvDockerHost); host != "" {
			shared.daemon, shared.err = Reuse(ctx, host)
			return
		}
		shared.daemon, shared.err = Start(ctx, Options{})
	})
	if shared.err != nil {
		t.Fatalf("dockertest: no test daemon: %v", shared.err)
	}
	return shared.daemon
}

// StartForTest starts a private daemon for t alone, with opts, and stops it
// when t ends; a daemon that leaves anything behind fails t. It skips and
// fails as [ForTest] does.
func StartForTest(t testing.TB, opts Options) *Daemon {
	t.Helper()
	SkipUnlessIntegration(t)
	d, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("dockertest: failed to start a private dockerd: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("dockertest: the private dockerd's log ends:\n%s", tail(d.Logs(), 30))
		}
		if err := d.Stop(); err != nil {
			t.Errorf("dockertest: stopping the private dockerd: %v", err)
		}
	})
	return d
}

// Docker runs the docker CLI against d and returns its stdout; a failure
// fails t with the CLI's stderr. It works in t.Cleanup too (no t.Context);
// a hung command is caught by go test's -timeout.
func (d *Daemon) Docker(t testing.TB, args ...string) string {
	t.Helper()
	stdout, stderr, err := RunDocker(context.Background(), d.Env(), args...)
	if err != nil {
		t.Fatalf("docker %s: %v\nstderr: %s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// BuildDockgate builds ./cmd/dockgate once per test binary (CGO off, as
// released) and returns the binary's path. [Main] removes it.
func BuildDockgate(t testing.TB) string {
	t.Helper()
	requireMain(t)
	dockgate.once.Do(func() {
		dockgate.dir, dockgate.bin, dockgate.err = buildDockgate(context.Background())
	})
	if dockgate.err != nil {
		t.Fatalf("dockertest: %v", dockgate.err)
	}
	return dockgate.bin
}

func buildDockgate(ctx context.Context) (dir, bin string, err error) {
	root, err := moduleRoot(ctx)
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "dockgate-bin-")
	if err != nil {
		return "", "", fmt.Errorf("failed to create the build directory: %w", err)
	}
	bin = filepath.Join(dir, "dockgate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/dockgate")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return dir, "", fmt.Errorf("failed to build dockgate: %w\n%s", err, out)
	}
	return dir, bin, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("failed to run 'go env GOMOD': %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("failed to find the module root: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// FreeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago: the kernel picks it, and the listener is closed before returning.
func FreeLoopbackPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dockertest: failed to find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
