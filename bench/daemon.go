package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/dockertest"
)

// blobImage is the image the streaming test exports.
const blobImage = "dockgate-bench-blob:latest"

// daemonAPI talks to the private daemon's unix socket for set-up.
type daemonAPI struct{ http *http.Client }

func newDaemonAPI(host string) *daemonAPI {
	socket := strings.TrimPrefix(host, "unix://")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &daemonAPI{http: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socket)
		},
	}}}
}

// call sends a request and returns the body of a 2xx answer.
func (a *daemonAPI) call(ctx context.Context, method, path, contentType string, body io.Reader) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	return data, nil
}

// prepareDaemon creates the stopped containers that fill the list and the
// image that the streaming test exports.
func (env *environment) prepareDaemon(ctx context.Context, opts options) error {
	api := newDaemonAPI(env.daemon.Host())
	defer api.http.CloseIdleConnections()
	env.logf("creating %d stopped containers", opts.containers)
	for i := range opts.containers {
		if err := api.createContainer(ctx, fmt.Sprintf("bench-%02d", i)); err != nil {
			return err
		}
	}
	list, err := api.call(ctx, http.MethodGet, "/containers/json?all=1", "", nil)
	if err != nil {
		return err
	}
	env.listSize = len(list)
	if opts.skipStreaming {
		return nil
	}
	env.logf("importing a %d MB image of random data", opts.imageMB)
	env.image = blobImage
	return api.importBlob(ctx, blobImage, int64(opts.imageMB)<<20)
}

// createContainer creates (and never starts) a busybox container with two
// of the labels a compose project sets, so that each list entry has a
// realistic size (about 700 bytes).
func (a *daemonAPI) createContainer(ctx context.Context, name string) error {
	body, err := json.Marshal(map[string]any{
		"Image": dockertest.ImageName,
		"Cmd":   []string{"sh", "-c", "echo benchmark container " + name},
		"Labels": map[string]string{
			"com.docker.compose.project": "dockgate-bench",
			"com.docker.compose.service": name,
		},
		"HostConfig": map[string]any{"NetworkMode": "none"},
	})
	if err != nil {
		return err
	}
	_, err = a.call(ctx, http.MethodPost, "/containers/create?name="+url.QueryEscape(name), "application/json", bytes.NewReader(body))
	return err
}

// importBlob imports an image holding busybox (when the host has it) and
// size bytes of random, incompressible data: `docker import` of a tar
// generated on the fly.
func (a *daemonAPI) importBlob(ctx context.Context, ref string, size int64) error {
	repo, tag, _ := strings.Cut(ref, ":")
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeBlobTar(pw, size)) }()
	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}}
	out, err := a.call(ctx, http.MethodPost, "/images/create?"+q.Encode(), "application/x-tar", pr)
	pr.CloseWithError(errors.New("import finished"))
	if err != nil {
		return fmt.Errorf("failed to import %s: %w", ref, err)
	}
	if i := bytes.Index(out, []byte(`"error"`)); i >= 0 {
		return fmt.Errorf("failed to import %s: %s", ref, out[i:])
	}
	return nil
}

func writeBlobTar(w io.Writer, size int64) error {
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	if bb, err := os.ReadFile("/bin/busybox"); err == nil {
		h := &tar.Header{Name: "bin/busybox", Mode: 0o755, Size: int64(len(bb)), ModTime: mtime}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(bb); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "blob", Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
		return err
	}
	// A fixed seed: the same bytes every run, and no compressor can shrink them.
	random := rand.NewChaCha8([32]byte{'d', 'o', 'c', 'k', 'g', 'a', 't', 'e'})
	if _, err := io.CopyN(tw, random, size); err != nil {
		return err
	}
	return tw.Close()
}
