package dockertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// DefaultStartTimeout bounds the wait for a new dockerd's /_ping. dockerd
	// 20.10 answers within a few seconds; the slack is for a loaded 2-core CI
	// machine running tests with -race.
	DefaultStartTimeout = 90 * time.Second

	// stopGrace is how long dockerd gets to exit after SIGTERM. Its own
	// --shutdown-timeout defaults to 15 s; Stop kills the containers first,
	// so a healthy daemon exits in about a second.
	stopGrace = 30 * time.Second

	// maxSocketPath is sizeof(sockaddr_un.sun_path) on Linux, 108 bytes
	// including the terminating NUL.
	maxSocketPath = 108

	// dirPrefix names the daemon directories under /tmp, short enough for
	// containerd's socket paths under the exec root.
	dirPrefix = "dgtd-"
)

// Options configure a daemon started with [Start].
type Options struct {
	// ExtraArgs are appended to dockerd's command line, for example the
	// `-H tcp://127.0.0.1:PORT --tlsverify --tlscacert=...` flags printed by
	// `dockgate dockerd-config --format flags`. Every -H/--host must be a
	// loopback TCP address or a private unix socket, and the flags that
	// place the daemon's state (--data-root, --exec-root, --pidfile,
	// --config-file) are the harness's own.
	ExtraArgs []string

	// StartTimeout bounds the wait until the daemon answers /_ping;
	// zero means [DefaultStartTimeout].
	StartTimeout time.Duration
}

// Daemon is a Docker daemon for tests: one this package started (and will
// stop), or a shared one it reuses.
type Daemon struct {
	host      string // unix:///.../docker.sock
	cliConfig string // DOCKER_CONFIG for Docker and Env
	api       *apiClient

	// Set only for a daemon this package started.
	dir     string
	dockerd string // the binary and its arguments, for Restart
	args    []string
	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{} // closed once dockerd has been reaped

	stopOnce sync.Once
	stopErr  error
}

// Host is the daemon's DOCKER_HOST, unix:///....
func (d *Daemon) Host() string { return d.host }

// Image is the busybox test image the daemon has; see [ImageName].
func (d *Daemon) Image() string { return ImageName }

// Dir is the directory holding the daemon's socket, data and exec roots and
// log, or "" for a reused daemon.
func (d *Daemon) Dir() string { return d.dir }

// PID is dockerd's process ID, or 0 for a reused daemon.
func (d *Daemon) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// Exited is closed when a daemon this package started exits, for whatever
// reason; for a reused daemon it is never closed.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// Env is the environment for a docker CLI talking to this daemon: its
// DOCKER_HOST and a private DOCKER_CONFIG.
func (d *Daemon) Env() []string {
	return []string{"DOCKER_HOST=" + d.host, "DOCKER_CONFIG=" + d.cliConfig}
}

// Logs returns dockerd's output so far ("" for a reused daemon), for
// failure messages.
func (d *Daemon) Logs() string {
	if d.dir == "" {
		return ""
	}
	b, _ := os.ReadFile(d.logPath())
	return string(b)
}

func (d *Daemon) logPath() string { return filepath.Join(d.dir, "dockerd.log") }

// Start launches a private dockerd, waits until it answers and imports the
// test image. The caller must call [Daemon.Stop].
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if err := platformSupported(); err != nil {
		return nil, err
	}
	if err := checkExtraArgs(opts.ExtraArgs); err != nil {
		return nil, err
	}
	dockerd, err := findDockerd()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("/tmp", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("failed to create the daemon directory: %w", err)
	}
	d := &Daemon{dir: dir, cliConfig: filepath.Join(dir, "cli")}
	socket := filepath.Join(dir, "docker.sock")
	d.host = "unix://" + socket
	d.api = newAPIClient(socket)
	if err := d.start(ctx, dockerd, opts); err != nil {
		return nil, errors.Join(err, d.Stop())
	}
	return d, nil
}

