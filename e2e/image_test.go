package e2e

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// imageUID is the image's non-root user (Dockerfile: USER 65532:65532).
const imageUID = 65532

// What makeImage stamps into the binary, as a release would.
const (
	imageVersion = "v0.0.0-e2e"
	imageCommit  = "0123456789abcdef0123456789abcdef01234567"
)

// TestImage builds the release image the way `make image` does, on the
// private daemon, and runs dockgate from it: version, doctor trust with the
// image's bundle and with the embedded fallback roots, doctor image on
// itself, and the gateway in front of the daemon's socket, driven by the
// docker CLI.
func TestImage(t *testing.T) {
	d := dockertest.ForTest(t)
	image := makeImage(t, d)
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		return d.Docker(t, append([]string{"run", "--rm", "--network", "none"}, args...)...)
	}

	t.Run("version", func(t *testing.T) {
		out := run(t, image, "version")
		if want := "dockgate " + imageVersion + " (commit " + imageCommit + ", go1."; !strings.HasPrefix(out, want) {
			t.Errorf("version = %q, want it stamped: %q", out, want)
		}
	})
	t.Run("doctor trust reads the image's bundle", func(t *testing.T) {
		out := run(t, image, "doctor", "trust")
		if !regexp.MustCompile(`Go verifies servers against \d+ roots from /etc/ssl/certs/ca-certificates.crt`).MatchString(out) {
			t.Errorf("doctor trust:\n%s\nwant the image's CA bundle in use", out)
		}
	})
	t.Run("doctor trust falls back to the embedded roots", func(t *testing.T) {
		out := run(t, "-e", "SSL_CERT_FILE=/nonexistent", "-e", "SSL_CERT_DIR=/nonexistent", image, "doctor", "trust")
		if !regexp.MustCompile(`linked, \d+ roots, in use: no system roots`).MatchString(out) {
			t.Errorf("doctor trust without a bundle:\n%s\nwant the fallback roots in use", out)
		}
	})
	t.Run("runs as non-root", func(t *testing.T) {
		if user := strings.TrimSpace(d.Docker(t, "image", "inspect", "--format", "{{.Config.User}}", image)); user != fmt.Sprintf("%d:%d", imageUID, imageUID) {
			t.Errorf("image user = %q, want %d:%d", user, imageUID, imageUID)
		}
	})
	t.Run("exposes the gateway and enrollment ports", func(t *testing.T) {
		ports := d.Docker(t, "image", "inspect", "--format", "{{json .Config.ExposedPorts}}", image)
		for _, p := range []string{`"2376/tcp"`, `"2386/tcp"`} {
			if !strings.Contains(ports, p) {
				t.Errorf("exposed ports %s lack %s", strings.TrimSpace(ports), p)
			}
		}
	})
	t.Run("doctor image passes it", func(t *testing.T) {
		cmd := exec.Command(dockertest.BuildDockgate(t), "doctor", "image", image)
		cmd.Env = append(cleanEnv(), d.Env()...)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "static Go binary") || !strings.Contains(string(out), "verdict") {
			t.Errorf("doctor image %s: %v\n%s", image, err, out)
		}
	})
	size := strings.TrimSpace(d.Docker(t, "image", "inspect", "--format", "{{.Size}}", image))
	t.Logf("image %s: %s bytes uncompressed", image, size)

	t.Run("gateway", func(t *testing.T) { testGatewayInImage(t, d, image) })
}

// makeImage runs `make image` against d with a binary and tag of its own
// and removes the image when t ends.
func makeImage(t *testing.T, d *dockertest.Daemon) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	image := fmt.Sprintf("dockgate-test/dockgate:e2e-%d", os.Getpid())
	cmd := exec.CommandContext(t.Context(), "make", "-C", root, "image",
		"BIN="+filepath.Join(t.TempDir(), "dockgate"), "IMAGE="+image,
		"VERSION="+imageVersion, "COMMIT="+imageCommit)
	cmd.Env = append(cleanEnv(), d.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { d.Docker(t, "rmi", "-f", image) })
	return image
}

