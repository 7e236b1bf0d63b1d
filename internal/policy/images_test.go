package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/identity"
)

// tarEntry is one entry of a test build context.
type tarEntry struct {
	name, body string
	typ        byte
	link       string
}

func tarOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// contextTar is a build context with one file besides the Dockerfile.
func contextTar(t testing.TB, name, dockerfile string) []byte {
	return tarOf(t, tarEntry{name: ".dockerignore", body: "x\n"}, tarEntry{name: name, body: dockerfile}, tarEntry{name: "main.go", body: "package main\n"})
}

func gzipped(t testing.TB, data []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestReadBuildContext(t *testing.T) {
	big := strings.Repeat("x", 4096)
	cases := []struct {
		name       string
		body       []byte
		dockerfile string // the query parameter
		limit      int
		want       string // the Dockerfile read; "" when refused
		err        string // what the refusal says
	}{
		{name: "plain", body: contextTar(t, "Dockerfile", "FROM a\n"), want: "FROM a\n"},
		{name: "gzip", body: gzipped(t, contextTar(t, "Dockerfile", "FROM a\n")), want: "FROM a\n"},
		{name: "./ prefix", body: contextTar(t, "./Dockerfile", "FROM a\n"), want: "FROM a\n"},
		{name: "query dockerfile", body: contextTar(t, "build/Containerfile", "FROM b\n"), dockerfile: "./build/../build/Containerfile", want: "FROM b\n"},
		{name: "query dockerfile absolute", body: contextTar(t, "sub/D", "FROM c\n"), dockerfile: "/sub/D", want: "FROM c\n"},
		{name: "empty body", body: nil, err: "the body is empty"},
		{name: "no Dockerfile", body: tarOf(t, tarEntry{name: "a", body: "x"}), err: "has no Dockerfile"},
		{name: "lower-case fallback", body: tarOf(t, tarEntry{name: "dockerfile", body: "FROM a\n"}), err: "name it Dockerfile"},
		{name: "twice before", body: tarOf(t, tarEntry{name: "./Dockerfile", body: "FROM a\n"}, tarEntry{name: "Dockerfile", body: "FROM b\n"}), want: "FROM a\n"},
		{name: "symlink Dockerfile", body: tarOf(t, tarEntry{name: "Dockerfile", typ: tar.TypeSymlink, link: "other"}), err: "not a regular file"},
		{name: "hard link Dockerfile", body: tarOf(t, tarEntry{name: "o", body: "FROM a\n"}, tarEntry{name: "Dockerfile", typ: tar.TypeLink, link: "o"}), err: "not a regular file"},
		{name: "symlinked directory on the way", body: tarOf(t, tarEntry{name: "sub", typ: tar.TypeSymlink, link: "evil"}, tarEntry{name: "sub/Dockerfile", body: "FROM a\n"}), dockerfile: "sub/Dockerfile", err: "not a directory"},
		{name: "written through a symlink", body: tarOf(t, tarEntry{name: "d", typ: tar.TypeSymlink, link: "."}, tarEntry{name: "d/Dockerfile", body: "FROM a\n"}), want: "FROM a\n"},
		{name: "root a symlink", body: tarOf(t, tarEntry{name: "./", typ: tar.TypeSymlink, link: "/elsewhere"}, tarEntry{name: "Dockerfile", body: "FROM a\n"}), err: "root is not a directory"},
		{name: "root a directory", body: tarOf(t, tarEntry{name: "./", typ: tar.TypeDir}, tarEntry{name: "Dockerfile", body: "FROM a\n"}), want: "FROM a\n"},
		{name: "beyond the limit", body: tarOf(t, tarEntry{name: "a", body: big}, tarEntry{name: "Dockerfile", body: "FROM a\n"}), limit: 1024, err: "first 1024 bytes"},
		{name: "bzip2", body: []byte("BZh91AY&SY"), err: "bzip2-compressed"},
		{name: "xz", body: []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, err: "xz-compressed"},
		{name: "zstd", body: []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, err: "zstd-compressed"},
		{name: "not a tar", body: []byte(strings.Repeat("garbage!", 100)), err: "cannot be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			limit := tc.limit
			if limit == 0 {
				limit = maxContextPeek
			}
			ctx, err := readBuildContext(bytes.NewReader(tc.body), tc.dockerfile, limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBuildContext) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			} else if string(ctx.Dockerfile) != tc.want {
				t.Errorf("Dockerfile = %q, want %q", ctx.Dockerfile, tc.want)
			}
			// Whatever was decided, the stream is the body, byte for byte.
			got, serr := io.ReadAll(ctx.Stream)
			if serr != nil && tc.err == "" && tc.name != "twice before" {
				t.Fatalf("stream: %v", serr)
			}
			if serr == nil && !bytes.Equal(got, tc.body) {
				t.Errorf("stream is %d bytes, want the body's %d", len(got), len(tc.body))
			}
		})
	}
}