func (d *Daemon) start(ctx context.Context, dockerd string, opts Options) error {
	if err := os.Mkdir(d.cliConfig, 0o700); err != nil {
		return fmt.Errorf("failed to create the docker CLI config directory: %w", err)
	}
	args, err := d.dockerdArgs(ctx, dockerd, opts.ExtraArgs)
	if err != nil {
		return err
	}
	d.dockerd, d.args = dockerd, args
	if err := d.launch(dockerd, args); err != nil {
		return err
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = DefaultStartTimeout
	}
	if err := d.waitReady(ctx, timeout); err != nil {
		return err
	}
	return importBusybox(ctx, d.api)
}

// Kill stops dockerd at once with SIGKILL, as a crash would, waits until
// it has exited and kills what it started. Its socket stays where it was,
// refusing connections, until [Daemon.Restart]. Only a daemon this package
// started can be killed.
func (d *Daemon) Kill() error {
	if d.cmd == nil {
		return errors.New("dockertest: only a daemon started by this package can be killed")
	}
	if err := d.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to kill dockerd (pid %d): %w", d.cmd.Process.Pid, err)
	}
	<-d.exited
	// What dockerd started (containerd, the shims) would keep the data
	// root locked from the next dockerd: they go too, as a crash of the
	// whole service under systemd's default KillMode=control-group would
	// leave it. killStrays reports what it killed; that is no failure here.
	_ = killStrays(d.dir, filepath.Base(d.dir))
	// The next dockerd would take a killed containerd that nobody reaped
	// (a zombie still has its PID) for a live one and wait for it.
	if err := os.Remove(filepath.Join(d.dir, "exec", "containerd", "containerd.pid")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("failed to remove containerd's PID file: %w", err)
	}
	if err := d.logFile.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// Restart kills dockerd if it still runs ([Daemon.Kill]) and starts it
// again with the same command line: the same socket, data and exec roots,
// so clients reconnect to the same address and find the same images. It
// returns once the new dockerd answers /_ping.
func (d *Daemon) Restart(ctx context.Context) error {
	if err := d.Kill(); err != nil {
		return err
	}
	if err := d.launch(d.dockerd, d.args); err != nil {
		return err
	}
	return d.waitReady(ctx, DefaultStartTimeout)
}

// dockerdArgs is dockerd's command line: everything it writes lives in
// d.dir, it touches no host networking, and its containers run in a cgroup
// named after d.dir so that Stop can find them even if dockerd dies.
func (d *Daemon) dockerdArgs(ctx context.Context, dockerd string, extra []string) ([]string, error) {
	configFile := filepath.Join(d.dir, "daemon.json")
	if err := os.WriteFile(configFile, daemonJSON(ctx, dockerd, d.dir), 0o600); err != nil {
		return nil, fmt.Errorf("failed to write daemon.json: %w", err)
	}
	socket := strings.TrimPrefix(d.host, "unix://")
	if len(socket) >= maxSocketPath {
		return nil, fmt.Errorf("socket path %s is too long for a unix socket", socket)
	}
	args := []string{
		"--config-file", configFile,
		"--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "exec"),
		"--pidfile", filepath.Join(d.dir, "dockerd.pid"),
		"-H", d.host,
		"--storage-driver", "vfs",
		"--bridge", "none",
		"--iptables=false",
		"--ip-forward=false",
		"--ip-masq=false",
		"--userland-proxy=false",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", filepath.Base(d.dir),
	}
	return append(args, extra...), nil
}

// daemonJSON is the daemon's config file. It exists so that a host's
// /etc/docker/daemon.json never applies. dockerd before 23.0 writes a
// "trust key" to /etc/docker/key.json unless told otherwise.
func daemonJSON(ctx context.Context, dockerd, dir string) []byte {
	if major, ok := dockerdMajorVersion(ctx, dockerd); ok && major < 23 {
		return fmt.Appendf(nil, "{%q: %q}\n", "deprecated-key-path", filepath.Join(dir, "key.json"))
	}
	return []byte("{}\n")
}

var dockerdVersionRE = regexp.MustCompile(`Docker version (\d+)\.`)

func dockerdMajorVersion(ctx context.Context, dockerd string) (int, bool) {
	out, err := exec.CommandContext(ctx, dockerd, "--version").Output()
	if err != nil {
		return 0, false
	}
	m := dockerdVersionRE.FindSubmatch(out)
	if m == nil {
		return 0, false
	}
	major, err := strconv.Atoi(string(m[1]))
	return major, err == nil
}

