package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

// TestUpFromNothingAndAgain runs the one-command main job on an empty
// state dir, uses the context it made, then runs it again and checks that
// nothing new was issued.
func TestUpFromNothingAndAgain(t *testing.T) {
	upFromNothingAndAgain(t)
}

// TestUpOnAPostgresStore is the same with DOCKGATE_STORE: everything up
// records goes to PostgreSQL, and no SQLite inventory is created.
func TestUpOnAPostgresStore(t *testing.T) {
	cli := upFromNothingAndAgain(t, "DOCKGATE_STORE="+storetest.PostgresURL(t))
	if _, err := os.Stat(filepath.Join(cli.stateDir, store.DBFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("up on a PostgreSQL store left %s in the state directory: %v", store.DBFile, err)
	}
}

func upFromNothingAndAgain(t *testing.T, extraEnv ...string) *dockgateCLI {
	d := dockertest.ForTest(t)
	cli := newDockgateCLI(t, dockertest.BuildDockgate(t), extraEnv...)
	listen := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	admin := fmt.Sprintf("127.0.0.1:%d", dockertest.FreeLoopbackPort(t))
	up := func() string {
		t.Helper()
		cmd := exec.Command(cli.bin, "up", "--insecure-no-passphrase", "--listen", listen,
			"--admin-listen", admin, "--upstream", d.Host())
		cmd.Env = cli.env()
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		waitHTTP200(t, "http://"+admin+"/readyz", out)
		if !strings.Contains(out.String(), "docker --context dockgate ps") {
			t.Fatalf("up did not print the next command:\n%s", out)
		}
		stdout, stderr, err := dockertest.RunDocker(t.Context(), append(cleanEnv(), "DOCKER_CONFIG="+cli.dockerCfg),
			"--context", "dockgate", "run", "--rm", "--network", "none", d.Image(), "echo", "up-ok")
		if err != nil || strings.TrimSpace(stdout) != "up-ok" {
			t.Fatalf("docker --context dockgate run: %v\n%s%s\nup output:\n%s", err, stdout, stderr, out)
		}
		return cli.run("certs", "--json")
	}
	first := up()
	second := up()
	if serials(t, first) != serials(t, second) {
		t.Fatalf("second up changed the certificates:\nfirst:  %s\nsecond: %s", first, second)
	}
	if n := strings.Count(serials(t, first), ","); n != 2 {
		t.Fatalf("want CA, server and client certificates, got %s", serials(t, first))
	}
	return cli
}

func serials(t *testing.T, certsJSON string) string {
	t.Helper()
	var certs []struct{ Serial string }
	if err := json.Unmarshal([]byte(certsJSON), &certs); err != nil {
		t.Fatalf("certs --json: %v\n%s", err, certsJSON)
	}
	var s []string
	for _, c := range certs {
		s = append(s, c.Serial)
	}
	return strings.Join(s, ",")
}

func waitHTTP200(t *testing.T, url string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200; output:\n%s", url, logs)
}
