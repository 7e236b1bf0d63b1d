package doctor

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// savedImage builds a `docker save` archive in the legacy layout: one
// directory per layer, a config file, manifest.json last.
func savedImage(t testing.TB, cfg ocispec.ImageConfig, layers ...[]byte) []byte {
	t.Helper()
	configJSON, err := json.Marshal(ocispec.Image{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	var entries []tarEntry
	var names []string
	for i, l := range layers {
		name := string(rune('a'+i)) + "/layer.tar"
		entries = append(entries, dir(string(rune('a'+i))+"/"), file(name, l))
		names = append(names, name)
	}
	manifest, err := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"test:latest"}, "Layers": names}})
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, file("config.json", configJSON), file("manifest.json", manifest))
	return makeTar(t, entries...)
}

func inspectBytes(t testing.TB, archive []byte) (ImageReport, error) {
	t.Helper()
	return inspectSavedImage(io.NewSectionReader(bytes.NewReader(archive), 0, int64(len(archive))), "test:latest")
}

func TestInspectSavedImage(t *testing.T) {
	plain, withFallback := httpsgetBinaries(t)
	ls, err := os.ReadFile("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, "Test CA")
	bundle := file("etc/ssl/certs/ca-certificates.crt", bundleOf(ca))
	entry := ocispec.ImageConfig{Entrypoint: []string{"/httpsget"}}

	tests := []struct {
		name        string
		cfg         ocispec.ImageConfig
		layers      [][]byte
		wantOK      bool
		wantVerdict string
		wantFixes   bool
	}{
		{
			name:        "scratch, static Go binary, no bundle: the classic failure",
			cfg:         entry,
			layers:      [][]byte{makeTar(t, exe("httpsget", plain))},
			wantVerdict: "certificate signed by unknown authority",
			wantFixes:   true,
		},
		{
			name:        "bundle copied in",
			cfg:         entry,
			layers:      [][]byte{makeTar(t, exe("httpsget", plain)), makeTar(t, bundle)},
			wantOK:      true,
			wantVerdict: "Go finds 1 roots in /etc/ssl/certs/ca-certificates.crt",
		},
		{
			name:        "bundle copied in, then removed by a later layer",
			cfg:         entry,
			layers:      [][]byte{makeTar(t, exe("httpsget", plain), bundle), makeTar(t, file("etc/ssl/certs/.wh.ca-certificates.crt", nil))},
			wantVerdict: "certificate signed by unknown authority",
			wantFixes:   true,
		},
		{
			name:        "no bundle, fallback roots embedded",
			cfg:         entry,
			layers:      [][]byte{makeTar(t, exe("httpsget", withFallback))},
			wantOK:      true,
			wantVerdict: "embeds the roots of golang.org/x/crypto/x509roots/fallback",
		},
		{
			name:        "SSL_CERT_FILE names the bundle, relative to the working directory",
			cfg:         ocispec.ImageConfig{Cmd: []string{"httpsget"}, Env: []string{"PATH=/app", "SSL_CERT_FILE=ca/roots.pem"}, WorkingDir: "/srv"},
			layers:      [][]byte{makeTar(t, exe("app/httpsget", plain), file("srv/ca/roots.pem", bundleOf(ca)))},
			wantOK:      true,
			wantVerdict: "/srv/ca/roots.pem",
		},
		{
			name:        "SSL_CERT_FILE names a file the image lacks",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"/httpsget"}, Env: []string{"SSL_CERT_FILE=/etc/certs/missing.pem"}},
			layers:      [][]byte{makeTar(t, exe("httpsget", plain))},
			wantVerdict: "SSL_CERT_FILE=/etc/certs/missing.pem holds no certificates",
			wantFixes:   true,
		},
		{
			name:        "entrypoint through a symlink in PATH",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"client"}, Cmd: []string{"https://example.test"}},
			layers:      [][]byte{makeTar(t, exe("opt/httpsget", plain), symlink("usr/local/bin/client", "/opt/httpsget"), bundle)},
			wantOK:      true,
			wantVerdict: "Go finds 1 roots",
		},
		{
			name:        "dynamic binary without its interpreter",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"/ls"}},
			layers:      [][]byte{makeTar(t, exe("ls", ls), bundle)},
			wantVerdict: "is dynamically linked against",
			wantFixes:   true,
		},
		{
			name:        "entrypoint missing",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"/nope"}},
			layers:      [][]byte{makeTar(t, bundle)},
			wantVerdict: "/nope does not exist in the image",
		},
		{
			name:        "non-Go program with an OpenSSL bundle",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"/run.sh"}},
			layers:      [][]byte{makeTar(t, exe("run.sh", []byte("#!/bin/sh\n")), exe("bin/sh", []byte("sh")), file("etc/pki/tls/cert.pem", bundleOf(ca)))},
			wantOK:      true,
			wantVerdict: "/etc/pki/tls/cert.pem",
		},
		{
			name:        "script whose interpreter is missing",
			cfg:         ocispec.ImageConfig{Entrypoint: []string{"/run.sh"}},
			layers:      [][]byte{makeTar(t, exe("run.sh", []byte("#!/bin/bash\n")), bundle)},
			wantVerdict: "a script for /bin/bash",
		},
		{
			name:        "no command, no bundle",
			layers:      [][]byte{makeTar(t, file("data", []byte("x")))},
			wantVerdict: "no CA bundle where Go or OpenSSL look",
			wantFixes:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectBytes(t, savedImage(t, tt.cfg, tt.layers...))
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.wantOK || !strings.Contains(got.Verdict, tt.wantVerdict) {
				t.Errorf("got ok %v verdict %q; want ok %v and a verdict containing %q", got.OK, got.Verdict, tt.wantOK, tt.wantVerdict)
			}
			if (len(got.Fixes) > 0) != tt.wantFixes {
				t.Errorf("got fixes %q, want fixes: %v", got.Fixes, tt.wantFixes)
			}
			var text bytes.Buffer
			if err := got.WriteText(&text); err != nil || !strings.Contains(text.String(), "test:latest") {
				t.Errorf("WriteText = %q, %v", text.String(), err)
			}
		})
	}
}

