package dockerconf

import (
	"os/exec"
	"strings"
	"testing"
)

// hardValues are values that break naive quoting.
var hardValues = []string{
	"",
	"plain",
	"/path/with space/clients/alice",
	"it's",
	`a"b`,
	`back\slash\`,
	`$HOME $(id) ` + "`id`",
	"line\nbreak",
	"tab\there",
	"glob*?[x]",
	"semi;colon&amp|pipe",
	"trailing newline\n",
	"unicode é ‘curly’ ‛x‚",
	`\'`,
	"'",
	"#comment",
	"~tilde",
	"-n",
}

func TestQuoteSh(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tcp://127.0.0.1:2376", "tcp://127.0.0.1:2376"},
		{"1", "1"},
		{"", "''"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$x", "'$x'"},
		{"~", "'~'"},
	}
	for _, tt := range tests {
		if got := QuoteSh(tt.in); got != tt.want {
			t.Errorf("QuoteSh(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestQuoteFish(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain/path", "/plain/path"},
		{"a b", "'a b'"},
		{"it's", `'it\'s'`},
		{`a\b`, `'a\\b'`},
		{"$x", "'$x'"},
	}
	for _, tt := range tests {
		if got := QuoteFish(tt.in); got != tt.want {
			t.Errorf("QuoteFish(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestQuotePowerShell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"C:\\Users\\a b\\certs", "'C:\\Users\\a b\\certs'"},
		{"", "''"},
		{"it's", "'it''s'"},
		{"‘curly’", "'‘‘curly’’'"},
		{"‚low‛", "'‚‚low‛‛'"},
		{"$env:X `n", "'$env:X `n'"},
		{"\xff'", "'\xff'''"},
	}
	for _, tt := range tests {
		if got := QuotePowerShell(tt.in); got != tt.want {
			t.Errorf("QuotePowerShell(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestExportsFormat(t *testing.T) {
	host := Host{Hostname: "docker.example", Port: 2376}
	vars := DockerTLSEnv(host, "/s/clients/a b")
	tests := []struct {
		shell Shell
		want  string
	}{
		{ShellSh, "export DOCKER_HOST=tcp://docker.example:2376\nexport DOCKER_TLS_VERIFY=1\nexport DOCKER_CERT_PATH='/s/clients/a b'\n" +
			"# Run this command to configure your shell:\n# eval \"$(dockgate env a)\"\n"},
		{ShellFish, "set -gx DOCKER_HOST tcp://docker.example:2376;\nset -gx DOCKER_TLS_VERIFY 1;\nset -gx DOCKER_CERT_PATH '/s/clients/a b';\n" +
			"# Run this command to configure your shell:\n# dockgate env a | source\n"},
		{ShellPowerShell, "$Env:DOCKER_HOST = 'tcp://docker.example:2376'\n$Env:DOCKER_TLS_VERIFY = '1'\n$Env:DOCKER_CERT_PATH = '/s/clients/a b'\n" +
			"# Run this command to configure your shell:\n# & dockgate env a | Invoke-Expression\n"},
	}
	for _, tt := range tests {
		t.Run(string(tt.shell), func(t *testing.T) {
			got, err := Exports(tt.shell, vars, "dockgate env a")
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Exports =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestExportsRefuses(t *testing.T) {
	for _, v := range []EnvVar{{"", "x"}, {"1X", "x"}, {"A-B", "x"}, {"A;rm", "x"}, {"OK", "nul\x00"}} {
		if _, err := Exports(ShellSh, []EnvVar{v}, "x"); err == nil {
			t.Errorf("Exports(%q=%q) succeeded, want an error", v.Name, v.Value)
		}
	}
}

func TestExportsCommentStaysComment(t *testing.T) {
	out, err := Exports(ShellSh, nil, "dockgate env a\ntouch /tmp/pwned")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !strings.HasPrefix(line, "#") {
			t.Errorf("line %q is not a comment", line)
		}
	}
}

func TestParseShell(t *testing.T) {
	for _, s := range []string{"sh", "bash", "zsh", "fish", "powershell"} {
		if got, err := ParseShell(s); err != nil || string(got) != s {
			t.Errorf("ParseShell(%q) = %q, %v", s, got, err)
		}
	}
	if got, err := ParseShell("pwsh"); err != nil || got != ShellPowerShell {
		t.Errorf("ParseShell(pwsh) = %q, %v; want powershell", got, err)
	}
	if _, err := ParseShell("csh"); err == nil {
		t.Error("ParseShell(csh) succeeded, want an error")
	}
	tests := []struct {
		env  string
		want Shell
	}{{"/usr/bin/fish", ShellFish}, {"/bin/zsh", ShellZsh}, {"", ShellSh}, {"/bin/tcsh", ShellSh}}
	for _, tt := range tests {
		getenv := func(string) string { return tt.env }
		if got := DetectShell(getenv); got != tt.want {
			t.Errorf("DetectShell(SHELL=%q) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

// TestExportsEvalInRealShells evaluates the exports in every installed shell
// and reads the values back byte for byte.
func TestExportsEvalInRealShells(t *testing.T) {
	shells := []struct {
		bin   string
		shell Shell
		// script evaluates stdin's exports, then prints each variable
		// followed by a NUL byte.
		script string
	}{
		{"sh", ShellSh, `eval "$(cat)"; for v in $NAMES; do printenv "$v"; printf '\0'; done`},
		{"dash", ShellSh, `eval "$(cat)"; for v in $NAMES; do printenv "$v"; printf '\0'; done`},
		{"bash", ShellBash, `eval "$(cat)"; for v in $NAMES; do printenv "$v"; printf '\0'; done`},
		{"zsh", ShellZsh, `eval "$(cat)"; for v in ${=NAMES}; do printenv "$v"; printf '\0'; done`},
		{"fish", ShellFish, `cat | source; for v in (string split ' ' $NAMES); printenv $v; printf '\0'; end`},
	}
	var vars []EnvVar
	var names []string
	for i, v := range hardValues {
		name := "DOCKGATE_TEST_" + string(rune('A'+i))
		vars = append(vars, EnvVar{name, v})
		names = append(names, name)
	}
	for _, sh := range shells {
		t.Run(sh.bin, func(t *testing.T) {
			path, err := exec.LookPath(sh.bin)
			if err != nil {
				t.Skipf("%s is not installed", sh.bin)
			}
			exports, err := Exports(sh.shell, vars, "dockgate env x")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(path, "-c", sh.script)
			cmd.Stdin = strings.NewReader(exports)
			cmd.Env = []string{"NAMES=" + strings.Join(names, " "), "PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s failed: %v\n%s\nexports:\n%s", sh.bin, err, out, exports)
			}
			got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
			if len(got) != len(vars) {
				t.Fatalf("%s printed %d values, want %d: %q", sh.bin, len(got), len(vars), out)
			}
			for i, v := range vars {
				// printenv adds a newline after each value.
				if want := v.Value + "\n"; got[i] != want {
					t.Errorf("%s: %s = %q, want %q", sh.bin, v.Name, got[i], want)
				}
			}
		})
	}
}
