package gateway

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

// buildTar is a build context of the given files, in order, gzipped.
func buildTar(t *testing.T, files ...[2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f[1])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	return buf.Bytes()
}

// TestBuildContextForwarded: the policy reads a build's context up to its
// Dockerfile, and the daemon still gets the client's body byte for byte;
// a context whose later entry replaces the Dockerfile is cut, and the
// client is told why.
func TestBuildContextForwarded(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		c.Clients = []config.ClientRule{{CN: "dev", Role: config.RoleDeployer}}
	})
	type read struct {
		data []byte
		err  error
	}
	reads := make(chan read, 2) // what the daemon read of each build
	tg.fake.mux.HandleFunc("POST /v1.41/build", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(r.Body)
		reads <- read{data, err}
		if err != nil {
			return
		}
		io.WriteString(w, `{"stream":"built"}`)
	})
	post := func(body []byte) (int, string) {
		resp, err := tg.httpClient(tg.pki.client("dev")).Post(tg.url("/v1.41/build"), "application/x-tar", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(answer)
	}

	body := buildTar(t, [2]string{"Dockerfile", "FROM busybox\n"}, [2]string{"data", strings.Repeat("d", 1<<20)})
	if status, answer := post(body); status != http.StatusOK {
		t.Fatalf("build: %d %s", status, answer)
	}
	if r := <-reads; r.err != nil || !bytes.Equal(r.data, body) {
		t.Errorf("the daemon got %d bytes (%v), want the client's %d", len(r.data), r.err, len(body))
	}

	replaced := buildTar(t, [2]string{"Dockerfile", "FROM busybox\n"}, [2]string{"data", strings.Repeat("d", 1<<20)},
		[2]string{"./Dockerfile", "FROM other\n"})
	status, answer := post(replaced)
	if status != http.StatusBadRequest || !strings.Contains(answer, "the context writes Dockerfile twice") {
		t.Errorf("replaced Dockerfile: %d %s, want 400 naming it", status, answer)
	}
	if r := <-reads; r.err == nil || len(r.data) >= len(replaced) {
		t.Errorf("the daemon read %d of %d bytes without an error: it got the whole context", len(r.data), len(replaced))
	}
}
