package dockerconf

import (
	"encoding/json"
	"errors"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func testDaemon(dir string) Daemon {
	return Daemon{Listen: Host{Hostname: "0.0.0.0", Port: 2376}, Files: FilesIn(dir)}
}

func TestDaemonArgs(t *testing.T) {
	got := testDaemon("/var/lib/dockgate/servers/web").Args()
	want := []string{
		"-H", "tcp://0.0.0.0:2376", "--tlsverify",
		"--tlscacert=/var/lib/dockgate/servers/web/ca.pem",
		"--tlscert=/var/lib/dockgate/servers/web/cert.pem",
		"--tlskey=/var/lib/dockgate/servers/web/key.pem",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Args() = %q, want %q", got, want)
	}
}

func TestDaemonFlagsLine(t *testing.T) {
	d := testDaemon("/s/servers/web")
	want := "-H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/s/servers/web/ca.pem --tlscert=/s/servers/web/cert.pem --tlskey=/s/servers/web/key.pem"
	if got := d.FlagsLine(); got != want {
		t.Errorf("FlagsLine() =\n%s\nwant\n%s", got, want)
	}
}

// TestDaemonFlagsLineInShell checks that a shell splits the line back into
// exactly Args, whatever the paths contain.
func TestDaemonFlagsLineInShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, dir := range []string{"/plain", "/with space/it's", `/$HOME/"q"`} {
		t.Run(dir, func(t *testing.T) {
			d := testDaemon(dir)
			out, err := exec.Command(sh, "-c", `printf '%s\0' `+d.FlagsLine()).Output()
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if want := d.Args(); !reflect.DeepEqual(got, want) {
				t.Errorf("sh split FlagsLine into %q, want %q", got, want)
			}
		})
	}
}

func TestDaemonJSON(t *testing.T) {
	d := testDaemon(`/s/servers/we"b`)
	d.Listen = Host{Hostname: "::", Port: 12376}
	js, err := d.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js, &got); err != nil {
		t.Fatalf("JSON() is not JSON: %v\n%s", err, js)
	}
	want := map[string]any{
		"hosts":     []any{"unix:///var/run/docker.sock", "tcp://[::]:12376"},
		"tls":       true,
		"tlsverify": true,
		"tlscacert": `/s/servers/we"b/ca.pem`,
		"tlscert":   `/s/servers/we"b/cert.pem`,
		"tlskey":    `/s/servers/we"b/key.pem`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("JSON() = %v, want %v", got, want)
	}
	if !strings.HasSuffix(string(js), "}\n") {
		t.Errorf("JSON() does not end with a newline: %q", js)
	}
}

func TestSystemdDropIn(t *testing.T) {
	d := testDaemon("/s/servers/web")
	out, err := d.SystemdDropIn("/usr/sbin/dockerd")
	if err != nil {
		t.Fatal(err)
	}
	dropIn, daemonJSON, ok := strings.Cut(out, "# "+DaemonJSONPath)
	if !ok {
		t.Fatalf("output has no daemon.json part:\n%s", out)
	}
	if !strings.HasPrefix(dropIn, "# "+SystemdDropInPath+"\n") {
		t.Errorf("drop-in does not start by naming its file:\n%s", dropIn)
	}
	// The unit lines, without comments: ExecStart is cleared, then set
	// without any -H flag.
	var unit []string
	for line := range strings.Lines(dropIn) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			unit = append(unit, line)
		}
	}
	if want := []string{"[Service]", "ExecStart=", "ExecStart=/usr/sbin/dockerd"}; !reflect.DeepEqual(unit, want) {
		t.Errorf("drop-in unit lines = %q, want %q", unit, want)
	}
	// The daemon.json part carries the hosts, since the flag no longer does.
	start, end := strings.Index(daemonJSON, "{"), strings.LastIndex(daemonJSON, "}")
	var cfg struct{ Hosts []string }
	if err := json.Unmarshal([]byte(daemonJSON[start:end+1]), &cfg); err != nil {
		t.Fatalf("daemon.json part does not parse: %v\n%s", err, daemonJSON)
	}
	if want := []string{LocalSocket, "tcp://0.0.0.0:2376"}; !reflect.DeepEqual(cfg.Hosts, want) {
		t.Errorf("daemon.json hosts = %q, want %q", cfg.Hosts, want)
	}
}

func TestSystemdDropInRefusesBadPath(t *testing.T) {
	for _, p := range []string{"dockerd", "", "/usr/bin/dockerd\nExecStartPre=/bin/evil"} {
		if _, err := testDaemon("/s").SystemdDropIn(p); err == nil {
			t.Errorf("SystemdDropIn(%q) succeeded, want an error", p)
		}
	}
}

func TestSystemdEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/bin/dockerd", "/usr/bin/dockerd"},
		{"/opt/100%/dockerd", "/opt/100%%/dockerd"},
		{"/opt/$x/dockerd", "/opt/$$x/dockerd"},
		{"/opt/my docker/dockerd", `"/opt/my docker/dockerd"`},
		{`/opt/a"b/dockerd`, `"/opt/a\"b/dockerd"`},
	}
	for _, tt := range tests {
		if got := systemdEscape(tt.in); got != tt.want {
			t.Errorf("systemdEscape(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestFindDockerd(t *testing.T) {
	found := func(string) (string, error) { return "/usr/sbin/dockerd", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	relative := func(string) (string, error) { return "bin/dockerd", nil }
	if got := FindDockerd(found); got != "/usr/sbin/dockerd" {
		t.Errorf("FindDockerd(found) = %q", got)
	}
	if got := FindDockerd(missing); got != DefaultDockerd {
		t.Errorf("FindDockerd(missing) = %q, want %q", got, DefaultDockerd)
	}
	if got := FindDockerd(relative); got != DefaultDockerd {
		t.Errorf("FindDockerd(relative) = %q, want %q", got, DefaultDockerd)
	}
}
