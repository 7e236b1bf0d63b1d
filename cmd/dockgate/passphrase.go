package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// passphraseEnv is the environment variable that may hold the CA passphrase.
const passphraseEnv = "DOCKGATE_CA_PASSPHRASE"

// errNoPassphrase means none of the three passphrase sources is available.
var errNoPassphrase = errors.New("no CA passphrase given and no terminal to ask on")

const passphraseSourcesHint = "pass --passphrase-file FILE, set " + passphraseEnv + ", or run in a terminal to be asked (in a container: docker run -it)"

// passphraseSource lists where a CA passphrase may come from, in order of
// precedence: a file, the environment, a prompt on the terminal.
type passphraseSource struct {
	file     string // --passphrase-file; "" if not given
	readFile func(string) ([]byte, error)
	getenv   func(string) string
	ask      func(prompt string) ([]byte, error) // nil when there is no terminal
}

// passphraseSource gathers the sources for this run.
func (a *app) passphraseSource(file string) passphraseSource {
	ask := a.askPassword
	if ask == nil {
		ask = terminalAsker(a.stdin, a.stderr)
	}
	return passphraseSource{file: file, readFile: os.ReadFile, getenv: a.getenv, ask: ask}
}

// readPassphrase returns the CA passphrase from the first available source.
// From a file only the first line counts, without its line ending. With
// confirm (a new passphrase) the prompt asks twice. An empty passphrase is
// refused everywhere: it would silently leave the key unprotected.
func readPassphrase(src passphraseSource, confirm bool) ([]byte, error) {
	switch {
	case src.file != "":
		return passphraseFromFile(src.readFile, src.file)
	case src.getenv(passphraseEnv) != "":
		return []byte(src.getenv(passphraseEnv)), nil
	case src.ask != nil:
		return askPassphrase(src.ask, confirm)
	}
	return nil, withHint(errNoPassphrase, passphraseSourcesHint)
}

func passphraseFromFile(readFile func(string) ([]byte, error), path string) ([]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, withHint(fmt.Errorf("failed to read the passphrase file: %w", err),
			"--passphrase-file must name a readable file whose first line is the passphrase")
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, withHint(fmt.Errorf("the passphrase file %s starts with an empty line", path),
			"put the passphrase on the first line")
	}
	return line, nil
}

func askPassphrase(ask func(string) ([]byte, error), confirm bool) ([]byte, error) {
	pass, err := ask("CA passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("failed to read the passphrase: %w", err)
	}
	if len(pass) == 0 {
		return nil, withHint(errors.New("empty passphrase"), "type a passphrase, or use --insecure-no-passphrase for an unprotected key")
	}
	if !confirm {
		return pass, nil
	}
	again, err := ask("Repeat the CA passphrase: ")
	if err != nil {
		return nil, fmt.Errorf("failed to read the passphrase: %w", err)
	}
	if !bytes.Equal(pass, again) {
		return nil, withHint(errors.New("the passphrases do not match"), "try again")
	}
	return pass, nil
}

// terminalAsker returns a function that prompts on the terminal and reads
// without echo, or nil when stdin is not a terminal. Requiring stdin to be
// a terminal, rather than opening /dev/tty regardless, means scripts and CI
// jobs fail fast with a hint instead of waiting for input nobody will give.
// The prompt itself goes to /dev/tty when possible, so it does not end up
// in redirected output.
func terminalAsker(stdin io.Reader, stderr io.Writer) func(string) ([]byte, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(prompt string) ([]byte, error) {
		out := stderr
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			defer tty.Close()
			out = tty
		}
		fmt.Fprint(out, prompt)
		defer fmt.Fprintln(out)
		return term.ReadPassword(int(f.Fd()))
	}
}
