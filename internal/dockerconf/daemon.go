package dockerconf

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Paths that Docker's Linux packages use.
const (
	// LocalSocket is dockerd's default Unix socket. daemon.json lists it next
	// to the TCP address because "hosts" replaces the default rather than
	// adding to it: without it, local `docker` commands would stop working.
	LocalSocket = "unix:///var/run/docker.sock"
	// DefaultDockerd is where Docker's own packages install dockerd (Debian's
	// docker.io uses /usr/sbin/dockerd; see `systemctl cat docker`).
	DefaultDockerd = "/usr/bin/dockerd"
	// DaemonJSONPath is dockerd's default --config-file.
	DaemonJSONPath = "/etc/docker/daemon.json"
	// SystemdDropInPath is a drop-in for Docker's docker.service unit.
	SystemdDropInPath = "/etc/systemd/system/docker.service.d/dockgate.conf"
)

// Daemon is what dockerd needs to serve its API over mutual TLS: where to
// listen and the server's files in Docker's layout.
type Daemon struct {
	Listen Host
	Files  CertFiles
}

// Args returns dockerd's command-line flags: --tlsverify makes dockerd
// require client certificates signed by --tlscacert.
func (d Daemon) Args() []string {
	return []string{
		"-H", d.Listen.String(),
		"--tlsverify",
		"--tlscacert=" + d.Files.CA,
		"--tlscert=" + d.Files.Cert,
		"--tlskey=" + d.Files.Key,
	}
}

// FlagsLine is Args as one line for a POSIX shell, quoting where needed.
func (d Daemon) FlagsLine() string {
	args := d.Args()
	for i, a := range args {
		name, value, ok := strings.Cut(a, "=")
		if ok && strings.HasPrefix(name, "--") {
			args[i] = name + "=" + QuoteSh(value)
		} else {
			args[i] = QuoteSh(a)
		}
	}
	return strings.Join(args, " ")
}

// daemonJSON has the keys dockerd reads from daemon.json, in the order a
// reader expects them.
type daemonJSON struct {
	Hosts     []string `json:"hosts"`
	TLS       bool     `json:"tls"`
	TLSVerify bool     `json:"tlsverify"`
	TLSCACert string   `json:"tlscacert"`
	TLSCert   string   `json:"tlscert"`
	TLSKey    string   `json:"tlskey"`
}

// JSON returns the daemon.json keys for d, indented, with a final newline.
// "hosts" holds LocalSocket as well as the TCP address.
func (d Daemon) JSON() ([]byte, error) {
	out, err := json.MarshalIndent(daemonJSON{
		Hosts:     []string{LocalSocket, d.Listen.String()},
		TLS:       true,
		TLSVerify: true,
		TLSCACert: d.Files.CA,
		TLSCert:   d.Files.Cert,
		TLSKey:    d.Files.Key,
	}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// SystemdDropIn returns the drop-in for docker.service and the daemon.json
// it goes with, each introduced by a comment naming its file. Packaged units
// start `dockerd -H fd://`, and dockerd refuses to start when "hosts" is set
// both as a flag and in daemon.json, so the drop-in clears ExecStart and
// starts dockerd without -H. dockerdPath is the daemon binary of the unit
// being overridden.
func (d Daemon) SystemdDropIn(dockerdPath string) (string, error) {
	if !strings.HasPrefix(dockerdPath, "/") || oneLine(dockerdPath) != dockerdPath {
		return "", fmt.Errorf("invalid dockerd path %q: systemd needs an absolute path on one line", dockerdPath)
	}
	js, err := d.JSON()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# %s
#
# dockerd refuses to start when "hosts" is given both as a -H flag and in
# daemon.json ("the following directives are specified both as a flag and in
# the configuration file: hosts"). Packaged units run "dockerd -H fd://", so
# this drop-in clears ExecStart and starts dockerd without -H; daemon.json
# below lists the local socket and the TLS address instead. Compare with
# "systemctl cat docker" and keep any other flags your unit passes; dockerd
# finds a system containerd on its own.
[Service]
ExecStart=
ExecStart=%s

# %s (merge these keys into an existing file)
%s
# Then apply both:
#   sudo systemctl daemon-reload && sudo systemctl restart docker
`, SystemdDropInPath, systemdEscape(dockerdPath), DaemonJSONPath, js)
	return b.String(), nil
}

// systemdEscape makes a path one word on an ExecStart= line: systemd
// expands % specifiers and $ variables, and splits on spaces unless quoted.
func systemdEscape(path string) string {
	path = strings.NewReplacer("%", "%%", "$", "$$").Replace(path)
	if !strings.ContainsAny(path, " \t\"'\\") {
		return path
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(path) + `"`
}

// FindDockerd returns the dockerd that lookPath (exec.LookPath) finds, or
// DefaultDockerd when there is none on this machine.
func FindDockerd(lookPath func(string) (string, error)) string {
	if p, err := lookPath("dockerd"); err == nil && strings.HasPrefix(p, "/") {
		return p
	}
	return DefaultDockerd
}
