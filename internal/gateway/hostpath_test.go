package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveHostPath(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(filepath.Join(root, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target string) {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	mkdir("allowed/real/sub")
	mkdir("outside")
	link("allowed/up", "/etc")
	link("allowed/rel", "../outside")
	link("allowed/inside", "real/sub")
	link("allowed/dangling", filepath.Join(root, "nowhere"))
	link("allowed/loop", "loop")

	cases := []struct {
		in, want, err string
	}{
		{in: "allowed/real", want: "allowed/real"},
		{in: "allowed/real/sub/new/deeper", want: "allowed/real/sub/new/deeper"},
		{in: "allowed/missing", want: "allowed/missing"},
		{in: "allowed/up", want: "/etc"},
		{in: "allowed/up/not-there", want: "/etc/not-there"},
		{in: "allowed/rel/x", want: "outside/x"},
		{in: "allowed/inside", want: "allowed/real/sub"},
		{in: "allowed/dangling", err: "dangling symbolic link"},
		{in: "allowed/dangling/x", err: "dangling symbolic link"},
		{in: "allowed/loop", err: "too many links"},
	}
	for _, c := range cases {
		got, err := resolveHostPath(filepath.Join(root, c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("resolveHostPath(%s) = %q, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		want := c.want
		if !filepath.IsAbs(want) {
			want = filepath.Join(root, want)
		}
		if err != nil || got != want {
			t.Errorf("resolveHostPath(%s) = %q, %v; want %q", c.in, got, err, want)
		}
	}
	if got, err := resolveHostPath("/"); err != nil || got != "/" {
		t.Errorf("resolveHostPath(/) = %q, %v", got, err)
	}
}