// TestBuildContextStreamCut: an entry after the Dockerfile that would
// replace it on extraction ends the forwarded stream with an error.
func TestBuildContextStreamCut(t *testing.T) {
	cases := []struct {
		name    string
		entries []tarEntry
		err     string
	}{
		{"second Dockerfile", []tarEntry{{name: "Dockerfile", body: "FROM a\n"}, {name: "x", body: "1"}, {name: "./Dockerfile", body: "FROM evil\n"}}, "twice"},
		{"through a symlinked directory", []tarEntry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "Dockerfile", body: "FROM a\n"}, {name: "d/Dockerfile", body: "FROM evil\n"}}, "twice"},
		{"parent replaced", []tarEntry{{name: "sub/", typ: tar.TypeDir}, {name: "sub/Dockerfile", body: "FROM a\n"}, {name: "sub", typ: tar.TypeSymlink, link: "/"}}, "not a directory"},
		{"Dockerfile turned into a directory", []tarEntry{{name: "Dockerfile", body: "FROM a\n"}, {name: "Dockerfile/", typ: tar.TypeDir}}, "twice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := tarOf(t, tc.entries...)
			df := ""
			if tc.name == "parent replaced" {
				df = "sub/Dockerfile"
			}
			for _, b := range [][]byte{body, gzipped(t, body)} {
				ctx, err := readBuildContext(bytes.NewReader(b), df, maxContextPeek)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if string(ctx.Dockerfile) != "FROM a\n" {
					t.Errorf("Dockerfile = %q", ctx.Dockerfile)
				}
				got, err := io.ReadAll(ctx.Stream)
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("stream err = %v, want %q", err, tc.err)
				}
				if len(got) >= len(b) {
					t.Errorf("the stream gave all %d bytes before its error", len(got))
				}
			}
		})
	}
	// A harmless later entry (the lower-case name once Dockerfile was
	// found) passes.
	body := tarOf(t, tarEntry{name: "Dockerfile", body: "FROM a\n"}, tarEntry{name: "dockerfile", body: "FROM b\n"})
	ctx, err := readBuildContext(bytes.NewReader(body), "", maxContextPeek)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(ctx.Stream); err != nil || !bytes.Equal(got, body) {
		t.Errorf("stream = %d bytes, %v; want the body", len(got), err)
	}
}

const imagesConfig = `
roles:
  pinned:
    allow: [container.create, image.pull, image.build, service.create]
    images:
      allow: ["busybox", "registry.example.com/team/*", "docker.io/library/alpine:3.*", "debian@sha256:0123456789012345678901234567890123456789012345678901234567890123"]
  builder:
    allow: [image.build, image.import, image.load, container.commit, image.tag]
  fetcher:
    allow: [image.build, image.import]
    builds:
      remote_sources: true
  notag:
    allow: [image.build, image.import, image.load, container.commit, image.pull]
  loose:
    allow: ["*"]
    builds:
      remote_context: true
  fetchpinned:
    allow: [image.build]
    builds:
      remote_sources: true
    images:
      allow: [busybox]
clients:
  - cn: x
    role: admin
`

