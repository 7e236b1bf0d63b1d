//go:build unix

package dockerconf

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// These tests hold our files against the docker CLI's own: the layout,
// bytes and modes `docker context create` writes, and the docker CLI reading
// what WriteContext and UseContext write. They need only the docker CLI, no
// daemon, and are skipped without it.

// withUmask runs the test under the umask most systems use, since the modes
// the docker CLI ends up with depend on it.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestContextModes(t *testing.T) {
	withUmask(t)
	configDir := filepath.Join(t.TempDir(), ".docker")
	if err := WriteContext(configDir, testContext(t, "prod"), false); err != nil {
		t.Fatal(err)
	}
	id := contextID("prod")
	want := map[string]fs.FileMode{
		".":                                       fs.ModeDir | 0o700,
		"contexts":                                fs.ModeDir | 0o755,
		"contexts/meta":                           fs.ModeDir | 0o755,
		"contexts/meta/" + id:                     fs.ModeDir | 0o755,
		"contexts/meta/" + id + "/meta.json":      0o644,
		"contexts/tls":                            fs.ModeDir | 0o700,
		"contexts/tls/" + id:                      fs.ModeDir | 0o700,
		"contexts/tls/" + id + "/docker":          fs.ModeDir | 0o700,
		"contexts/tls/" + id + "/docker/ca.pem":   0o600,
		"contexts/tls/" + id + "/docker/cert.pem": 0o600,
		"contexts/tls/" + id + "/docker/key.pem":  0o600,
	}
	if got := treeModes(t, configDir); !reflect.DeepEqual(got, want) {
		t.Errorf("tree = %v\nwant %v", got, want)
	}
}

func TestSameFilesAsDockerContextCreate(t *testing.T) {
	docker := needDocker(t)
	withUmask(t)
	for _, description := range []string{"", "dockgate client alice <&>"} {
		t.Run("description="+description, func(t *testing.T) {
			c := testContext(t, "prod")
			c.Description = description
			tlsDir := t.TempDir()
			for name, data := range map[string][]byte{"ca.pem": c.CA, "cert.pem": c.Cert, "key.pem": c.Key} {
				writeFile(t, filepath.Join(tlsDir, name), data, 0o600)
			}
			theirs := t.TempDir()
			runDocker(t, docker, theirs, "context", "create", c.Name, "--description", description, "--docker",
				"host="+c.Host+",ca="+tlsDir+"/ca.pem,cert="+tlsDir+"/cert.pem,key="+tlsDir+"/key.pem")
			ours := t.TempDir()
			if err := WriteContext(ours, c, false); err != nil {
				t.Fatal(err)
			}
			theirTree, ourTree := treeModes(t, filepath.Join(theirs, "contexts")), treeModes(t, filepath.Join(ours, "contexts"))
			if !reflect.DeepEqual(ourTree, theirTree) {
				t.Fatalf("contexts/ tree differs\nours   %v\ndocker %v", ourTree, theirTree)
			}
			for rel, mode := range theirTree {
				if mode.IsDir() {
					continue
				}
				a, b := mustRead(t, filepath.Join(theirs, "contexts", rel)), mustRead(t, filepath.Join(ours, "contexts", rel))
				if !bytes.Equal(a, b) {
					t.Errorf("contexts/%s differs\nours   %q\ndocker %q", rel, b, a)
				}
			}
		})
	}
}

