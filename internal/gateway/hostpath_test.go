package gateway

import (
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
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

// The gateway in front of a local socket checks bind sources with their
// links resolved, against the allowed paths as they were when it loaded
// its config: a link planted in an allowed path, or an allowed path
// turned into a link afterwards, gets nothing past it.
func TestGatewayChecksLinksInBindSources(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	allowed, cache := filepath.Join(root, "ci"), filepath.Join(root, "ci", "cache")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(allowed, "escape")); err != nil {
		t.Fatal(err)
	}
	tg := startTestGateway(t, func(c *config.Config) {
		c.Roles = map[string]config.RoleSpec{"ci": {
			Allow:      []string{"container.*"},
			Containers: config.ContainerKnob{BindMounts: []string{allowed, cache}},
		}}
		c.Clients = []config.ClientRule{{CN: "ci-1", Role: "ci"}}
	})
	created := tg.fakeCreates()
	cert := tg.pki.client("ci-1")
	create := func(source string) (int, string) {
		return tg.postJSON(t, cert, "/v1.41/containers/create", `{"Image":"x","HostConfig":{"Binds":["`+source+`:/x"]}}`)
	}

	if status, answer := create(filepath.Join(allowed, "data")); status != http.StatusCreated {
		t.Fatalf("a plain path under the allowed one: %d %s", status, answer)
	}
	status, answer := create(filepath.Join(allowed, "escape"))
	if status != http.StatusForbidden || !strings.Contains(answer, `resolves through a symbolic link to \"/etc\"`) {
		t.Errorf("a link to /etc: %d %s, want 403 naming /etc", status, answer)
	}
	// After the gateway loaded its config, a client replaces the allowed
	// path cache with a link to /.
	if err := os.Remove(cache); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", cache); err != nil {
		t.Fatal(err)
	}
	status, answer = create(filepath.Join(cache, "etc"))
	if status != http.StatusForbidden || !strings.Contains(answer, `resolves through a symbolic link to \"/etc\"`) {
		t.Errorf("an allowed path turned into a link to /: %d %s, want 403", status, answer)
	}
	if n := created.Load(); n != 1 {
		t.Errorf("the daemon got %d creates, want only the allowed one", n)
	}
}

// The log says which allowed paths the gateway cannot check links under.
func TestResolveBindPathsLogsWhatCannotBeChecked(t *testing.T) {
	root, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "to-root")
	if err := os.Symlink("/", link); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(root, "missing")
	cfg := config.Default()
	cfg.Roles = map[string]config.RoleSpec{
		"a": {Allow: []string{"container.*"}, Containers: config.ContainerKnob{BindMounts: []string{missing, link}}},
		"b": {Allow: []string{"container.*"}, Containers: config.ContainerKnob{BindMounts: []string{missing}}},
	}
	p, err := policy.Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	resolveBindPaths(p, slog.New(slog.NewTextHandler(&logs, nil)))
	out := logs.String()
	if n := strings.Count(out, "bind path does not exist where the gateway runs"); n != 1 || !strings.Contains(out, "path="+missing) {
		t.Errorf("want one warning about %s, got:\n%s", missing, out)
	}
	if !strings.Contains(out, "bind path resolves to /") || !strings.Contains(out, "path="+link) {
		t.Errorf("want a warning about %s leading to /, got:\n%s", link, out)
	}
}

func TestResolvesHostPathsOnlyForALocalSocket(t *testing.T) {
	for url, want := range map[string]bool{
		"unix:///var/run/docker.sock": true,
		"unix:/var/run/docker.sock":   true, // url.Parse reads the scheme as newUpstream does
		"tcp://10.0.0.5:2376":         false,
	} {
		if got := resolvesHostPaths(config.Upstream{URL: url}); got != want {
			t.Errorf("resolvesHostPaths(%s) = %v, want %v", url, got, want)
		}
	}
}