func TestImageAllowList(t *testing.T) {
	p := mustPolicy(t, imagesConfig)
	create := func(image string) string { return `{"Image":"` + image + `"}` }
	cases := []struct {
		name, method, target, body string
		field                      string // "" when allowed
	}{
		{"create short name", "POST", "/containers/create", create("busybox"), ""},
		{"create normalized", "POST", "/containers/create", create("docker.io/library/busybox:latest"), ""},
		{"create other tag of an allowed name", "POST", "/containers/create", create("busybox:1.36"), ""},
		{"create by digest of an allowed name", "POST", "/containers/create", create("busybox@sha256:0123456789012345678901234567890123456789012345678901234567890123"), ""},
		{"create glob", "POST", "/containers/create", create("registry.example.com/team/app:v1"), ""},
		{"create glob does not cross /", "POST", "/containers/create", create("registry.example.com/team/sub/app"), "Config.Image"},
		{"create tag glob", "POST", "/containers/create", create("alpine:3.20"), ""},
		{"create tag glob other tag", "POST", "/containers/create", create("alpine:edge"), "Config.Image"},
		{"create tag glob default tag", "POST", "/containers/create", create("alpine"), "Config.Image"},
		{"create digest pin", "POST", "/containers/create", create("debian@sha256:0123456789012345678901234567890123456789012345678901234567890123"), ""},
		{"create digest pin other digest", "POST", "/containers/create", create("debian@sha256:1123456789012345678901234567890123456789012345678901234567890123"), "Config.Image"},
		{"create digest pin by tag", "POST", "/containers/create", create("debian:12"), "Config.Image"},
		{"create not listed", "POST", "/containers/create", create("ubuntu"), "Config.Image"},
		{"create lookalike registry", "POST", "/containers/create", create("registry.example.com.evil/team/app"), "Config.Image"},
		{"create image ID", "POST", "/containers/create", create("sha256:0123456789012345678901234567890123456789012345678901234567890123"), "Config.Image"},
		{"create ID prefix", "POST", "/containers/create", create("0123abc"), "Config.Image"},
		{"create lower-case keys", "POST", "/containers/create", `{"image":"ubuntu"}`, "Config.Image"},
		{"service", "POST", "/services/create", `{"TaskTemplate":{"ContainerSpec":{"Image":"ubuntu"}}}`, "TaskTemplate.ContainerSpec.Image"},
		{"pull", "POST", "/images/create?fromImage=busybox&tag=1.36", "", ""},
		{"pull digest in tag", "POST", "/images/create?fromImage=debian&tag=sha256:0123456789012345678901234567890123456789012345678901234567890123", "", ""},
		{"pull not listed", "POST", "/images/create?fromImage=ubuntu&tag=latest", "", "query fromImage"},
		{"pull every tag of a tag glob", "POST", "/images/create?fromImage=alpine", "", "query fromImage"},
		{"pull every tag of an allowed name", "POST", "/images/create?fromImage=busybox", "", ""},
		{"pull tag replaces the name's", "POST", "/images/create?fromImage=alpine:3.20&tag=edge", "", "query fromImage"},
		{"build FROM", "POST", "/build", "FROM busybox\nRUN true\n", ""},
		{"build FROM not listed", "POST", "/build", "FROM ubuntu\n", "Dockerfile line 1 (FROM)"},
		{"build FROM scratch", "POST", "/build", "FROM scratch\nCOPY a /a\n", ""},
		{"build FROM earlier stage", "POST", "/build", "FROM busybox AS base\nFROM base\nFROM BASE\n", ""},
		{"build FROM later stage name is an image", "POST", "/build", "FROM later\nFROM busybox AS later\n", "Dockerfile line 1 (FROM)"},
		{"build FROM ARG default", "POST", "/build", "ARG IMG=ubuntu\nFROM $IMG\n", "Dockerfile line 2 (FROM)"},
		{"build FROM ARG overridden", "POST", "/build?buildargs=" + `{"IMG":"ubuntu"}`, "ARG IMG=busybox\nFROM ${IMG}\n", "Dockerfile line 2 (FROM)"},
		{"build FROM ARG allowed", "POST", "/build?buildargs=" + `{"IMG":"busybox"}`, "ARG IMG=ubuntu\nFROM ${IMG}\n", ""},
		{"build second stage", "POST", "/build", "FROM busybox\n\nFROM ubuntu AS x\n", "Dockerfile line 3 (FROM)"},
		{"build COPY --from image", "POST", "/build", "FROM busybox\nCOPY --from=ubuntu /etc/passwd /p\n", "Dockerfile line 2 (COPY --from)"},
		{"build COPY --from stage", "POST", "/build", "FROM busybox AS a\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=0 /x /y\n", ""},
		{"build RUN --mount from", "POST", "/build", "FROM busybox\nRUN --mount=type=bind,from=ubuntu,target=/u true\n", "Dockerfile line 2 (RUN --mount from)"},
		{"build FROM image ID", "POST", "/build", "FROM sha256:0123456789012345678901234567890123456789012345678901234567890123\n", "Dockerfile line 1 (FROM)"},
		{"build syntax image with BuildKit", "POST", "/build?version=2", "# syntax=docker/dockerfile:1\nFROM busybox\n", "Dockerfile syntax"},
		{"build BUILDKIT_SYNTAX", "POST", "/build?version=2&buildargs=" + `{"BUILDKIT_SYNTAX":"evil/frontend"}`, "# syntax=busybox\nFROM busybox\n", "Dockerfile syntax"},
		{"remote context", "POST", "/build?remote=https://example.com/ctx.tar", "", "query remote"},
		{"build cache from", "POST", "/build?cachefrom=" + `["ubuntu"]`, "FROM busybox\n", "query cachefrom"},
		{"build cache from listed", "POST", "/build?cachefrom=" + `["busybox:1"]`, "FROM busybox\n", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "x", "pinned", tc.method, tc.target, tc.body)
			if tc.field == "" {
				if d.Effect != Allow {
					t.Fatalf("effect = %v, want allow: %s", d.Effect, d.message())
				}
				return
			}
			if d.Effect != Deny || d.Field != tc.field {
				t.Fatalf("effect %v field %q, want deny on %q: %s", d.Effect, d.Field, tc.field, d.message())
			}
			if tc.field != "query remote" && tc.field != "Dockerfile syntax" && !strings.Contains(d.message(), "images.allow") {
				t.Errorf("message %q does not name images.allow", d.message())
			}
			// A role without images.allow may.
			if d := decide(t, p, "x", "loose", tc.method, tc.target, tc.body); d.Effect != Allow && tc.field != "Dockerfile syntax" {
				t.Errorf("loose: %s", d.message())
			}
		})
	}
}