// launch starts dockerd with its output in dockerd.log.
func (d *Daemon) launch(dockerd string, args []string) error {
	logFile, err := os.OpenFile(d.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("failed to create the dockerd log: %w", err)
	}
	cmd := exec.Command(dockerd, args...)
	cmd.Env = daemonEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("failed to start dockerd: %w", err)
	}
	d.cmd, d.logFile, d.exited = cmd, logFile, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(d.exited)
	}()
	return nil
}

// daemonEnv is the environment for dockerd: the test process's, minus
// DOCKER_* variables (DOCKER_TLS_VERIFY and DOCKER_CERT_PATH change
// dockerd's TLS defaults), with the sbin directories on PATH so that dockerd
// finds containerd and runc.
func daemonEnv() []string {
	env := withoutDockerVars(os.Environ())
	pathVal := os.Getenv("PATH")
	for _, dir := range []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"} {
		if !containsPathDir(pathVal, dir) {
			pathVal += string(os.PathListSeparator) + dir
		}
	}
	return append(env, "PATH="+strings.TrimPrefix(pathVal, string(os.PathListSeparator)))
}

func containsPathDir(pathVal, dir string) bool {
	for _, p := range filepath.SplitList(pathVal) {
		if p == dir {
			return true
		}
	}
	return false
}

// withoutDockerVars drops DOCKER_* variables (and PATH, which callers set).
func withoutDockerVars(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls /_ping until it answers, dockerd exits, or time runs out.
func (d *Daemon) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastErr error
	for {
		pingCtx, pingCancel := context.WithTimeout(ctx, 2*time.Second)
		lastErr = d.api.ping(pingCtx)
		pingCancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-d.exited:
			return fmt.Errorf("dockerd exited before it answered (%v); its log ends:\n%s", d.cmd.ProcessState, tail(d.Logs(), 20))
		case <-ctx.Done():
			return fmt.Errorf("dockerd did not answer /_ping within %s (%v); its log ends:\n%s", timeout, lastErr, tail(d.Logs(), 20))
		case <-tick.C:
		}
	}
}

// Stop stops a daemon this package started and removes everything it left:
// containers, processes, cgroups, mounts and its directory. For a reused
// daemon it only removes the private CLI config. It reports processes it
// had to kill because dockerd left them behind. Stop is idempotent.
func (d *Daemon) Stop() error {
	d.stopOnce.Do(func() { d.stopErr = d.stop() })
	return d.stopErr
}

func (d *Daemon) stop() error {
	defer d.api.close()
	if d.dir == "" {
		return os.RemoveAll(d.cliConfig)
	}
	var errs []error
	if d.cmd != nil {
		d.killContainers()
		errs = append(errs, d.terminate())
	}
	name := filepath.Base(d.dir)
	errs = append(errs, killStrays(d.dir, name), removeCgroups(name))
	if err := unmountUnder(d.dir); err != nil {
		// Never delete through a mount: it could reach outside d.dir.
		return errors.Join(append(errs, err, fmt.Errorf("left %s in place", d.dir))...)
	}
	if err := os.RemoveAll(d.dir); err != nil {
		errs = append(errs, fmt.Errorf("failed to remove the daemon directory: %w", err))
	}
	return errors.Join(errs...)
}

// killContainers sends SIGKILL to running containers so that dockerd does
// not wait out their stop timeouts (10 s each) when it shuts down.
func (d *Daemon) killContainers() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ids, err := d.api.runningContainers(ctx)
	if err != nil {
		return // dockerd is gone or stuck; terminate and killStrays handle it
	}
	for _, id := range ids {
		_ = d.api.killContainer(ctx, id)
	}
}

// terminate sends dockerd SIGTERM and waits; SIGKILL after stopGrace.
func (d *Daemon) terminate() error {
	defer d.logFile.Close()
	pid := d.cmd.Process.Pid
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("failed to signal dockerd (pid %d): %w", pid, err)
	}
	select {
	case <-d.exited:
		return nil
	case <-time.After(stopGrace):
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	return fmt.Errorf("dockerd (pid %d) did not exit within %s of SIGTERM and was killed; its log ends:\n%s",
		pid, stopGrace, tail(d.Logs(), 20))
}

