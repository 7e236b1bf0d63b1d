package doctor

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/client"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// The classic failure, for real: a static Go HTTPS client on scratch
// without a CA bundle cannot verify a server, the same image with the bundle
// copied in can, and doctor image tells them apart before either runs. The
// server is on 127.0.0.1 and the containers share the host's network.
func TestScratchImagesAgainstLocalHTTPS(t *testing.T) {
	d := dockertest.ForTest(t)
	ca := newTestCA(t, "dockgate integration CA")
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("hello\n"))
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, leafOpts{})}}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	plain, _ := httpsgetBinaries(t)
	classic := buildTestImage(t, d, "dockgate-test/classic:latest", map[string][]byte{"httpsget": plain},
		"FROM scratch\nCOPY httpsget /httpsget\nENTRYPOINT [\"/httpsget\"]\n")
	fixed := buildTestImage(t, d, "dockgate-test/fixed:latest", map[string][]byte{"httpsget": plain, "ca-certificates.crt": bundleOf(ca)},
		"FROM scratch\nCOPY httpsget /httpsget\nCOPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nENTRYPOINT [\"/httpsget\"]\n")

	t.Run("classic image fails to verify", func(t *testing.T) {
		_, stderr, err := dockertest.RunDocker(t.Context(), d.Env(), "run", "--rm", "--network", "host", classic, srv.URL)
		if err == nil || !strings.Contains(stderr, "certificate signed by unknown authority") {
			t.Errorf("got err %v, stderr %q; want the run to fail with an unknown authority", err, stderr)
		}
	})
	t.Run("fixed image verifies", func(t *testing.T) {
		if out := d.Docker(t, "run", "--rm", "--network", "host", fixed, srv.URL); strings.TrimSpace(out) != "200 OK" {
			t.Errorf("got %q, want 200 OK", out)
		}
	})

	api, err := client.New(client.WithHost(d.Host()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	tests := []struct {
		image       string
		wantOK      bool
		wantVerdict string
	}{
		{classic, false, "certificate signed by unknown authority"},
		{fixed, true, "Go finds 1 roots in /etc/ssl/certs/ca-certificates.crt"},
	}
	for _, tt := range tests {
		t.Run("InspectImage "+tt.image, func(t *testing.T) {
			got, err := InspectImage(t.Context(), api, tt.image)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != tt.wantOK || !strings.Contains(got.Verdict, tt.wantVerdict) {
				t.Errorf("got ok %v verdict %q; want ok %v and %q", got.OK, got.Verdict, tt.wantOK, tt.wantVerdict)
			}
			if got.Binary == nil || !got.Binary.Static || got.Binary.GoVersion == "" {
				t.Errorf("binary = %+v, want the static Go client", got.Binary)
			}
		})
	}

	bin := dockertest.BuildDockgate(t)
	t.Run("dockgate doctor image", func(t *testing.T) {
		out, err := doctorImage(t.Context(), bin, d, classic)
		if err == nil || !strings.Contains(out, "dockgate: error: outbound TLS will fail") || !strings.Contains(out, "hint: copy the build stage's bundle") {
			t.Errorf("classic: got err %v, output %q; want a failure with the fixes", err, out)
		}
		if out, err := doctorImage(t.Context(), bin, d, fixed); err != nil || !strings.Contains(out, "verdict") {
			t.Errorf("fixed: got err %v, output %q; want it to pass", err, out)
		}
	})
}

// doctorImage runs the dockgate binary's doctor image against d.
func doctorImage(ctx context.Context, bin string, d *dockertest.Daemon, image string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, "doctor", "image", image)
	cmd.Env = append(os.Environ(), d.Env()...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// buildTestImage builds a context of files with the classic builder (the
// test daemon may lack BuildKit) and removes the image when t ends.
func buildTestImage(t *testing.T, d *dockertest.Daemon, tag string, files map[string][]byte, dockerfile string) string {
	t.Helper()
	ctx := t.TempDir()
	files["Dockerfile"] = []byte(dockerfile)
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(ctx, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := append(d.Env(), "DOCKER_BUILDKIT=0")
	if _, stderr, err := dockertest.RunDocker(t.Context(), env, "build", "-q", "-t", tag, ctx); err != nil {
		t.Fatalf("docker build %s: %v\n%s", tag, err, stderr)
	}
	t.Cleanup(func() { d.Docker(t, "rmi", "-f", tag) })
	return tag
}