func TestTagWrites(t *testing.T) {
	p := mustPolicy(t, imagesConfig)
	cases := []struct {
		name, method, target, body, field string
	}{
		{"commit repo", "POST", "/commit?container=web&repo=busybox&tag=latest", "", "query repo"},
		{"import repo", "POST", "/images/create?fromSrc=-&repo=busybox", "", "query repo"},
		{"build t", "POST", "/build?t=busybox:latest", "", "query t"},
		{"build second t", "POST", "/build?t=&t=busybox", "", "query t"},
		{"build outputs name", "POST", "/build?outputs=" + `[{"Type":"moby","Attrs":{"name":"busybox"}}]`, "", "query outputs"},
		{"load", "POST", "/images/load", "", "body"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "x", "notag", tc.method, tc.target, tc.body)
			if d.Effect != Deny || d.Field != tc.field {
				t.Fatalf("effect %v field %q, want deny on %q: %s", d.Effect, d.Field, tc.field, d.message())
			}
			if want := "allow it by adding image.tag to roles.notag.allow"; !strings.Contains(d.message(), want) {
				t.Errorf("message %q, want it to say %q", d.message(), want)
			}
			if d := decide(t, p, "x", "builder", tc.method, tc.target, tc.body); d.Effect != Allow {
				t.Errorf("with image.tag: %s", d.message())
			}
		})
	}
	// Without a name, nothing is tagged.
	for _, target := range []string{"/commit?container=web", "/images/create?fromSrc=-", "/build?t="} {
		if d := decide(t, p, "x", "notag", "POST", target, ""); d.Effect != Allow {
			t.Errorf("%s: %s", target, d.message())
		}
	}
}

