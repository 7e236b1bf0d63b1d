package dockertest

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestIntegrationRequired(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want bool
	}{
		{"nothing set", nil, false},
		{"integration on", map[string]string{EnvIntegration: "1"}, true},
		{"integration true", map[string]string{EnvIntegration: "true"}, true},
		{"integration off", map[string]string{EnvIntegration: "0"}, false},
		{"CI", map[string]string{"CI": "true"}, true},
		{"CI overrides integration off", map[string]string{"CI": "1", EnvIntegration: "0"}, true},
		{"CI false", map[string]string{"CI": "false"}, false},
		{"reuse host alone does not enable", map[string]string{EnvDockerHost: "unix:///tmp/x.sock"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := integrationRequired(func(k string) string { return tt.env[k] })
			if got != tt.want {
				t.Errorf("integrationRequired(%v) = %v, want %v", tt.env, got, tt.want)
			}
		})
	}
}

func TestCheckExtraArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"none", nil, ""},
		{"loopback tls", []string{"-H", "tcp://127.0.0.1:2376", "--tlsverify", "--tlscacert=/x/ca.pem"}, ""},
		{"host= form", []string{"--host=tcp://127.0.0.1:2376"}, ""},
		{"ipv6 loopback", []string{"-H", "tcp://[::1]:2376"}, ""},
		{"localhost", []string{"--host", "tcp://localhost:2376"}, ""},
		{"private unix socket", []string{"-H", "unix:///tmp/dgtd-x/other.sock"}, ""},
		{"all interfaces", []string{"-H", "tcp://0.0.0.0:2376"}, "loopback"},
		{"lan address", []string{"--host=tcp://192.168.1.10:2376"}, "loopback"},
		{"host socket", []string{"-H", "unix:///var/run/docker.sock"}, "host's own Docker socket"},
		{"host socket via /run", []string{"-H", "unix:///run/docker.sock"}, "host's own Docker socket"},
		{"fd", []string{"-H", "fd://"}, "loopback"},
		{"missing value", []string{"--tlsverify", "-H"}, "needs a value"},
		{"data root", []string{"--data-root", "/var/lib/docker"}, "set by the harness"},
		{"exec root = form", []string{"--exec-root=/run/docker"}, "set by the harness"},
		{"config file", []string{"--config-file", "/etc/docker/daemon.json"}, "set by the harness"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkExtraArgs(tt.args)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("checkExtraArgs(%q) = %v, want nil", tt.args, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("checkExtraArgs(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

func TestReusableSocket(t *testing.T) {
	tests := []struct {
		host    string
		want    string
		wantErr bool
	}{
		{"unix:///tmp/dgtd-1/docker.sock", "/tmp/dgtd-1/docker.sock", false},
		{"unix:///var/run/docker.sock", "", true},
		{"unix:///var/run/../run/docker.sock", "", true},
		{"unix://relative.sock", "", true},
		{"tcp://127.0.0.1:2375", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			got, err := reusableSocket(tt.host)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("reusableSocket(%q) = %q, %v; want %q, error %v", tt.host, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestBusyboxRootfs(t *testing.T) {
	bin := []byte("\x7fELF fake busybox")
	applets := []string{"bin/sh", "bin/cat", "usr/bin/sha256sum", "sbin/ifconfig"}
	archive, err := busyboxRootfs(bin, applets)
	if err != nil {
		t.Fatalf("busyboxRootfs: %v", err)
	}
	entries := readTar(t, archive)

	if got := entries["bin/busybox"]; got.content != string(bin) || got.mode != 0o755 {
		t.Errorf("bin/busybox = %q mode %o, want the binary with mode 755", got.content, got.mode)
	}
	for _, a := range applets {
		if got := entries[a]; got.typ != tar.TypeSymlink || got.link != "/bin/busybox" {
			t.Errorf("%s: type %c link %q, want a symlink to /bin/busybox", a, got.typ, got.link)
		}
	}
	for _, dir := range []string{"tmp/", "proc/", "etc/", "usr/bin/", "root/"} {
		if got := entries[dir]; got.typ != tar.TypeDir {
			t.Errorf("%s: type %c, want a directory", dir, got.typ)
		}
	}
	if got := entries["tmp/"].mode; got != 0o1777 {
		t.Errorf("tmp mode = %o, want 1777", got)
	}
	if got := entries["etc/passwd"].content; !strings.HasPrefix(got, "root:x:0:0:") {
		t.Errorf("etc/passwd = %q, want a root entry first", got)
	}
}

type tarEntry struct {
	typ     byte
	mode    int64
	link    string
	content string
}

func readTar(t *testing.T, archive []byte) map[string]tarEntry {
	t.Helper()
	entries := map[string]tarEntry{}
	tr := tar.NewReader(bytes.NewReader(archive))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return entries
		}
		if err != nil {
			t.Fatalf("reading the rootfs tar: %v", err)
		}
		if _, dup := entries[h.Name]; dup {
			t.Errorf("duplicate tar entry %s", h.Name)
		}
		content, _ := io.ReadAll(tr)
		entries[h.Name] = tarEntry{typ: h.Typeflag, mode: h.Mode, link: h.Linkname, content: string(content)}
	}
}

func TestProgressError(t *testing.T) {
	tests := []struct {
		name    string
		stream  string
		wantErr string
	}{
		{"success", `{"status":"sha256:abc"}` + "\n", ""},
		{"empty", "", ""},
		{"error in stream", `{"status":"importing"}{"errorDetail":{"message":"no space"},"error":"no space"}`, "no space"},
		{"garbage", `{"status":`, "failed to read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := progressError(strings.NewReader(tt.stream))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("progressError(%q) = %v, want error containing %q", tt.stream, err, tt.wantErr)
			}
		})
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb", 5, "a\nb"},
		{"", 3, ""},
	}
	for _, tt := range tests {
		if got := tail(tt.in, tt.n); got != tt.want {
			t.Errorf("tail(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestRunDockerNeedsConfig(t *testing.T) {
	_, _, err := RunDocker(t.Context(), []string{"DOCKER_HOST=unix:///tmp/none.sock"}, "version")
	if err == nil || !strings.Contains(err.Error(), "DOCKER_CONFIG") {
		t.Errorf("RunDocker without DOCKER_CONFIG = %v, want an error naming DOCKER_CONFIG", err)
	}
}

// helperEnv makes TestForTestHelper do its work in a child test binary.
const helperEnv = "DOCKERTEST_FORTEST_HELPER"

// TestForTestHelper calls ForTest; TestForTestModes runs it in a child
// process to see whether it skips or fails.
func TestForTestHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("run by TestForTestModes")
	}
	ForTest(t)
}

// TestForTestModes checks that integration tests skip when off and fail,
// never skip, when required but no daemon can be had.
func TestForTestModes(t *testing.T) {
	unreachable := EnvDockerHost + "=unix:///nonexistent/dockertest.sock"
	tests := []struct {
		name     string
		env      []string
		wantFail bool
		wantOut  string
	}{
		{"off skips", []string{unreachable}, false, "--- SKIP"},
		{"integration fails", []string{unreachable, EnvIntegration + "=1"}, true, "no test daemon"},
		{"CI fails", []string{unreachable, "CI=true"}, true, "no test daemon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestForTestHelper$", "-test.v")
			cmd.Env = append(envWithout(os.Environ(), "CI", EnvIntegration, EnvDockerHost), helperEnv+"=1")
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			if failed := errors.As(err, &exitErr); failed != tt.wantFail || (err != nil && exitErr == nil) {
				t.Errorf("child test: err = %v, want failure %v\n%s", err, tt.wantFail, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Errorf("child test output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}

func envWithout(environ []string, names ...string) []string {
	var env []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, n := range names {
			if name == n {
				keep = false
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}
