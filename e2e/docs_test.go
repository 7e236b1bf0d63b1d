package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// TestDocsWalkthrough runs the README's Quick start and the walkthrough at
// the top of docs/ONBOARDING.md as they are written, line by line, through
// sh: the docs cannot drift from the behaviour. The test only supplies what
// a reader's machine has and the docs leave to it: dockgate on PATH, the
// CA passphrase (DOCKGATE_CA_PASSPHRASE, as no terminal is there to ask
// on), loopback ports and this test's own dockerd through DOCKGATE_*
// variables, two machines' docker configurations, and the real token for
// the placeholder dgt1.AbC.... It does not run ./scripts/test, which is
// what runs this test.
func TestDocsWalkthrough(t *testing.T) {
	d := dockertest.ForTest(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	quickStart, anotherShell := readmeQuickStart(t, filepath.Join(root, "README.md"))
	walkthrough := firstShellBlock(t, filepath.Join(root, "docs", "ONBOARDING.md"))

	bin := dockertest.BuildDockgate(t)
	path := filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH")
	port := func() string { return fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t)) }
	gatewayDir, laptopDir := t.TempDir(), t.TempDir()
	machines := map[string][]string{
		"gateway": append(cleanEnv(), "PATH="+path,
			"DOCKGATE_HOME="+filepath.Join(gatewayDir, "state"), "DOCKER_CONFIG="+filepath.Join(gatewayDir, "docker"),
			"DOCKGATE_CA_PASSPHRASE=walkthrough passphrase",
			"DOCKGATE_LISTEN="+port(), "DOCKGATE_ADMIN_LISTEN="+port(), "DOCKGATE_ENROLL_LISTEN="+port(),
			"DOCKGATE_UPSTREAM="+d.Host()),
		"laptop": append(cleanEnv(), "PATH="+path,
			"DOCKGATE_HOME="+filepath.Join(laptopDir, "state"), "DOCKER_CONFIG="+filepath.Join(laptopDir, "docker")),
	}
	w := &walker{t: t, dir: root, machines: machines}

	t.Log("README Quick start")
	for _, line := range quickStart {
		if line == "./scripts/test" {
			continue // runs this very test
		}
		w.run("gateway", line)
	}
	w.run("gateway", anotherShell)

	t.Log("docs/ONBOARDING.md walkthrough")
	machine := "gateway"
	for _, line := range walkthrough {
		switch line {
		case "# on the gateway's machine":
			machine = "gateway"
		case "# on alice's laptop":
			machine = "laptop"
		default:
			if strings.HasPrefix(line, "#") {
				t.Fatalf("docs/ONBOARDING.md: the walkthrough says %q; which machine is that?", line)
			}
			w.run(machine, line)
		}
	}
	w.stopAll()
}

// walker runs documented command lines on pretend machines.
type walker struct {
	t        *testing.T
	dir      string
	machines map[string][]string
	token    string
	stops    []func() // of the long-running commands
}

// tokenPlaceholder is how the docs write a token.
const tokenPlaceholder = "dgt1.AbC..."

func (w *walker) run(machine, line string) {
	w.t.Helper()
	cmdLine := stripComment(line)
	if strings.Contains(cmdLine, tokenPlaceholder) {
		if w.token == "" {
			w.t.Fatalf("%q uses a token before any was created", line)
		}
		cmdLine = strings.ReplaceAll(cmdLine, tokenPlaceholder, w.token)
	}
	w.t.Logf("[%s] $ %s", machine, cmdLine)
	cmd := exec.Command("sh", "-c", cmdLine)
	cmd.Dir, cmd.Env = w.dir, w.machines[machine]
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // go run's child too gets the signal
	if longRunning(cmdLine) {
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		w.serve(cmd, out, line)
		return
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		w.t.Fatalf("[%s] %s: %v\nstdout:\n%s\nstderr:\n%s", machine, line, err, stdout.String(), stderr.String())
	}
	if strings.Contains(cmdLine, "token create") {
		w.token = strings.TrimSpace(stdout.String())
	}
}

// longRunning: up serves and renew --watch keeps renewing; both are
// started, awaited until they say they are working, and stopped at the end.
func longRunning(cmdLine string) bool {
	return strings.HasSuffix(cmdLine, " up") || strings.Contains(cmdLine, "--watch")
}

// readyPatterns are what the long-running commands print once they work.
var readyPatterns = regexp.MustCompile(`(?m)^Ready: the gateway listens on|next renewal of "`)

func (w *walker) serve(cmd *exec.Cmd, out *syncBuffer, line string) {
	w.t.Helper()
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		<-exited
	}
	w.stops = append(w.stops, stop)
	w.t.Cleanup(stop)
	// go run compiles first; a busy machine may take a while.
	deadline := time.After(3 * time.Minute)
	for !readyPatterns.MatchString(out.String()) {
		select {
		case <-exited:
			w.t.Fatalf("%s exited: %v; output:\n%s", line, cmd.ProcessState, out)
		case <-deadline:
			w.t.Fatalf("%s never said it was working; output:\n%s", line, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopAll stops the long-running commands, newest first.
func (w *walker) stopAll() {
	for i := len(w.stops) - 1; i >= 0; i-- {
		w.stops[i]()
	}
	w.stops = nil
}

// stripComment removes a trailing "  # ..." comment from a command line.
func stripComment(line string) string {
	if i := strings.Index(line, " #"); i >= 0 {
		line = line[:i]
	}
	return strings.TrimSpace(line)
}

// readmeQuickStart returns the Quick start's set-up commands and the
// command it says to run in another shell.
func readmeQuickStart(t *testing.T, path string) (commands []string, anotherShell string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "## Quick start")
	if start < 0 {
		t.Fatal("README.md has no Quick start")
	}
	section := text[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	for _, line := range shellBlock(t, section) {
		commands = append(commands, stripComment(line))
	}
	if len(commands) != 2 {
		t.Errorf("the Quick start has %d set-up commands, want 2 (the gateway, the tests): %q", len(commands), commands)
	}
	m := regexp.MustCompile("In another shell:\\s+`([^`]+)`").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("the Quick start no longer says what to run in another shell")
	}
	return commands, m[1]
}

func firstShellBlock(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return shellBlock(t, string(data))
}

// shellBlock returns the non-empty lines of the first ```sh block in text.
func shellBlock(t *testing.T, text string) []string {
	t.Helper()
	start := strings.Index(text, "```sh\n")
	if start < 0 {
		t.Fatal("no ```sh block")
	}
	body := text[start+len("```sh\n"):]
	body = body[:strings.Index(body, "```")]
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