func TestBuildSources(t *testing.T) {
	p := mustPolicy(t, imagesConfig)
	cases := []struct {
		name, target, dockerfile, field string
		status                          int
	}{
		{"ADD URL", "/build", "FROM busybox\nADD https://example.com/x.tar /x\n", "Dockerfile line 2 (ADD)", 403},
		{"ADD URL with checksum", "/build", "FROM busybox\nADD --checksum=sha256:0123456789012345678901234567890123456789012345678901234567890123 http://10.0.0.1/x /x\n", "Dockerfile line 2 (ADD)", 403},
		{"ADD git", "/build", "FROM busybox\nADD git@github.com:moby/moby.git /src\n", "Dockerfile line 2 (ADD)", 403},
		{"ADD second source", "/build", "FROM busybox\nADD a.txt https://example.com/y /d/\n", "Dockerfile line 2 (ADD)", 403},
		{"ADD variable", "/build", "FROM busybox\nARG SRC=a\nADD $SRC /x\n", "Dockerfile line 3 (ADD)", 403},
		{"ADD JSON form", "/build", "FROM busybox\nADD [\"http://example.com/x\", \"/x\"]\n", "Dockerfile line 2 (ADD)", 403},
		{"ADD in a later stage", "/build", "FROM busybox AS a\nRUN true\nFROM a\nADD http://example.com/x /x\n", "Dockerfile line 4 (ADD)", 403},
		{"session build", "/build?version=2&remote=client-session&session=s", "", "query remote", 403},
		{"BUILDKIT_SYNTAX", "/build?version=2&buildargs=" + `{"BUILDKIT_SYNTAX":"evil/frontend"}`, "FROM busybox\n", "Dockerfile syntax", 403},
		{"BuildKit cache from a registry", "/build?version=2&cachefrom=" + `["registry.example.com/app:cache"]`, "FROM busybox\n", "query cachefrom", 403},
		{"import from a URL", "/images/create?fromSrc=http://169.254.169.254/x.tar", "", "query fromSrc", 403},
		{"unparsable", "/build", "FROM busybox\nFROBNICATE x\n", "body", 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "x", "builder", "POST", tc.target, tc.dockerfile)
			if d.Effect != Deny || d.Field != tc.field || d.Status != tc.status {
				t.Fatalf("effect %v field %q status %d, want deny on %q with %d: %s", d.Effect, d.Field, d.Status, tc.field, tc.status, d.message())
			}
			if tc.status == 403 && !strings.Contains(d.message(), "roles.builder.builds.remote_sources: true") {
				t.Errorf("message %q does not name builds.remote_sources", d.message())
			}
			if tc.status == 403 {
				if d := decide(t, p, "x", "fetcher", "POST", tc.target, tc.dockerfile); d.Effect != Allow {
					t.Errorf("with remote_sources: %s", d.message())
				}
			}
		})
	}
	for _, df := range []string{
		"FROM busybox\nADD a.tar /x\nADD --chown=1:1 dir/ /d/\n",
		"FROM busybox\nADD <<EOF /x\nhttp://example.com/not-fetched\nEOF\n",
		"FROM busybox\nCOPY http-notes.txt /x\n",
		"# syntax=docker/dockerfile:1\nFROM busybox\n", // the classic builder ignores it
	} {
		if d := decide(t, p, "x", "builder", "POST", "/build", df); d.Effect != Allow {
			t.Errorf("%q: %s", df, d.message())
		}
	}
}

