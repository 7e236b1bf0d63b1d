package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// dockgateCLI runs the built dockgate binary with its own state directory
// and docker CLI config, and nothing from the caller's environment that
// would change where it reads or writes.
type dockgateCLI struct {
	t         *testing.T
	bin       string
	stateDir  string
	dockerCfg string
	extraEnv  []string // e.g. DOCKGATE_CA_PASSPHRASE=...
}

func newDockgateCLI(t *testing.T, bin string, extraEnv ...string) *dockgateCLI {
	t.Helper()
	return &dockgateCLI{
		t:         t,
		bin:       bin,
		stateDir:  filepath.Join(t.TempDir(), "state"),
		dockerCfg: filepath.Join(t.TempDir(), "docker-config"),
		extraEnv:  extraEnv,
	}
}

func (c *dockgateCLI) env() []string {
	env := append(cleanEnv(),
		"DOCKGATE_HOME="+c.stateDir,
		"DOCKER_CONFIG="+c.dockerCfg,
		"XDG_DATA_HOME="+filepath.Join(c.stateDir, "xdg"),
	)
	return append(env, c.extraEnv...)
}

// run runs dockgate and returns its stdout; failure fails the test.
func (c *dockgateCLI) run(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.exec(args...)
	if err != nil {
		c.t.Fatalf("dockgate %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

func (c *dockgateCLI) exec(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(c.bin, args...)
	cmd.Env = c.env()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// cleanEnv is the test process's environment without the DOCKER_* and
// DOCKGATE_* variables that would point a command elsewhere.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "DOCKER_") || strings.HasPrefix(kv, "DOCKGATE_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// dockerAfterEval runs `eval "$exports"; docker args...` in a POSIX shell,
// as a user would after `dockgate env`, with dockerCfg as DOCKER_CONFIG.
func dockerAfterEval(t *testing.T, exports, dockerCfg string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	script := `eval "$DOCKGATE_EXPORTS" || exit 99; exec docker "$@"`
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.Env = append(cleanEnv(), "DOCKER_CONFIG="+dockerCfg, "DOCKGATE_EXPORTS="+exports)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// shellWords splits a command line printed for a POSIX shell the way sh
// would, so quoting mistakes in it show up as test failures.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	script := `eval "set -- $DOCKGATE_LINE" || exit 99; printf '%s\0' "$@"`
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(cleanEnv(), "DOCKGATE_LINE="+strings.TrimSpace(line))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh could not parse %q: %v", line, err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
}

// writeCertDir writes Docker's DOCKER_CERT_PATH layout.
func writeCertDir(t *testing.T, caPEM, certPEM, keyPEM []byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"ca.pem": caPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
