package dockertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient speaks just enough of the Docker Engine API, over the daemon's
// unix socket, to wait for it, import the test image and kill containers.
// Paths carry no /vX.Y prefix so that any daemon version answers with its
// own default API version.
type apiClient struct {
	http *http.Client
}

func newAPIClient(socketPath string) *apiClient {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", socketPath)
		},
		DisableCompression: true,
	}
	return &apiClient{http: &http.Client{Transport: transport}}
}

func (c *apiClient) close() { c.http.CloseIdleConnections() }

// do sends one request and returns the response if its status is 2xx.
func (c *apiClient) do(ctx context.Context, method, path string, body io.Reader) (*http.Response, error) {
	// The host part is ignored: the transport always dials the socket.
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-tar")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, &apiError{status: resp.StatusCode, message: strings.TrimSpace(string(msg))}
	}
	return resp, nil
}

// apiError is a non-2xx answer from the daemon.
type apiError struct {
	status  int
	message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("docker API status %d: %s", e.status, e.message)
}

func isNotFound(err error) bool {
	var a *apiError
	return errors.As(err, &a) && a.status == http.StatusNotFound
}

// ping reports whether the daemon answers GET /_ping.
func (c *apiClient) ping(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/_ping", nil)
	if err != nil {
		return err
	}
	return drain(resp)
}

// imageExists reports whether the daemon has an image by that reference.
func (c *apiClient) imageExists(ctx context.Context, ref string) (bool, error) {
	resp, err := c.do(ctx, http.MethodGet, "/images/"+url.PathEscape(ref)+"/json", nil)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, drain(resp)
}

// importImage is `docker import - repo:tag` with Dockerfile changes applied:
// POST /images/create?fromSrc=- with a root filesystem tarball as body.
func (c *apiClient) importImage(ctx context.Context, rootfs io.Reader, repo, tag string, changes []string) error {
	q := url.Values{"fromSrc": {"-"}, "repo": {repo}, "tag": {tag}}
	for _, change := range changes {
		q.Add("changes", change)
	}
	resp, err := c.do(ctx, http.MethodPost, "/images/create?"+q.Encode(), rootfs)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return progressError(resp.Body)
}

// progressError reads a JSON progress stream and returns the first error in
// it: the daemon answers 200 and reports import failures in the stream.
func progressError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error string `json:"error"`
		}
		err := dec.Decode(&msg)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to read the import progress: %w", err)
		}
		if msg.Error != "" {
			return errors.New(msg.Error)
		}
	}
}

// runningContainers lists the IDs of the daemon's running containers.
func (c *apiClient) runningContainers(ctx context.Context) ([]string, error) {
	resp, err := c.do(ctx, http.MethodGet, "/containers/json", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list []struct {
		ID string `json:"Id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return nil, fmt.Errorf("failed to decode the container list: %w", err)
	}
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// killContainer sends SIGKILL to a container (docker kill).
func (c *apiClient) killContainer(ctx context.Context, id string) error {
	resp, err := c.do(ctx, http.MethodPost, "/containers/"+url.PathEscape(id)+"/kill", nil)
	if err != nil {
		return err
	}
	return drain(resp)
}

func drain(resp *http.Response) error {
	_, err := io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return err
}