// Reuse connects to an already running test daemon at host (unix://...)
// and makes sure it has the test image. Stop leaves that daemon running.
func Reuse(ctx context.Context, host string) (*Daemon, error) {
	socket, err := reusableSocket(host)
	if err != nil {
		return nil, err
	}
	cliConfig, err := os.MkdirTemp("", "dockertest-cli-")
	if err != nil {
		return nil, fmt.Errorf("failed to create the docker CLI config directory: %w", err)
	}
	d := &Daemon{host: host, cliConfig: cliConfig, api: newAPIClient(socket)}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.api.ping(pingCtx); err != nil {
		return nil, errors.Join(fmt.Errorf("the test daemon at %s does not answer: %w", host, err), d.Stop())
	}
	if err := ensureImage(ctx, d.api); err != nil {
		return nil, errors.Join(err, d.Stop())
	}
	return d, nil
}

// hostDaemonSockets are the host's own Docker sockets, which tests never use.
var hostDaemonSockets = map[string]bool{"/var/run/docker.sock": true, "/run/docker.sock": true}

func reusableSocket(host string) (string, error) {
	socket, ok := strings.CutPrefix(host, "unix://")
	if !ok || !filepath.IsAbs(socket) {
		return "", fmt.Errorf("test daemon host %q is not unix:///absolute/path", host)
	}
	if hostDaemonSockets[filepath.Clean(socket)] {
		return "", fmt.Errorf("refusing the host's own Docker daemon %s: tests use a private one", host)
	}
	return socket, nil
}

// reservedFlags place the daemon's state; only the harness sets them.
var reservedFlags = map[string]bool{
	"--data-root": true, "--exec-root": true, "--pidfile": true, "-p": true,
	"--config-file": true, "-g": true, "--graph": true, "--cgroup-parent": true,
}

// checkExtraArgs refuses extra dockerd flags that would listen beyond
// loopback, use the host's socket, or move the daemon's state.
func checkExtraArgs(args []string) error {
	for i := 0; i < len(args); i++ {
		name, value, hasValue := strings.Cut(args[i], "=")
		if reservedFlags[name] {
			return fmt.Errorf("extra dockerd flag %s is set by the harness", name)
		}
		if name != "-H" && name != "--host" {
			continue
		}
		if !hasValue {
			if i+1 == len(args) {
				return fmt.Errorf("extra dockerd flag %s needs a value", name)
			}
			i++
			value = args[i]
		}
		if err := checkListenHost(value); err != nil {
			return err
		}
	}
	return nil
}

// checkListenHost accepts tcp:// on a loopback address and private unix
// sockets.
func checkListenHost(host string) error {
	u, err := url.Parse(host)
	if err != nil {
		return fmt.Errorf("extra dockerd host %q: %w", host, err)
	}
	switch u.Scheme {
	case "unix":
		if hostDaemonSockets[filepath.Clean(u.Path)] {
			return fmt.Errorf("extra dockerd host %s is the host's own Docker socket", host)
		}
		return nil
	case "tcp":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("extra dockerd host %q must be tcp:// on a loopback address or unix://", host)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// findDockerd looks on PATH, then where Debian installs it (sbin is not on
// every PATH).
func findDockerd() (string, error) {
	if p, err := exec.LookPath("dockerd"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/dockerd", "/usr/bin/dockerd", "/usr/local/bin/dockerd"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("dockerd not found: install Debian's docker.io and busybox-static (./scripts/test does)")
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RunDocker runs the real docker CLI with args and returns its stdout and
// stderr; a non-zero exit is an *exec.ExitError. env holds the DOCKER_*
// variables to use (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, ...);
// those of the test process are dropped. env must set DOCKER_CONFIG so that
// no test reads or writes ~/.docker.
func RunDocker(ctx context.Context, env []string, args ...string) (stdout, stderr string, err error) {
	if !hasVar(env, "DOCKER_CONFIG") {
		return "", "", errors.New("dockertest: RunDocker needs DOCKER_CONFIG in env")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		return "", "", fmt.Errorf("docker CLI not found: %w", err)
	}
	cmd := exec.CommandContext(ctx, docker, args...)
	cmd.Env = append(withoutDockerVars(os.Environ()), "PATH="+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func hasVar(env []string, name string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			return true
		}
	}
	return false
}
