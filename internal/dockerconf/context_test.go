package dockerconf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestWriteAndReadContext(t *testing.T) {
	configDir := filepath.Join(t.TempDir(), "never-ran", ".docker")
	c := testContext(t, "prod.eu-1")
	if err := WriteContext(configDir, c, false); err != nil {
		t.Fatalf("WriteContext: %v", err)
	}
	got, err := ReadContext(configDir, c.Name)
	if err != nil {
		t.Fatalf("ReadContext: %v", err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("ReadContext = %+v, want %+v", got, c)
	}
	meta, err := os.ReadFile(filepath.Join(configDir, "contexts", "meta", contextID(c.Name), "meta.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Name":"prod.eu-1","Metadata":{"Description":"test"},"Endpoints":{"docker":{"Host":"tcp://127.0.0.1:2376","SkipTLSVerify":false}}}`
	if string(meta) != want {
		t.Errorf("meta.json =\n%s\nwant\n%s", meta, want)
	}
}

func TestContextIDIsSHA256OfName(t *testing.T) {
	// The value `echo -n my-ctx | sha256sum` prints, which is the directory
	// docker 28 created for `docker context create my-ctx`.
	const want = "2e949dbc66d8e770bad3c1d483a32c09f47684977c5793624a441c886e9d1abb"
	if got := contextID("my-ctx"); got != want {
		t.Errorf("contextID(my-ctx) = %s, want %s", got, want)
	}
}

func TestWriteContextRefusesExistingUnlessForced(t *testing.T) {
	configDir := t.TempDir()
	first := testContext(t, "prod")
	if err := WriteContext(configDir, first, false); err != nil {
		t.Fatal(err)
	}
	second := testContext(t, "prod")
	second.Host = "tcp://docker.example:2376"
	second.Description = ""
	err := WriteContext(configDir, second, false)
	if !errors.Is(err, ErrContextExists) {
		t.Fatalf("second WriteContext error = %v, want ErrContextExists", err)
	}
	if got, _ := ReadContext(configDir, "prod"); !reflect.DeepEqual(got, first) {
		t.Errorf("refused write changed the context: %+v", got)
	}
	if err := WriteContext(configDir, second, true); err != nil {
		t.Fatalf("forced WriteContext: %v", err)
	}
	if got, _ := ReadContext(configDir, "prod"); !reflect.DeepEqual(got, second) {
		t.Errorf("after force, ReadContext = %+v, want %+v", got, second)
	}
	assertNoLeftovers(t, configDir)
}

func TestWriteContextRefusesBadInput(t *testing.T) {
	good := testContext(t, "ok")
	other := testContext(t, "other")
	encryptedKey := pemBlock("ENCRYPTED PRIVATE KEY", []byte("x"))
	tests := []struct {
		name   string
		modify func(*Context)
		want   string
	}{
		{"empty name", func(c *Context) { c.Name = "" }, "cannot be empty"},
		{"reserved name", func(c *Context) { c.Name = "default" }, "reserved"},
		{"one character", func(c *Context) { c.Name = "a" }, "must match"},
		{"slash", func(c *Context) { c.Name = "a/b" }, "must match"},
		{"dot dot", func(c *Context) { c.Name = ".." }, "must match"},
		{"unspecified host", func(c *Context) { c.Host = "tcp://0.0.0.0:2376" }, "where dockerd listens"},
		{"http host", func(c *Context) { c.Host = "http://h:2376" }, "not http://"},
		{"skip verify", func(c *Context) { c.SkipTLSVerify = true }, "skips TLS verification"},
		{"no CA", func(c *Context) { c.CA = nil }, "ca.pem"},
		{"key of another cert", func(c *Context) { c.Key = other.Key }, "cert.pem and key.pem"},
		{"no key", func(c *Context) { c.Key = []byte("junk") }, "key.pem"},
		{"encrypted key", func(c *Context) { c.Key = encryptedKey }, "encrypted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			configDir := filepath.Join(t.TempDir(), ".docker")
			c := good
			tt.modify(&c)
			err := WriteContext(configDir, c, false)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("WriteContext error = %v, want one containing %q", err, tt.want)
			}
			if _, err := os.Stat(configDir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("refused WriteContext touched %s (stat: %v)", configDir, err)
			}
		})
	}
}

func TestReadContextErrors(t *testing.T) {
	configDir := t.TempDir()
	if _, err := ReadContext(configDir, "missing"); !errors.Is(err, ErrContextNotFound) {
		t.Errorf("ReadContext(missing) error = %v, want ErrContextNotFound", err)
	}
	// A meta.json under the wrong hash must not be taken for the context.
	writeFile(t, filepath.Join(Storage(configDir, "alias").MetadataPath, "meta.json"), []byte(`{"Name":"real"}`), 0o644)
	if _, err := ReadContext(configDir, "alias"); err == nil || !strings.Contains(err.Error(), `names "real"`) {
		t.Errorf("ReadContext(alias) error = %v, want a name mismatch", err)
	}
	writeFile(t, filepath.Join(Storage(configDir, "broken").MetadataPath, "meta.json"), []byte(`{`), 0o644)
	if _, err := ReadContext(configDir, "broken"); err == nil {
		t.Error("ReadContext(broken) succeeded, want a parse error")
	}
}

func TestReadContextWithoutTLS(t *testing.T) {
	configDir := t.TempDir()
	meta := `{"Name":"plain","Metadata":{},"Endpoints":{"docker":{"Host":"unix:///x.sock","SkipTLSVerify":true}}}`
	writeFile(t, filepath.Join(Storage(configDir, "plain").MetadataPath, "meta.json"), []byte(meta), 0o644)
	got, err := ReadContext(configDir, "plain")
	if err != nil {
		t.Fatal(err)
	}
	want := Context{Name: "plain", Host: "unix:///x.sock", SkipTLSVerify: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadContext = %+v, want %+v", got, want)
	}
}

func TestUseContextKeepsOtherSettings(t *testing.T) {
	configDir := t.TempDir()
	if err := WriteContext(configDir, testContext(t, "prod"), false); err != nil {
		t.Fatal(err)
	}
	original := `{
  "auths": {"registry.example": {"auth": "dXNlcjpwYXNz"}},
  "credHelpers": {"gcr.io": "gcloud"},
  "credsStore": "desktop",
  "plugins": {"buildx": {"enabled": "true"}},
  "currentContext": "old",
  "x-future-key": {"n": 12345678901234567890}
}`
	path := filepath.Join(configDir, "config.json")
	writeFile(t, path, []byte(original), 0o644)
	if err := UseContext(configDir, "prod"); err != nil {
		t.Fatalf("UseContext: %v", err)
	}
	updated, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := decodeNumbers([]byte(original), &before); err != nil {
		t.Fatal(err)
	}
	if err := decodeNumbers(updated, &after); err != nil {
		t.Fatalf("config.json is no longer JSON: %v\n%s", err, updated)
	}
	before["currentContext"] = "prod"
	if !reflect.DeepEqual(before, after) {
		t.Errorf("config.json =\n%s\nwant the original settings with currentContext prod", updated)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("config.json mode = %v, want the original 0644 kept", fi.Mode().Perm())
	}
	if got, err := CurrentContext(configDir); err != nil || got != "prod" {
		t.Errorf("CurrentContext = %q, %v; want prod", got, err)
	}
	if err := UseContext(configDir, "default"); err != nil {
		t.Fatal(err)
	}
	if got, err := CurrentContext(configDir); err != nil || got != "" {
		t.Errorf("after using default, CurrentContext = %q, %v; want empty", got, err)
	}
}

func TestUseContextCreatesConfigJSON(t *testing.T) {
	configDir := t.TempDir()
	if err := WriteContext(configDir, testContext(t, "prod"), false); err != nil {
		t.Fatal(err)
	}
	if err := UseContext(configDir, "prod"); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(configDir, "config.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("new config.json mode = %v, want 0600", fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(path); string(got) != "{\n\t\"currentContext\": \"prod\"\n}" {
		t.Errorf("config.json = %q", got)
	}
}

func TestUseContextRefusals(t *testing.T) {
	configDir := t.TempDir()
	path := filepath.Join(configDir, "config.json")
	original := []byte(`{"auths":{}}`)
	writeFile(t, path, original, 0o600)
	if err := UseContext(configDir, "missing"); !errors.Is(err, ErrContextNotFound) {
		t.Errorf("UseContext(missing) error = %v, want ErrContextNotFound", err)
	}
	if err := UseContext(configDir, "a/b"); err == nil {
		t.Error("UseContext(a/b) succeeded, want an invalid-name error")
	}
	if err := WriteContext(configDir, testContext(t, "prod"), false); err != nil {
		t.Fatal(err)
	}
	broken := []byte(`{"auths": {`)
	writeFile(t, path, broken, 0o600)
	err := UseContext(configDir, "prod")
	if err == nil || !strings.Contains(err.Error(), "left unchanged") {
		t.Errorf("UseContext with broken config.json error = %v, want a parse error", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, broken) {
		t.Errorf("broken config.json was changed to %q", got)
	}
}

func TestUseContextFollowsSymlink(t *testing.T) {
	configDir := t.TempDir()
	if err := WriteContext(configDir, testContext(t, "prod"), false); err != nil {
		t.Fatal(err)
	}
	dotfiles := t.TempDir()
	target := filepath.Join(dotfiles, "docker-config.json")
	writeFile(t, target, []byte(`{"auths":{}}`), 0o600)
	link := filepath.Join(configDir, "config.json")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
	if err := UseContext(configDir, "prod"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("config.json is no longer a symlink (%v)", err)
	}
	if got, _ := CurrentContextOf(mustRead(t, target)); got != "prod" {
		t.Errorf("symlink target currentContext = %q, want prod", got)
	}
}

func TestActiveContext(t *testing.T) {
	configDir := t.TempDir()
	writeFile(t, filepath.Join(configDir, "config.json"), []byte(`{"currentContext":"fromfile"}`), 0o600)
	tests := []struct {
		name string
		env  map[string]string
		dir  string
		want string
	}{
		{"config.json", nil, configDir, "fromfile"},
		{"DOCKER_CONTEXT wins over config.json", map[string]string{"DOCKER_CONTEXT": "env"}, configDir, "env"},
		{"DOCKER_HOST wins over everything", map[string]string{"DOCKER_CONTEXT": "env", "DOCKER_HOST": "tcp://h:1"}, configDir, "default"},
		{"nothing set", nil, t.TempDir(), "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ActiveContext(tt.dir, func(k string) string { return tt.env[k] })
			if err != nil || got != tt.want {
				t.Errorf("ActiveContext = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestConfigDir(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"DOCKER_CONFIG", map[string]string{"DOCKER_CONFIG": "/cfg", "HOME": "/home/u"}, "/cfg"},
		{"HOME", map[string]string{"HOME": "/home/u"}, "/home/u/.docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ConfigDir(func(k string) string { return tt.env[k] })
			if err != nil || got != tt.want {
				t.Errorf("ConfigDir = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestMoveAsideAndRename(t *testing.T) {
	root := t.TempDir()
	staged, target := filepath.Join(root, "staged"), filepath.Join(root, "target")
	writeFile(t, filepath.Join(staged, "f"), []byte("new"), 0o600)
	writeFile(t, filepath.Join(target, "f"), []byte("old"), 0o600)
	old, err := moveAsideAndRename(staged, target)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(mustRead(t, filepath.Join(target, "f"))); got != "new" {
		t.Errorf("target holds %q, want new", got)
	}
	if got := string(mustRead(t, filepath.Join(old, "f"))); got != "old" {
		t.Errorf("old directory holds %q, want old", got)
	}
}

// assertNoLeftovers checks that no staging directory survived a write.
func assertNoLeftovers(t *testing.T, configDir string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(configDir, "contexts", "tls"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s in contexts/tls", e.Name())
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
