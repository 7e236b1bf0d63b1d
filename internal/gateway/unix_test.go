package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

// startUnixGateway runs a test gateway with a local socket and the given
// client rules; it returns the socket's path once it exists.
func startUnixGateway(t *testing.T, clients []config.ClientRule) (*testGateway, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "run", "docker.sock")
	tg := startTestGateway(t, func(c *config.Config) {
		c.ListenUnix = path
		c.Clients = clients
	})
	waitFor(t, "the socket at "+path, func() bool {
		_, err := os.Lstat(path)
		return err == nil
	})
	return tg, path
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
}

func getUnix(t *testing.T, path, urlPath string) (int, string) {
	t.Helper()
	resp, err := unixClient(path).Get("http://docker" + urlPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func myUID() uint32 { return uint32(os.Getuid()) }

func TestLocalSocketGivesThePeerItsUIDRole(t *testing.T) {
	uid := myUID()
	tg, path := startUnixGateway(t, []config.ClientRule{{UID: &uid, Role: config.RoleReadOnly}})
	info, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want a socket with 0660", info.Mode())
	}
	if status, body := getUnix(t, path, "/v1.41/containers/json"); status != http.StatusOK || !strings.Contains(body, `"Id":"abc"`) {
		t.Errorf("containers/json as uid %d = %d %s, want 200 from the daemon", uid, status, body)
	}
	status, body := getUnix(t, path, identity.WhoamiPath)
	var who identity.Whoami
	if err := json.Unmarshal([]byte(body), &who); err != nil || status != http.StatusOK {
		t.Fatalf("whoami = %d %s (%v)", status, body, err)
	}
	if want := "uid:" + strconv.Itoa(int(uid)); who.CN != want || who.Role != config.RoleReadOnly || who.UID == nil || *who.UID != uid {
		t.Errorf("whoami = %+v, want cn %s role read-only", who, want)
	}
	tg.stop()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after shutdown: %v", err)
	}
}

func TestLocalSocketRefusesAPeerWithoutRule(t *testing.T) {
	// Certificate rules only: a local peer, root included, matches none.
	_, path := startUnixGateway(t, []config.ClientRule{{Group: "admins", Role: config.RoleAdmin}, {CN: "*", Role: config.RoleAdmin}})
	status, body := getUnix(t, path, "/v1.41/containers/json")
	want := "dockgate: access denied for uid " + strconv.Itoa(os.Getuid())
	if status != http.StatusForbidden || !strings.Contains(body, want) || !strings.Contains(body, "add one with uid:, user: or unix_group:") {
		t.Errorf("got %d %s, want 403 naming %q", status, body, want)
	}
}

func TestLocalSocketStreamsExecBothWays(t *testing.T) {
	uid := myUID()
	_, path := startUnixGateway(t, []config.ClientRule{{UID: &uid, Role: config.RoleAdmin}})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /v1.41/exec/e1/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"+
		"Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 2\r\n\r\n{}")
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "101") {
		t.Fatalf("upgrade answer %q, %v", buf[:n], err)
	}
	io.WriteString(c, "ping over unix")
	c.(*net.UnixConn).CloseWrite()
	rest, _ := io.ReadAll(c)
	if got := string(buf[:n]) + string(rest); !strings.Contains(got, "ping over unix") {
		t.Errorf("stream echoed %q, want the input back after half-close", got)
	}
}

func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	live := filepath.Join(dir, "live.sock")
	liveLn, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer liveLn.Close()
	tests := []struct {
		path    string
		wantErr string // "" : cleared
	}{
		{filepath.Join(dir, "absent.sock"), ""},
		{stale, ""},
		{file, "exists and is not a socket"},
		{dir, "exists and is not a socket"},
		{live, "is in use by another process"},
	}
	for _, tt := range tests {
		err := removeStaleSocket(tt.path)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("removeStaleSocket(%s) = %v, want nil", tt.path, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("removeStaleSocket(%s) = %v, want %q", tt.path, err, tt.wantErr)
		}
	}
	if _, err := os.Lstat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale socket not removed: %v", err)
	}
}

func TestPeerOfReadsTheKernelsCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	p, err := peerOf(server)
	if err != nil {
		t.Fatal(err)
	}
	if p.UID != uint32(os.Getuid()) || p.GID != uint32(os.Getgid()) || p.PID != int32(os.Getpid()) {
		t.Errorf("peer = %+v, want uid %d gid %d pid %d", p, os.Getuid(), os.Getgid(), os.Getpid())
	}
}

func TestOpenUnixSocket(t *testing.T) {
	tg := startTestGateway(t, nil)
	dir := t.TempDir()
	file := filepath.Join(dir, "not-a-socket")
	os.WriteFile(file, nil, 0o600)
	tests := []struct {
		name    string
		path    string
		mode    string
		group   string
		wantErr string
	}{
		{"a file in the way", file, "0660", "", "exists and is not a socket"},
		{"unknown group", filepath.Join(dir, "g.sock"), "0660", "no-such-group-dockgate", `listen_unix_group: group "no-such-group-dockgate"`},
		{"gid and mode", filepath.Join(dir, "sub", "ok.sock"), "0600", strconv.Itoa(os.Getgid()), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := *tg.material.Config
			cfg.ListenUnix, cfg.ListenUnixMode, cfg.ListenUnixGroup = tt.path, tt.mode, tt.group
			s, err := tg.openUnixSocket(&cfg, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("openUnixSocket = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			info, err := os.Lstat(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", info.Mode())
			}
			entries, _ := os.ReadDir(filepath.Dir(tt.path))
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only the socket (no temporary name left)", len(entries))
			}
			s.close()
			if _, err := os.Lstat(tt.path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket after close: %v", err)
			}
		})
	}
}