// TestFrontendImage: a BuildKit frontend image is an image the build
// uses; BUILDKIT_SYNTAX wins over the directive, as in BuildKit.
func TestFrontendImage(t *testing.T) {
	p := mustPolicy(t, imagesConfig)
	df := "# syntax=busybox\nFROM busybox\n"
	if d := decide(t, p, "x", "fetchpinned", "POST", "/build?version=2", df); d.Effect != Allow {
		t.Errorf("listed frontend: %s", d.message())
	}
	d := decide(t, p, "x", "fetchpinned", "POST", "/build?version=2&buildargs="+`{"BUILDKIT_SYNTAX":"evil/frontend"}`, df)
	if d.Effect != Deny || !strings.Contains(d.message(), `"evil/frontend" (evil/frontend:latest) is not in images.allow`) {
		t.Errorf("BUILDKIT_SYNTAX not listed: %s", d.message())
	}
}

// TestEvaluateBuildStream: Evaluate reads a build's context up to the
// Dockerfile and hands back the whole body to forward.
func TestEvaluateBuildStream(t *testing.T) {
	p := mustPolicy(t, imagesConfig+"  - cn: b\n    role: builder\n")
	body := gzipped(t, contextTar(t, "Dockerfile", "FROM busybox\n"))
	v := p.Evaluate(t.Context(), Input{Identity: identity.Identity{CN: "b"}, Method: "POST", Path: "/build", RawQuery: "t=app",
		ContentType: "application/x-tar", Body: bytes.NewReader(body)}, &fakeDaemon{})
	if v.Effect != Allow {
		t.Fatalf("effect = %v: %s", v.Effect, v.Message)
	}
	if v.Stream == nil || v.BytesIn == 0 {
		t.Fatalf("stream %v, bytes in %d: want the body read up to the Dockerfile", v.Stream, v.BytesIn)
	}
	if got, err := io.ReadAll(v.Stream); err != nil || !bytes.Equal(got, body) {
		t.Errorf("stream = %d bytes, %v; want the body's %d", len(got), err, len(body))
	}
	v = p.Evaluate(t.Context(), Input{Identity: identity.Identity{CN: "b"}, Method: "POST", Path: "/build",
		Body: bytes.NewReader(contextTar(t, "Dockerfile", "FROM busybox\nADD http://169.254.169.254/x /x\n"))}, &fakeDaemon{})
	if v.Effect != Deny || v.Status != http.StatusForbidden || !strings.Contains(v.Message, "builds.remote_sources") {
		t.Errorf("ADD of a URL: effect %v status %d %q", v.Effect, v.Status, v.Message)
	}
}

// FuzzBuildContext: whatever the body, reading a build context neither
// panics nor changes a byte of what is forwarded, and a Dockerfile read
// is parsed without panicking.
func FuzzBuildContext(f *testing.F) {
	f.Add(contextTar(f, "Dockerfile", "FROM busybox\nADD http://x/y /y\n"), "")
	f.Add(gzipped(f, contextTar(f, "sub/Dockerfile", "ARG B=a\nFROM $B AS s\nCOPY --from=s /a /b\n")), "sub/Dockerfile")
	f.Add(tarOf(f, tarEntry{name: "d", typ: tar.TypeSymlink, link: "."}, tarEntry{name: "Dockerfile", body: "FROM a\n"}, tarEntry{name: "d/Dockerfile", body: "FROM b\n"}), "")
	f.Add([]byte("BZh9"), "")
	f.Fuzz(func(t *testing.T, body []byte, dockerfile string) {
		ctx, err := readBuildContext(bytes.NewReader(body), dockerfile, 1<<20)
		if err == nil {
			if _, err := analyzeDockerfile(ctx.Dockerfile, ""); err != nil && !strings.Contains(err.Error(), "Dockerfile") {
				t.Errorf("analyze: %v", err)
			}
		}
		got, serr := io.ReadAll(ctx.Stream)
		if serr == nil && !bytes.Equal(got, body) {
			t.Errorf("stream changed the body: %d bytes, want %d", len(got), len(body))
		}
		if serr != nil && !bytes.HasPrefix(body, got) {
			t.Errorf("a cut stream is not a prefix of the body")
		}
	})
}