func TestDockerCLIReadsOurContext(t *testing.T) {
	docker := needDocker(t)
	configDir := filepath.Join(t.TempDir(), "fresh", ".docker")
	c := testContext(t, "dockgate-prod")
	// Port 1 on loopback: nothing listens, so the docker CLI gets as far as
	// loading the TLS material and dialing, and fails only there.
	c.Host = "tcp://127.0.0.1:1"
	if err := WriteContext(configDir, c, false); err != nil {
		t.Fatal(err)
	}

	var inspected []struct {
		Name      string
		Metadata  struct{ Description string }
		Endpoints map[string]struct {
			Host          string
			SkipTLSVerify bool
		}
		TLSMaterial map[string][]string
	}
	out := runDocker(t, docker, configDir, "--context", c.Name, "context", "inspect")
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("docker context inspect printed %q (%v)", out, err)
	}
	got := inspected[0]
	if got.Name != c.Name || got.Metadata.Description != c.Description || got.Endpoints["docker"].Host != c.Host ||
		got.Endpoints["docker"].SkipTLSVerify {
		t.Errorf("docker context inspect = %+v, want name %s, description %q, host %s", got, c.Name, c.Description, c.Host)
	}
	if want := []string{"ca.pem", "cert.pem", "key.pem"}; !reflect.DeepEqual(got.TLSMaterial["docker"], want) {
		t.Errorf("TLS material = %v, want %v", got.TLSMaterial["docker"], want)
	}

	if names := runDocker(t, docker, configDir, "context", "ls", "--format", "{{.Name}}"); !strings.Contains("\n"+names, "\n"+c.Name+"\n") {
		t.Errorf("docker context ls lists %q, want %s among them", names, c.Name)
	}

	if err := UseContext(configDir, c.Name); err != nil {
		t.Fatal(err)
	}
	// `docker context show` is newer than Debian's docker 20.10; inspecting
	// without a name shows the current context in every version.
	if shown := strings.TrimSpace(runDocker(t, docker, configDir, "context", "inspect", "--format", "{{.Name}}")); shown != c.Name {
		t.Errorf("current context per docker context inspect = %q, want %s", shown, c.Name)
	}

	// The docker CLI loads the key pair and CA, and fails only to connect.
	cmd := dockerCmd(docker, configDir, "version", "--format", "{{.Server.Version}}")
	msg, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("docker version succeeded against a closed port: %s", msg)
	}
	// A context whose TLS material it cannot load fails earlier, with
	// "Failed to initialize: ..." instead.
	if want := "Cannot connect to the Docker daemon at " + c.Host; !bytes.Contains(msg, []byte(want)) {
		t.Errorf("docker version failed with %q, want it to get as far as %q", msg, want)
	}
}

func TestDockerCLIKeepsWorkingWithOurConfigJSON(t *testing.T) {
	docker := needDocker(t)
	configDir := t.TempDir()
	for _, name := range []string{"one.ctx", "two.ctx"} {
		c := testContext(t, name)
		if err := WriteContext(configDir, c, false); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(configDir, "config.json"), []byte(`{"auths":{},"psFormat":"table {{.ID}}","x-unknown":true}`), 0o600)
	if err := UseContext(configDir, "one.ctx"); err != nil {
		t.Fatal(err)
	}
	// The docker CLI switches contexts in the file we wrote and we read its
	// choice back.
	runDocker(t, docker, configDir, "context", "use", "two.ctx")
	if got, err := CurrentContext(configDir); err != nil || got != "two.ctx" {
		t.Errorf("CurrentContext after docker context use = %q, %v; want two.ctx", got, err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(mustRead(t, filepath.Join(configDir, "config.json")), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["psFormat"] != "table {{.ID}}" {
		t.Errorf("psFormat lost: %v", cfg)
	}
}

func needDocker(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker CLI not installed")
	}
	return path
}

// dockerCmd runs the docker CLI against configDir only, with no daemon
// address inherited from the environment.
func dockerCmd(docker, configDir string, args ...string) *exec.Cmd {
	cmd := exec.Command(docker, args...)
	cmd.Env = []string{"DOCKER_CONFIG=" + configDir, "HOME=" + configDir, "PATH=" + os.Getenv("PATH")}
	return cmd
}

func runDocker(t *testing.T, docker, configDir string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := dockerCmd(docker, configDir, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// treeModes maps every path under root (relative, "." for root) to its type
// and permission bits.
func treeModes(t *testing.T, root string) map[string]fs.FileMode {
	t.Helper()
	modes := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		modes[filepath.ToSlash(rel)] = fi.Mode().Type() | fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return modes
}