func TestInspectSavedImageFixes(t *testing.T) {
	plain, _ := httpsgetBinaries(t)
	got, err := inspectBytes(t, savedImage(t, ocispec.ImageConfig{Entrypoint: []string{"/httpsget"}}, makeTar(t, exe("httpsget", plain))))
	if err != nil {
		t.Fatal(err)
	}
	fixes := strings.Join(got.Fixes, "\n")
	for _, want := range []string{"COPY --from=build /etc/ssl/certs/ca-certificates.crt", "pkgs.cacert", `import _ "golang.org/x/crypto/x509roots/fallback"`} {
		if !strings.Contains(fixes, want) {
			t.Errorf("fixes %q lack %q", fixes, want)
		}
	}
	if got.Binary == nil || !got.Binary.Static || got.Binary.GoVersion == "" || got.Binary.FallbackLinked {
		t.Errorf("binary = %+v, want a static Go binary without fallback roots", got.Binary)
	}
}

// Layouts other than the plain legacy one: gzip layers (the containerd image
// store's OCI layout) and layers stored once and linked to.
func TestInspectSavedImageLayouts(t *testing.T) {
	ca := newTestCA(t, "Test CA")
	layer := makeTar(t, file("etc/ssl/certs/ca-certificates.crt", bundleOf(ca)))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	cfg, _ := json.Marshal(ocispec.Image{})
	manifest := func(layers ...string) []byte {
		m, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/c", "Layers": layers}})
		return m
	}
	tests := []struct {
		name    string
		archive []byte
	}{
		{"gzip layer blob", makeTar(t,
			file("blobs/sha256/c", cfg), file("blobs/sha256/l", gz.Bytes()), file("manifest.json", manifest("blobs/sha256/l")))},
		{"layer linked to another directory", makeTar(t,
			file("blobs/sha256/c", cfg), file("one/layer.tar", layer), symlink("two/layer.tar", "../one/layer.tar"),
			file("manifest.json", manifest("two/layer.tar")))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inspectBytes(t, tt.archive)
			if err != nil {
				t.Fatal(err)
			}
			if got.GoRoots.Roots != 1 || !got.OK {
				t.Errorf("got %d roots, ok %v; want the bundle found", got.GoRoots.Roots, got.OK)
			}
		})
	}
}

func TestInspectSavedImageBroken(t *testing.T) {
	tests := []struct {
		name    string
		archive []byte
		wantErr string
	}{
		{"not a tar", []byte("garbage that is not a tar archive at all, not even close to 512 bytes"), "failed to read"},
		{"no manifest", makeTar(t, file("x", nil)), "no file manifest.json"},
		{"two images", makeTar(t, file("manifest.json", []byte(`[{},{}]`))), "lists 2 images"},
		{"missing layer", makeTar(t, file("c", []byte(`{}`)), file("manifest.json", []byte(`[{"Config":"c","Layers":["l"]}]`))), "no file l"},
		{"zstd layer", makeTar(t, file("c", []byte(`{}`)), file("l", []byte("\x28\xb5\x2f\xfd....")), file("manifest.json", []byte(`[{"Config":"c","Layers":["l"]}]`))), "zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := inspectBytes(t, tt.archive)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// fakeSaver serves an archive as the Docker API's image export would.
type fakeSaver struct {
	archive []byte
	err     error
	asked   []string
}

func (f *fakeSaver) ImageSave(_ context.Context, images []string, _ ...client.ImageSaveOption) (client.ImageSaveResult, error) {
	f.asked = images
	if f.err != nil {
		return nil, f.err
	}
	return io.NopCloser(bytes.NewReader(f.archive)), nil
}

func TestInspectImage(t *testing.T) {
	plain, _ := httpsgetBinaries(t)
	saver := &fakeSaver{archive: savedImage(t, ocispec.ImageConfig{Entrypoint: []string{"/httpsget"}}, makeTar(t, exe("httpsget", plain)))}
	got, err := InspectImage(t.Context(), saver, "classic:latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(saver.asked) != 1 || saver.asked[0] != "classic:latest" {
		t.Errorf("exported %q, want [classic:latest]", saver.asked)
	}
	if got.OK || got.Image != "classic:latest" {
		t.Errorf("got ok %v image %q, want a failed verdict for classic:latest", got.OK, got.Image)
	}

	saver.err = errors.New("No such image: nope")
	if _, err := InspectImage(t.Context(), saver, "nope"); err == nil || !strings.Contains(err.Error(), "No such image") {
		t.Errorf("got %v, want the daemon's error", err)
	}
}

func FuzzInspectSavedImage(f *testing.F) {
	f.Add(savedImage(f, ocispec.ImageConfig{Entrypoint: []string{"/x"}}, makeTar(f, exe("x", []byte("#!/bin/sh\n")))))
	f.Add(makeTar(f, file("manifest.json", []byte(`[{"Config":"c","Layers":["l","l"]}]`)), file("c", []byte(`{"config":{"Env":["SSL_CERT_FILE=../x"]}}`)), file("l", nil)))
	f.Fuzz(func(t *testing.T, archive []byte) {
		r, err := inspectBytes(t, archive)
		if err == nil && r.Verdict == "" {
			t.Error("a report without a verdict")
		}
	})
}