// testGatewayInImage runs `dockgate serve` from the image with the daemon's
// socket mounted, as the README shows, and drives the daemon through it
// with the docker CLI.
func testGatewayInImage(t *testing.T, d *dockertest.Daemon, image string) {
	cli := newDockgateCLI(t, dockertest.BuildDockgate(t))
	cli.run("init", "--insecure-no-passphrase")
	cli.run("issue", "server", "gateway", "--san", "127.0.0.1")
	certDir := filepath.Join(t.TempDir(), "admin")
	cli.run("issue", "client", "admin", "--group", "admins", "--out", certDir)
	opsDir := filepath.Join(t.TempDir(), "ops")
	cli.run("issue", "client", "ops", "--group", "operators", "--out", opsDir)
	serveConfig := "clients:\n  - group: admins\n    role: admin\n  - group: operators\n    role: operator\n"
	if err := os.WriteFile(filepath.Join(cli.stateDir, "serve.yaml"), []byte(serveConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	chownTree(t, cli.stateDir, imageUID) // the volume belongs to the image's user

	socket := strings.TrimPrefix(d.Host(), "unix://")
	var st syscall.Stat_t
	if err := syscall.Stat(socket, &st); err != nil {
		t.Fatal(err)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	// DOCKGATE_ADMIN_LISTEN moves the admin listener off the default port
	// for serve and for the image's HEALTHCHECK alike.
	// The label the image sets is turned off, and the socket's host path
	// is not one the gateway knows: only the container ID it reads from
	// /proc tells it the container is its own.
	id := strings.TrimSpace(d.Docker(t, "run", "-d", "--network", "host",
		"--label", "dockgate.self=false",
		"--group-add", strconv.FormatUint(uint64(st.Gid), 10),
		"-v", cli.stateDir+":/var/lib/dockgate",
		"-v", socket+":/var/run/docker.sock",
		"-e", "DOCKGATE_ADMIN_LISTEN="+admin,
		"--health-interval", "1s",
		image, "serve", "--listen", listen, "--upstream", "unix:///var/run/docker.sock", "--config", "/var/lib/dockgate/serve.yaml"))
	t.Cleanup(func() {
		if t.Failed() {
			logs, stderr, _ := dockertest.RunDocker(context.Background(), d.Env(), "logs", id)
			t.Logf("gateway container logs:\n%s%s", logs, stderr)
		}
		d.Docker(t, "rm", "-f", id)
	})
	waitHTTP200(t, "http://"+admin+"/readyz", &syncBuffer{}) // the cleanup logs the container's output

	dockerAs := func(certs string, args ...string) (string, string, error) {
		env := append(cleanEnv(), "DOCKER_HOST=tcp://"+listen, "DOCKER_TLS_VERIFY=1",
			"DOCKER_CERT_PATH="+certs, "DOCKER_CONFIG="+cli.dockerCfg)
		return dockertest.RunDocker(t.Context(), env, args...)
	}
	docker := func(args ...string) string {
		t.Helper()
		out, stderr, err := dockerAs(certDir, args...)
		if err != nil {
			t.Fatalf("docker %s through the gateway: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return strings.TrimSpace(out)
	}
	if v := docker("version", "--format", "{{.Server.Version}}"); v == "" {
		t.Error("no server version through the gateway in the image")
	}
	if out := docker("run", "--rm", "--network", "none", d.Image(), "echo", "hello-through-image"); out != "hello-through-image" {
		t.Errorf("run through the gateway = %q", out)
	}
	if out := docker("ps", "--format", "{{.ID}}"); !strings.HasPrefix(id, out) && !strings.Contains(out, id[:12]) {
		t.Errorf("ps through the gateway = %q, want the gateway's own container %s", out, id[:12])
	}
	// An operator may stop containers, not the gateway's own.
	for _, args := range [][]string{{"stop", id}, {"kill", id}, {"container", "inspect", id}, {"logs", id}} {
		if out, stderr, err := dockerAs(opsDir, args...); err == nil || !strings.Contains(stderr, "the gateway's own container") {
			t.Errorf("docker %s as an operator: %v %s %s, want refused as the gateway's own container", strings.Join(args, " "), err, out, stderr)
		}
	}
	if state := strings.TrimSpace(d.Docker(t, "inspect", "--format", "{{.State.Running}}", id)); state != "true" {
		t.Errorf("THE DAEMON ACTED: the gateway's container is running=%s", state)
	}
	waitHealthy(t, d, id)
}

func chownTree(t *testing.T, root string, uid int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, uid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitHealthy waits for the image's HEALTHCHECK (dockgate healthcheck) to
// report the container healthy.
func waitHealthy(t *testing.T, d *dockertest.Daemon, id string) {
	t.Helper()
	status := ""
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		status = strings.TrimSpace(d.Docker(t, "inspect", "--format", "{{.State.Health.Status}}", id))
		if status == "healthy" {
			return
		}
	}
	log := d.Docker(t, "inspect", "--format", "{{json .State.Health}}", id)
	t.Fatalf("health status %q, want healthy; %s", status, log)
}

// The Dockerfile's final stage and Dockerfile.local ('make image') must
// build the same image: only the COPY sources differ.
func TestDockerfilesShareTheFinalStage(t *testing.T) {
	finalStage := func(name string, normalize func(string) string) string {
		data, err := os.ReadFile(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		text = text[strings.LastIndex(text, "\nFROM scratch"):]
		var lines []string
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, normalize(l))
			}
		}
		return strings.Join(lines, "\n")
	}
	fromContext := strings.NewReplacer(" /rootfs/ ", " rootfs/ ", " /state/ ", " state/ ")
	release := finalStage("Dockerfile", func(l string) string {
		return fromContext.Replace(strings.Replace(l, "--from=build ", "", 1))
	})
	local := finalStage("Dockerfile.local", func(l string) string { return l })
	if release != local {
		t.Errorf("the final stages differ:\nDockerfile:\n%s\n\nDockerfile.local:\n%s", release, local)
	}
}
