package doctor

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestInspectBinaryGo(t *testing.T) {
	plain, withFallback := httpsgetBinaries(t)
	tests := []struct {
		name         string
		data         []byte
		wantFallback bool
	}{
		{"static Go binary", plain, false},
		{"static Go binary with fallback roots", withFallback, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InspectBinary(bytes.NewReader(tt.data), int64(len(tt.data)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != "elf" || !got.Static || got.Interpreter != "" {
				t.Errorf("got format %q static %v interpreter %q, want a static ELF", got.Format, got.Static, got.Interpreter)
			}
			if !strings.HasPrefix(got.GoVersion, "go1.") {
				t.Errorf("got Go version %q, want go1.x", got.GoVersion)
			}
			if got.FallbackLinked != tt.wantFallback {
				t.Errorf("got FallbackLinked %v, want %v", got.FallbackLinked, tt.wantFallback)
			}
		})
	}
}

// A dynamically linked ELF: the host's own ls, and, where a C compiler is
// available, a Go binary built with cgo.
func TestInspectBinaryDynamic(t *testing.T) {
	bins := map[string]string{"/bin/ls": "/bin/ls"}
	if cgoGo := buildCgoBinary(t); cgoGo != "" {
		bins["cgo Go binary"] = cgoGo
	}
	for name, path := range bins {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			got, err := InspectBinary(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Static || !strings.Contains(got.Interpreter, "ld-") {
				t.Errorf("got static %v interpreter %q, want dynamic with an ld.so interpreter", got.Static, got.Interpreter)
			}
			if !strings.Contains(got.Describe(), "dynamic") {
				t.Errorf("Describe() = %q, want it to say dynamic", got.Describe())
			}
		})
	}
}

// buildCgoBinary builds a Go program that links libc through cgo; "" when
// this machine has no C compiler.
func buildCgoBinary(t *testing.T) string {
	t.Helper()
	cc, err := exec.Command("go", "env", "CC").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath(strings.TrimSpace(string(cc))); err != nil {
		t.Logf("no C compiler (%v): the cgo case is covered by /bin/ls only", err)
		return ""
	}
	dir := t.TempDir()
	src := "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.abs(1) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module cgotest\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "cgotest")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build with cgo: %v\n%s", err, out)
	}
	return bin
}

func TestInspectBinaryOther(t *testing.T) {
	tests := []struct {
		name       string
		data       string
		wantFormat string
		wantInterp string
	}{
		{"shell script", "#!/bin/sh -e\necho hi\n", "script", "/bin/sh"},
		{"env script", "#! /usr/bin/env python3\n", "script", "/usr/bin/env"},
		{"empty #!", "#!\n", "script", ""},
		{"text", "hello", "unknown", ""},
		{"empty", "", "unknown", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := InspectBinary(strings.NewReader(tt.data), int64(len(tt.data)))
			if err != nil {
				t.Fatal(err)
			}
			if got.Format != tt.wantFormat || got.Interpreter != tt.wantInterp {
				t.Errorf("got format %q interpreter %q, want %q %q", got.Format, got.Interpreter, tt.wantFormat, tt.wantInterp)
			}
		})
	}
}

func TestInspectBinaryBrokenELF(t *testing.T) {
	data := []byte("\x7fELF\x02\x01\x01 truncated")
	if _, err := InspectBinary(bytes.NewReader(data), int64(len(data))); err == nil {
		t.Error("got no error for a truncated ELF header")
	}
}

func TestContainsBytes(t *testing.T) {
	needle := []byte("golang.org/x/crypto/x509roots/fallback.init")
	at := func(offset int) []byte {
		data := make([]byte, scanChunk*2+100)
		copy(data[offset:], needle)
		return data
	}
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{"at the start", at(0), true},
		{"across the first chunk boundary", at(scanChunk - 10), true},
		{"ending exactly at the boundary", at(scanChunk - len(needle)), true},
		{"starting exactly at the boundary", at(scanChunk), true},
		{"at the very end", append(make([]byte, scanChunk+7), needle...), true},
		{"absent", make([]byte, scanChunk*2), false},
		{"a prefix only", append(make([]byte, scanChunk-5), needle[:20]...), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := containsBytes(bytes.NewReader(tt.data), needle)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("containsBytes = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzInspectBinary(f *testing.F) {
	f.Add([]byte("#!/bin/sh\n"))
	f.Add([]byte("\x7fELF\x02\x01\x01\x00"))
	if ls, err := os.ReadFile("/bin/ls"); err == nil && len(ls) > 4096 {
		f.Add(ls[:4096]) // headers and program table of a real dynamic ELF
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := InspectBinary(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		if b.Static && b.Interpreter != "" && b.Format == "elf" {
			t.Errorf("a static ELF with interpreter %q", b.Interpreter)
		}
		_ = b.Describe()
	})
}
