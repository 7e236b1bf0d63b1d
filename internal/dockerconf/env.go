package dockerconf

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Shell is a command language that environment exports are written in.
type Shell string

// The shells Exports can write for. Bash and zsh take POSIX syntax; they are
// named so that users can say what they run.
const (
	ShellSh         Shell = "sh"
	ShellBash       Shell = "bash"
	ShellZsh        Shell = "zsh"
	ShellFish       Shell = "fish"
	ShellPowerShell Shell = "powershell"
)

// Shells lists the accepted --shell values.
func Shells() []Shell {
	return []Shell{ShellSh, ShellBash, ShellZsh, ShellFish, ShellPowerShell}
}

// ParseShell accepts a name from Shells, or "pwsh" for PowerShell.
func ParseShell(s string) (Shell, error) {
	if s == "pwsh" {
		return ShellPowerShell, nil
	}
	if sh := Shell(s); slices.Contains(Shells(), sh) {
		return sh, nil
	}
	return "", fmt.Errorf("unknown shell %q: want one of sh, bash, zsh, fish, powershell", s)
}

// DetectShell picks the shell from $SHELL's base name, defaulting to sh:
// fish is the only login shell whose syntax differs from POSIX.
func DetectShell(getenv func(string) string) Shell {
	if sh, err := ParseShell(filepath.Base(getenv("SHELL"))); err == nil {
		return sh
	}
	return ShellSh
}

// EnvVar is one environment variable to export.
type EnvVar struct {
	Name, Value string
}

// DockerTLSEnv is what the docker CLI reads to reach a daemon over TLS
// without a context: the address, "verify the server", and the directory
// holding ca.pem, cert.pem and key.pem.
func DockerTLSEnv(host Host, certPath string) []EnvVar {
	return []EnvVar{
		{"DOCKER_HOST", host.String()},
		{"DOCKER_TLS_VERIFY", "1"},
		{"DOCKER_CERT_PATH", certPath},
	}
}

// Exports renders vars as commands for shell, one per line, followed by a
// comment telling how to apply them (evalCommand is the command line that
// printed them, such as `dockgate env alice --host tcp://h:2376`). Values are
// quoted so that any byte except NUL, including quotes, spaces and newlines,
// survives evaluation.
func Exports(shell Shell, vars []EnvVar, evalCommand string) (string, error) {
	var b strings.Builder
	for _, v := range vars {
		if err := checkEnvVar(v); err != nil {
			return "", err
		}
		b.WriteString(exportLine(shell, v))
		b.WriteByte('\n')
	}
	b.WriteString("# Run this command to configure your shell:\n# ")
	b.WriteString(applyHint(shell, oneLine(evalCommand)))
	b.WriteByte('\n')
	return b.String(), nil
}

func checkEnvVar(v EnvVar) error {
	if v.Name == "" || strings.Trim(v.Name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != "" ||
		v.Name[0] >= '0' && v.Name[0] <= '9' {
		return fmt.Errorf("invalid environment variable name %q", v.Name)
	}
	if strings.ContainsRune(v.Value, 0) {
		return fmt.Errorf("value of %s contains a NUL byte, which no shell can hold", v.Name)
	}
	return nil
}

func exportLine(shell Shell, v EnvVar) string {
	switch shell {
	case ShellFish:
		return "set -gx " + v.Name + " " + QuoteFish(v.Value) + ";"
	case ShellPowerShell:
		return "$Env:" + v.Name + " = " + QuotePowerShell(v.Value)
	}
	return "export " + v.Name + "=" + QuoteSh(v.Value)
}

func applyHint(shell Shell, command string) string {
	switch shell {
	case ShellFish:
		return command + " | source"
	case ShellPowerShell:
		return "& " + command + " | Invoke-Expression"
	}
	return `eval "$(` + command + `)"`
}

// oneLine keeps a comment on its line: a newline in it would turn the rest
// into a command when the output is evaluated.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// shellSafe are the bytes that need no quoting in POSIX shells or fish.
const shellSafe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789@%+=:,./_-"

func needsQuoting(s string) bool {
	return s == "" || strings.Trim(s, shellSafe) != ""
}

// QuoteSh quotes s for POSIX shells (sh, bash, zsh): inside single quotes
// nothing is special, and a single quote is written as '\”.
func QuoteSh(s string) string {
	if !needsQuoting(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuoteFish quotes s for fish, where a single-quoted string still treats
// \\ and \' as escapes.
func QuoteFish(s string) string {
	if !needsQuoting(s) {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}

// powerShellQuotes are the characters PowerShell accepts as a single quote:
// the ASCII one and the typographic ones (U+2018..U+201B), each doubled to
// stand for itself inside a single-quoted string.
const powerShellQuotes = "'\u2018\u2019\u201a\u201b"

// QuotePowerShell quotes s as a PowerShell verbatim string.
func QuotePowerShell(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r != utf8.RuneError && strings.ContainsRune(powerShellQuotes, r) {
			b.WriteString(s[:size])
		}
		b.WriteString(s[:size])
		s = s[size:]
	}
	b.WriteByte('\'')
	return b.String()
}
