package main

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// fakeTerminal answers prompts from a script and records them.
type fakeTerminal struct {
	answers []string
	prompts []string
}

func (f *fakeTerminal) ask(prompt string) ([]byte, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return nil, errors.New("no more input")
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return []byte(a), nil
}

func TestReadPassphrase(t *testing.T) {
	files := map[string]string{
		"pass.txt":  "s3cret\nsecond line ignored\n",
		"crlf.txt":  "s3cret\r\n",
		"nonl.txt":  "s3cret",
		"empty.txt": "",
		"blank.txt": "\nlater\n",
		"space.txt": " s3cret \n",
	}
	readFile := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
	tests := []struct {
		name        string
		file        string
		env         string
		answers     []string // nil: no terminal
		confirm     bool
		want        string
		wantErr     string
		wantPrompts int
	}{
		{name: "file first line", file: "pass.txt", env: "from-env", answers: []string{"tty"}, want: "s3cret"},
		{name: "file with CRLF", file: "crlf.txt", want: "s3cret"},
		{name: "file without newline", file: "nonl.txt", want: "s3cret"},
		{name: "file keeps inner spaces", file: "space.txt", want: " s3cret "},
		{name: "empty file", file: "empty.txt", env: "from-env", wantErr: "empty line"},
		{name: "file with blank first line", file: "blank.txt", wantErr: "empty line"},
		{name: "missing file", file: "nope.txt", env: "from-env", wantErr: "failed to read the passphrase file"},
		{name: "env beats terminal", env: "from-env", answers: []string{"tty"}, want: "from-env"},
		{name: "terminal once to unlock", answers: []string{"tty"}, want: "tty", wantPrompts: 1},
		{name: "terminal twice for a new key", answers: []string{"tty", "tty"}, confirm: true, want: "tty", wantPrompts: 2},
		{name: "terminal mismatch", answers: []string{"tty", "ttx"}, confirm: true, wantErr: "do not match", wantPrompts: 2},
		{name: "terminal empty", answers: []string{""}, confirm: true, wantErr: "empty passphrase", wantPrompts: 1},
		{name: "nothing at all", wantErr: "no CA passphrase given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := passphraseSource{
				file:     tt.file,
				readFile: readFile,
				getenv:   func(k string) string { return map[string]string{passphraseEnv: tt.env}[k] },
			}
			term := &fakeTerminal{answers: tt.answers}
			if tt.answers != nil {
				src.ask = term.ask
			}
			got, err := readPassphrase(src, tt.confirm)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readPassphrase() = %q, %v; want error containing %q", got, err, tt.wantErr)
				}
				var h *hintError
				if !errors.As(err, &h) {
					t.Errorf("error %v has no hint", err)
				}
			} else if err != nil || !bytes.Equal(got, []byte(tt.want)) {
				t.Fatalf("readPassphrase() = %q, %v; want %q", got, err, tt.want)
			}
			if len(term.prompts) != tt.wantPrompts {
				t.Errorf("asked %d times (%q), want %d", len(term.prompts), term.prompts, tt.wantPrompts)
			}
		})
	}
}

func TestNoPassphraseHintNamesAllSources(t *testing.T) {
	_, err := readPassphrase(passphraseSource{getenv: func(string) string { return "" }}, true)
	var h *hintError
	if !errors.As(err, &h) {
		t.Fatalf("readPassphrase() error = %v, want a hint", err)
	}
	for _, want := range []string{"--passphrase-file", passphraseEnv, "terminal"} {
		if !strings.Contains(h.hint, want) {
			t.Errorf("hint %q does not mention %s", h.hint, want)
		}
	}
}
