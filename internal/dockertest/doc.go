// Package dockertest runs dockgate's integration tests against a real,
// private Docker daemon and the real docker CLI.
//
// # The daemon
//
// [Start] launches dockerd on its own unix socket, data root and exec root
// in a fresh directory under /tmp (unix socket paths must stay under 108
// bytes, so t.TempDir paths are too long). The daemon runs without
// networking (--bridge=none, --iptables=false), on the vfs storage driver,
// with its own managed containerd, and is never the host's
// /var/run/docker.sock. Once /_ping answers, a busybox image
// ([ImageName]) is imported from the host's static busybox: no registry is
// ever contacted, so tests run containers with `--network none IMAGE`.
//
// [Daemon.Stop] kills the daemon's containers, stops dockerd by its PID
// (SIGTERM, then SIGKILL after a grace period), makes sure no process it
// spawned (containerd, shims, container processes) is left behind,
// unmounts what it mounted and removes its directory.
//
// [Daemon.Kill] crashes a private daemon (SIGKILL, and what it started) and
// [Daemon.Restart] brings it back on the same socket and data root, for
// tests of clients that must survive a dockerd restart.
//
// # Use in tests
//
// A test package gets one daemon for all its tests:
//
//	func TestMain(m *testing.M) { dockertest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		d := dockertest.ForTest(t)
//		out := d.Docker(t, "run", "--rm", "--network", "none", d.Image(), "echo", "hi")
//		...
//	}
//
// Integration tests are opt-in so that a plain `go test ./...` stays fast:
// [ForTest] skips unless DOCKGATE_INTEGRATION=1. When DOCKGATE_INTEGRATION=1
// or CI is set, a daemon that cannot be started fails the test instead: a
// skipped integration test must never pass for a green build.
//
// ./scripts/test starts one daemon for the whole run and exports its address
// as DOCKGATE_TEST_DOCKER_HOST (unix://...). [ForTest] then reuses that
// daemon instead of starting one per test package, and only makes sure the
// test image exists.
//
// A test that needs a daemon of its own, for example dockerd's native TLS
// listener configured by `dockgate dockerd-config`, calls [StartForTest]
// with [Options.ExtraArgs]; it is stopped when the test ends.
//
// [BuildDockgate] builds the dockgate binary once per test binary, and
// [RunDocker] runs the docker CLI with an explicit, isolated environment.
//
// # Requirements
//
// Linux, root, and Debian's docker.io and busybox-static packages (dockerd,
// containerd, runc and a statically linked /bin/busybox). ./scripts/test
// installs them when they are missing.
package dockertest