// TestBuildContextBounds: one large entry before the Dockerfile is not
// held whole, and a sparse entry (whose holes a reader would produce
// without reading the body) is refused.
func TestBuildContextBounds(t *testing.T) {
	body := tarOf(t, tarEntry{name: "big", body: strings.Repeat("x", 8<<20)}, tarEntry{name: "Dockerfile", body: "FROM a\n"})
	ctx, err := readBuildContext(bytes.NewReader(body), "", 1<<20)
	if err == nil || !strings.Contains(err.Error(), "first 1048576 bytes") {
		t.Fatalf("err = %v, want the limit", err)
	}
	if ctx.Read > 1<<20+64<<10 {
		t.Errorf("held %d bytes for a limit of 1 MiB", ctx.Read)
	}
	if got, err := io.ReadAll(ctx.Stream); err != nil || !bytes.Equal(got, body) {
		t.Errorf("stream = %d bytes, %v; want the body", len(got), err)
	}

	sparse := tarOf(t, tarEntry{name: "hole", body: "x"}, tarEntry{name: "Dockerfile", body: "FROM a\n"})
	// The first header made GNU sparse: type flag, GNU magic, one
	// fragment of 1 byte at offset 0, real size 1 GiB (holes after it).
	sparse[156] = tar.TypeGNUSparse
	copy(sparse[257:265], "ustar  \x00")
	copy(sparse[386:398], "00000000000\x00")
	copy(sparse[398:410], "00000000001\x00")
	copy(sparse[483:495], "10000000000\x00")
	var sum int
	for i, c := range sparse[:512] {
		if i >= 148 && i < 156 {
			c = ' ' // the checksum field counts as spaces
		}
		sum += int(c)
	}
	copy(sparse[148:156], fmt.Sprintf("%06o\x00 ", sum))
	if _, err := readBuildContext(bytes.NewReader(sparse), "", maxContextPeek); err == nil || !strings.Contains(err.Error(), "hole is a sparse file") {
		t.Errorf("sparse entry: err = %v, want it refused", err)
	}
}

func TestImagePatternErrors(t *testing.T) {
	cases := map[string]string{
		"library/*":        `(docker.io/library/*)`,
		"alpine*":          `(docker.io/library/alpine*)`,
		"Bad Ref":          "is not an image reference",
		"busybox@sha256:*": "a digest pin names one image",
		"docker.io/[a":     "is not a valid glob",
	}
	for entry, want := range cases {
		_, errs := compileImagePatterns("roles.r.images.allow", []string{entry})
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), want) || !strings.Contains(errs[0].Error(), "roles.r.images.allow[0]") {
			t.Errorf("%q: errors %v, want one saying %q", entry, errs, want)
		}
	}
}

// TestBuildPrefixLimit: limits.max_build_prefix bounds what Evaluate
// holds before the Dockerfile.
func TestBuildPrefixLimit(t *testing.T) {
	p := mustPolicy(t, imagesConfig+"  - cn: b\n    role: builder\nlimits:\n  max_build_prefix: 65536\n")
	body := tarOf(t, tarEntry{name: "a", body: strings.Repeat("a", 100<<10)}, tarEntry{name: "Dockerfile", body: "FROM busybox\n"})
	v := p.Evaluate(t.Context(), Input{Identity: identity.Identity{CN: "b"}, Method: "POST", Path: "/build", Body: bytes.NewReader(body)}, &fakeDaemon{})
	if v.Effect != Deny || v.Status != http.StatusBadRequest || !strings.Contains(v.Message, "no Dockerfile in the first 65536 bytes") {
		t.Errorf("effect %v status %d %q, want 400 naming the limit", v.Effect, v.Status, v.Message)
	}
	if v.BytesIn > 65536+64<<10 {
		t.Errorf("held %d bytes", v.BytesIn)
	}
}
