package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// localUser is a real user created for one test with useradd.
type localUser struct {
	name     string
	uid, gid int
	home     string // owned by the user: its DOCKER_CONFIG lives here
}

// unixEnv is a gateway with a local socket, and the local users of the
// test: a (rule user: -> dev), b (rule unix_group: -> tester) and c (no
// rule; in the socket's group, so only the policy stops it).
type unixEnv struct {
	*gatewayEnv
	socket    string
	group     string // the socket's group
	cfgPath   string
	cfg       string
	auditPath string
	a, b, c   localUser
	daemon    *daemonAPI
}

// unixConfig: @SOCK@, @GROUP@, @A@, @BGROUP@ and @AUDIT@ are replaced.
const unixConfig = `
listen_unix: @SOCK@
listen_unix_mode: "0660"
listen_unix_group: @GROUP@
audit:
  path: @AUDIT@
roles:
  dev:
    allow: [container.*, exec.*, system.ping, system.version]
    owner_isolation: true
  tester:
    allow: [container.*, system.ping, system.version]
    owner_isolation: true
clients:
  - group: admins
    role: admin
  - user: @A@
    role: dev
  - unix_group: @BGROUP@
    role: tester
`

func startUnixEnv(t *testing.T) *unixEnv {
	t.Helper()
	suffix := randomSuffix(t)
	group, bGroup := "dgsock"+suffix, "dgteam"+suffix
	addGroup(t, group)
	addGroup(t, bGroup)
	// The socket's directory must be reachable by the users; t.TempDir is
	// root's alone.
	base, err := os.MkdirTemp("", "dockgate-unix-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &unixEnv{
		socket: filepath.Join(base, "run", "docker.sock"), group: group,
		a: addUser(t, base, "dgusera"+suffix, group),
		b: addUser(t, base, "dguserb"+suffix, group+","+bGroup),
		c: addUser(t, base, "dguserc"+suffix, group),
	}
	dir := t.TempDir()
	u.auditPath = filepath.Join(dir, "audit.jsonl")
	u.cfg = strings.NewReplacer("@SOCK@", u.socket, "@GROUP@", group, "@A@", u.a.name,
		"@BGROUP@", bGroup, "@AUDIT@", u.auditPath).Replace(unixConfig)
	u.cfgPath = filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(u.cfgPath, []byte(u.cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	u.gatewayEnv = startGatewayEnv(t, "--config", u.cfgPath)
	u.daemon = newDaemonAPI(u.d.Host())
	return u
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func addGroup(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("groupadd", name).CombinedOutput(); err != nil {
		t.Fatalf("groupadd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("groupdel", name).Run() })
}

// addUser creates a user without a login shell, in groups (comma list).
func addUser(t *testing.T, base, name, groups string) localUser {
	t.Helper()
	home := filepath.Join(base, name)
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", home,
		"--shell", "/usr/sbin/nologin", "--groups", groups, name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	lu := localUser{name: name, home: home}
	lu.uid, _ = strconv.Atoi(u.Uid)
	lu.gid, _ = strconv.Atoi(u.Gid)
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, lu.uid, lu.gid); err != nil {
		t.Fatal(err)
	}
	return lu
}

// dockerAsUser runs the real docker CLI as u (setpriv drops to its uid,
// gid and groups) against the gateway's local socket.
func (u *unixEnv) dockerAsUser(who localUser, stdin []byte, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append([]string{"--reuid=" + strconv.Itoa(who.uid), "--regid=" + strconv.Itoa(who.gid), "--init-groups", "docker"}, args...)
	cmd := exec.CommandContext(ctx, "setpriv", argv...)
	cmd.Env = append(cleanEnv(), "HOME="+who.home, "DOCKER_CONFIG="+filepath.Join(who.home, ".docker"),
		"DOCKER_HOST=unix://"+u.socket, "DOCKER_BUILDKIT=0")
	cmd.Dir = who.home
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func (u *unixEnv) mustDockerAsUser(t *testing.T, who localUser, stdin []byte, args ...string) string {
	t.Helper()
	out, errOut, err := u.dockerAsUser(who, stdin, args...)
	if err != nil {
		t.Fatalf("docker %s as %s: %v\nstdout: %s\nstderr: %s\ngateway logs:\n%s", strings.Join(args, " "), who.name, err, out, errOut, u.logs.String())
	}
	return strings.TrimSpace(out)
}

// dockerAsRoot runs the docker CLI as this process (root) on the socket.
func (u *unixEnv) dockerAsRoot(args ...string) (string, string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(cleanEnv(), "DOCKER_HOST=unix://"+u.socket, "DOCKER_CONFIG="+u.cli.dockerCfg)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func TestLocalSocketPerUserRoles(t *testing.T) {
	u := startUnixEnv(t)
	img := u.d.Image()

	t.Run("socket file has the configured mode and group", func(t *testing.T) {
		info, err := os.Lstat(u.socket)
		if err != nil {
			t.Fatal(err)
		}
		grp, err := user.LookupGroup(u.group)
		if err != nil {
			t.Fatal(err)
		}
		gid, _ := strconv.Atoi(grp.Gid)
		st := info.Sys().(*syscall.Stat_t)
		if info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o660 || int(st.Gid) != gid || st.Uid != 0 {
			t.Errorf("socket %v uid %d gid %d; want a 0660 socket owned by root, group %s (%d)", info.Mode(), st.Uid, st.Gid, u.group, gid)
		}
	})

	var aContainer string
	t.Run("user a runs, execs and attaches", func(t *testing.T) {
		aContainer = u.mustDockerAsUser(t, u.a, nil, "run", "-d", "--network", "none", img, "sleep", "300")
		c := u.daemon.mustContainer(t, aContainer)
		if want := fmt.Sprintf("uid:%d", u.a.uid); c.Config.Labels[ownerLabelKey] != want || !c.State.Running {
			t.Fatalf("daemon: owner %q running %v; want owner %q, running", c.Config.Labels[ownerLabelKey], c.State.Running, want)
		}
		if out := u.mustDockerAsUser(t, u.a, []byte("through the local socket\n"), "exec", "-i", aContainer, "cat"); out != "through the local socket" {
			t.Errorf("exec -i cat = %q", out)
		}
		if out := u.mustDockerAsUser(t, u.a, nil, "run", "--rm", "--network", "none", img, "echo", "hello-unix"); out != "hello-unix" {
			t.Errorf("run --rm = %q", out)
		}
		if out := u.mustDockerAsUser(t, u.a, []byte("attached stdin\n"), "run", "--rm", "-i", "--network", "none", img, "cat"); out != "attached stdin" {
			t.Errorf("run -i cat = %q", out)
		}
		logged := u.mustDockerAsUser(t, u.a, nil, "run", "-d", "--network", "none", img, "sh", "-c", "echo one; echo two")
		t.Cleanup(func() { u.daemon.removeContainer(t, logged) })
		if out := u.mustDockerAsUser(t, u.a, nil, "logs", "-f", logged); out != "one\ntwo" {
			t.Errorf("logs -f = %q", out)
		}
	})
	if aContainer == "" {
		t.FailNow()
	}
	t.Cleanup(func() { u.daemon.removeContainer(t, aContainer) })

	t.Run("user b cannot see, inspect or stop a's container", func(t *testing.T) {
		// The container is not found for b, so the CLI goes on to images,
		// which tester may not inspect.
		if out, errOut, err := u.dockerAsUser(u.b, nil, "inspect", "--type", "container", aContainer); err == nil || strings.Contains(out, aContainer) || !strings.Contains(errOut, "No such container") {
			t.Errorf("b inspected a's container: err %v stdout %s stderr %s", err, out, errOut)
		}
		if _, _, err := u.dockerAsUser(u.b, nil, "stop", "-t", "0", aContainer); err == nil {
			t.Error("b stopped a's container")
		}
		if out := u.mustDockerAsUser(t, u.b, nil, "ps", "-q", "--no-trunc"); strings.Contains(out, aContainer) {
			t.Errorf("b's ps lists a's container: %q", out)
		}
		if c := u.daemon.mustContainer(t, aContainer); !c.State.Running {
			t.Errorf("daemon: a's container is %s after b's attempts", c.State.Status)
		}
	})

	t.Run("user b has its own role", func(t *testing.T) {
		bContainer := u.mustDockerAsUser(t, u.b, nil, "run", "-d", "--network", "none", img, "sleep", "300")
		t.Cleanup(func() { u.daemon.removeContainer(t, bContainer) })
		if c := u.daemon.mustContainer(t, bContainer); c.Config.Labels[ownerLabelKey] != fmt.Sprintf("uid:%d", u.b.uid) {
			t.Errorf("daemon: b's container owner %q", c.Config.Labels[ownerLabelKey])
		}
		// tester has no exec.*: refused by the role, not by isolation.
		_, errOut, err := u.dockerAsUser(u.b, nil, "exec", bContainer, "touch", "/tmp/b-was-here")
		if err == nil || !strings.Contains(errOut, "403") {
			t.Errorf("b's exec: err %v stderr %s; want a 403", err, errOut)
		}
		if out := u.docker("exec", bContainer, "ls", "/tmp"); strings.Contains(out, "b-was-here") {
			t.Error("b's refused exec ran in its container")
		}
		// and a cannot touch b's container either.
		if _, _, err := u.dockerAsUser(u.a, nil, "stop", "-t", "0", bContainer); err == nil {
			t.Error("a stopped b's container")
		}
		if c := u.daemon.mustContainer(t, bContainer); !c.State.Running {
			t.Errorf("daemon: b's container is %s after a's attempt", c.State.Status)
		}
	})

	t.Run("a user without a rule is refused naming its uid", func(t *testing.T) {
		_, errOut, err := u.dockerAsUser(u.c, nil, "ps")
		want := fmt.Sprintf("access denied for uid %d (%s): no clients: entry matches; add one with uid:, user: or unix_group:", u.c.uid, u.c.name)
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("c: err %v stderr %q; want %q", err, errOut, want)
		}
	})

	t.Run("root is refused until a rule names it", func(t *testing.T) {
		_, errOut, err := u.dockerAsRoot("ps")
		if want := "access denied for uid 0 (root)"; err == nil || !strings.Contains(errOut, want) {
			t.Fatalf("root: err %v stderr %q; want %q", err, errOut, want)
		}
		cfg := u.cfg + "  - uid: 0\n    role: read-only\n"
		if err := os.WriteFile(u.cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		u.cmd.Process.Signal(syscall.SIGHUP)
		deadline := time.Now().Add(15 * time.Second)
		for {
			out, errOut, err := u.dockerAsRoot("ps", "-q", "--no-trunc")
			if err == nil {
				if !strings.Contains(out, aContainer) {
					t.Errorf("root's ps (read-only, no isolation) lacks a's container: %q", out)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("root still refused after adding uid: 0: %s", errOut)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("shutdown removes the socket", func(t *testing.T) {
		u.stop()
		if _, err := os.Lstat(u.socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket after shutdown: %v", err)
		}
	})

	t.Run("audit records name the peer", func(t *testing.T) {
		data, err := os.ReadFile(u.auditPath) // complete: the gateway has exited
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`"cn":"uid:%d"`, u.a.uid)
		if !bytes.Contains(data, []byte(want)) || !bytes.Contains(data, []byte(`"remote":"unix:pid=`)) {
			t.Errorf("audit log lacks %s with a unix:pid= remote:\n%s", want, data)
		}
	})
}
