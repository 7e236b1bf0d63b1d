package dockerconf

import (
	"fmt"
	"html"
	"path/filepath"
	"strings"
)

// RenewService is a per-user service that keeps a docker context's client
// certificate renewed: it runs `dockgate renew --context NAME --watch`
// and is restarted by the system's service manager (a systemd user unit on
// Linux, a launchd agent on macOS, a scheduled task on Windows).
type RenewService struct {
	Binary       string // absolute path of dockgate
	Context      string // docker context to renew
	DockerConfig string // the docker CLI configuration directory holding it
}

// Name is the service's name: dockgate-renew-CONTEXT.
func (s RenewService) Name() string { return "dockgate-renew-" + s.Context }

// launchdLabel is the macOS agent's label, reverse-DNS as launchd expects.
func (s RenewService) launchdLabel() string { return "io.dockgate.renew." + s.Context }

// Args are the service's command line.
func (s RenewService) Args() []string {
	return []string{s.Binary, "renew", "--context", s.Context, "--watch"}
}

// SystemdUnitPath is where the user unit goes under $XDG_CONFIG_HOME
// (~/.config): systemd's per-user unit search path.
func (s RenewService) SystemdUnitPath(configHome string) string {
	return filepath.Join(configHome, "systemd", "user", s.Name()+".service")
}

// SystemdUnit is the user unit. Restart=on-failure covers a gateway that
// is briefly unreachable beyond renew's own retries; a renewal refused for
// good (revoked, expired) ends the watch with an error, and systemd's
// start limit then stops restarting it.
func (s RenewService) SystemdUnit() string {
	quoted := make([]string, len(s.Args()))
	for i, a := range s.Args() {
		quoted[i] = systemdQuote(a)
	}
	return fmt.Sprintf(`[Unit]
Description=Renew the client certificate of docker context %s (dockgate)
Wants=network-online.target
After=network-online.target

[Service]
Environment=%s
ExecStart=%s
Restart=on-failure
RestartSec=60

[Install]
WantedBy=default.target
`, s.Context, systemdQuote("DOCKER_CONFIG="+s.DockerConfig), strings.Join(quoted, " "))
}

// systemdQuote quotes a word for a unit file's command line: double quotes,
// with backslash, quote, and the specifier and variable signs escaped.
func systemdQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`)
	return `"` + r.Replace(s) + `"`
}

// LaunchdPlistPath is where the agent goes under the user's home.
func (s RenewService) LaunchdPlistPath(home string) string {
	return filepath.Join(home, "Library", "LaunchAgents", s.launchdLabel()+".plist")
}

// LaunchdPlist is the launchd agent: started at login, restarted when it
// exits with an error.
func (s RenewService) LaunchdPlist() string {
	var args strings.Builder
	for _, a := range s.Args() {
		fmt.Fprintf(&args, "\t\t<string>%s</string>\n", html.EscapeString(a))
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
	<key>Label</key>
	<string>%s</string>
	<key>ProgramArguments</key>
	<array>
%s	</array>
	<key>EnvironmentVariables</key>
	<dict>
		<key>DOCKER_CONFIG</key>
		<string>%s</string>
	</dict>
	<key>RunAtLoad</key>
	<true/>
	<key>KeepAlive</key>
	<dict>
		<key>SuccessfulExit</key>
		<false/>
	</dict>
</dict>
</plist>
`, html.EscapeString(s.launchdLabel()), args.String(), html.EscapeString(s.DockerConfig))
}

// WindowsTask is the schtasks command that runs the watch at logon; the
// scheduled task inherits the user's environment, DOCKER_CONFIG included.
func (s RenewService) WindowsTask() string {
	return fmt.Sprintf(`schtasks /Create /SC ONLOGON /TN "%s" /TR "\"%s\" renew --context %s --watch"`,
		s.Name(), s.Binary, s.Context)
}
