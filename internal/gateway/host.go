package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/policy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/volume"
)

// lookupLimit bounds an ownership lookup's answer: an inspect of a
// container is a few KiB; 4 MiB leaves room for huge label sets.
const lookupLimit = 4 << 20

// daemonHost is the gateway's policy.Host: lookups and volume creates go
// to the daemon through the gateway's daemon client, host paths are
// resolved on the filesystem the gateway shares with the daemon.
type daemonHost struct {
	// call sends one small request to the daemon and returns the status
	// and the body, bounded by lookupLimit.
	call func(ctx context.Context, method, path string, body []byte) (int, []byte, error)
	// resolve resolves a host path's links (HostPathResolver).
	resolve func(string) (string, error)
	// self is the ID of the container the gateway runs in
	// (SelfContainerID); "" when it runs on the host.
	self string
}

// Inspect looks an object up as dockerd resolves the reference. Missing,
// and an ID prefix that several objects share, are both ErrNotFound: a
// client must not learn from the answer that objects it may not see
// exist.
func (h daemonHost) Inspect(ctx context.Context, kind policy.ObjectKind, ref string) (policy.Object, error) {
	path := inspectPath(kind, ref)
	status, body, err := h.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return policy.Object{}, err
	case status == http.StatusNotFound || isAmbiguousRef(status, body):
		return policy.Object{}, policy.ErrNotFound
	case status != http.StatusOK:
		return policy.Object{}, fmt.Errorf("GET %s: daemon answered %d", path, status)
	}
	return h.object(ctx, kind, body)
}

// object reads an answer about an object and marks the gateway's own.
func (h daemonHost) object(ctx context.Context, kind policy.ObjectKind, body []byte) (policy.Object, error) {
	obj, err := parseObject(kind, body)
	if err != nil {
		return obj, err
	}
	if err := h.markGateway(ctx, kind, &obj); err != nil {
		return policy.Object{}, err
	}
	return obj, nil
}

// CreateVolume creates a volume; dockerd answers with the existing one if
// another client created it first.
func (h daemonHost) CreateVolume(ctx context.Context, name string, labels map[string]string) (policy.Object, error) {
	body, err := dockerapi.Encode(&volume.CreateRequest{Name: name, Labels: labels})
	if err != nil {
		return policy.Object{}, err
	}
	status, answer, err := h.call(ctx, http.MethodPost, "/volumes/create", body)
	if err != nil {
		return policy.Object{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return policy.Object{}, fmt.Errorf("POST /volumes/create: daemon answered %d", status)
	}
	return h.object(ctx, policy.KindVolume, answer)
}

func (h daemonHost) ResolvePath(p string) (string, error) { return h.resolve(p) }

// HostPathResolver returns how a gateway in front of this upstream
// resolves the links of host paths: as the kernel follows them when the
// daemon shares the gateway's filesystem (a local unix socket), as
// written otherwise.
func HostPathResolver(u config.Upstream) func(string) (string, error) {
	if resolvesHostPaths(u) {
		return resolveHostPath
	}
	return func(p string) (string, error) { return p, nil }
}

// inspectPath is the Engine API path that inspects an object
// (unversioned: dockerd answers it with its default version).
func inspectPath(kind policy.ObjectKind, ref string) string {
	ref = url.PathEscape(ref)
	switch kind {
	case policy.KindExec:
		return "/exec/" + ref + "/json"
	case policy.KindVolume:
		return "/volumes/" + ref
	case policy.KindNetwork:
		return "/networks/" + ref
	}
	return "/containers/" + ref + "/json"
}

// isAmbiguousRef recognises dockerd's answer to an ID prefix that matches
// several objects (500 before Docker 23, 400 after), and to a network name
// several networks share ("network web is ambiguous (2 matches found based
// on name)"), which dockerd before API 1.44 let a create make.
func isAmbiguousRef(status int, body []byte) bool {
	lower := bytes.ToLower(body)
	return status >= 400 && (bytes.Contains(lower, []byte("multiple ids found")) || bytes.Contains(lower, []byte(" is ambiguous (")))
}

// parseObject reads an inspect answer (or a volume create's) for an
// object of the given kind.
func parseObject(kind policy.ObjectKind, body []byte) (policy.Object, error) {
	var o policy.Object
	var err error
	switch kind {
	case policy.KindContainer:
		var v struct {
			ID         string `json:"Id"`
			Name       string
			Config     *struct{ Labels map[string]string }
			HostConfig *container.HostConfig
		}
		if err = json.Unmarshal(body, &v); err == nil {
			o.ID, o.Name, o.HostConfig = v.ID, v.Name, v.HostConfig
			if v.Config != nil {
				o.Labels = v.Config.Labels
			}
		}
	case policy.KindExec:
		var v struct {
			ID, ContainerID string
			Privileged      bool
		}
		if err = json.Unmarshal(body, &v); err == nil {
			o.ID, o.ContainerID, o.Privileged = v.ID, v.ContainerID, v.Privileged
		}
	case policy.KindVolume:
		var v struct {
			Name, Driver    string
			Labels, Options map[string]string
		}
		if err = json.Unmarshal(body, &v); err == nil {
			o.ID, o.Name, o.Labels, o.Driver, o.Options = v.Name, v.Name, v.Labels, v.Driver, v.Options
		}
	case policy.KindNetwork:
		var v struct {
			ID     string `json:"Id"`
			Name   string
			Labels map[string]string
		}
		if err = json.Unmarshal(body, &v); err == nil {
			o.ID, o.Name, o.Labels = v.ID, v.Name, v.Labels
		}
	default:
		return o, fmt.Errorf("failed to read %s lookup: unknown kind", kind)
	}
	if err != nil {
		return policy.Object{}, fmt.Errorf("failed to read %s lookup: %w", kind, err)
	}
	if o.ID == "" {
		return policy.Object{}, fmt.Errorf("failed to read %s lookup: no ID in the answer", kind)
	}
	return o, nil
}
