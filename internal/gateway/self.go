package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"

	"github.com/dockgate/dockgate/internal/policy"
)

// How the gateway knows itself, for the policy's self-protection: the
// container it runs in, found from /proc (SelfContainerID), and any
// container labelled policy.SelfLabel. The policy decides; the host only
// marks the objects (policy.Object.Gateway).

// containerDirID finds a container ID in a path under the engine's
// container directory: dockerd bind-mounts /etc/hostname, /etc/hosts and
// /etc/resolv.conf from /var/lib/docker/containers/<id>/, Podman from
// .../overlay-containers/<id>/userdata/.
var containerDirID = regexp.MustCompile(`containers/([0-9a-f]{64})/`)

// cgroupID finds a container ID in a cgroup path: docker-<id>.scope
// (systemd driver) or /docker/<id> (cgroupfs driver). With a private
// cgroup namespace (the default on cgroup v2) the path is "/" and says
// nothing.
var cgroupID = regexp.MustCompile(`(?:docker[-/]|libpod-)([0-9a-f]{64})(?:\.scope)?\s*$`)

// SelfContainerID returns the ID of the container the gateway runs in,
// or "" when it runs on the host (or /proc does not say).
func SelfContainerID() string {
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if id := containerIDFromMountinfo(b); id != "" {
			return id
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		return containerIDFromCgroup(b)
	}
	return ""
}

// containerIDFromMountinfo reads the container ID from the source of the
// /etc/hostname (or hosts, resolv.conf) bind mount.
func containerIDFromMountinfo(b []byte) string {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if m := containerDirID.FindSubmatch(line); m != nil {
			return string(m[1])
		}
	}
	return ""
}

func containerIDFromCgroup(b []byte) string {
	for _, line := range bytes.Split(b, []byte("\n")) {
		if m := cgroupID.FindSubmatch(line); m != nil {
			return string(m[1])
		}
	}
	return ""
}

// markGateway sets obj.Gateway for the gateway's own objects: its
// container, and a volume that it or a container labelled
// policy.SelfLabel mounts (the state volume). A volume costs one more
// daemon call: the containers that mount it.
func (h daemonHost) markGateway(ctx context.Context, kind policy.ObjectKind, obj *policy.Object) error {
	switch kind {
	case policy.KindContainer:
		obj.Gateway = h.self != "" && obj.ID == h.self
	case policy.KindVolume:
		users, err := h.volumeUsers(ctx, obj.ID)
		if err != nil {
			return err
		}
		for _, u := range users {
			if h.self != "" && u.ID == h.self || policy.IsSelfLabelled(u.Labels) {
				obj.Gateway = true
			}
		}
	}
	return nil
}

type volumeUser struct {
	ID     string `json:"Id"`
	Labels map[string]string
}

// volumeUsers lists the containers, running or not, that mount a volume.
func (h daemonHost) volumeUsers(ctx context.Context, name string) ([]volumeUser, error) {
	path := volumeUsersPath(name)
	status, body, err := h.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return nil, err
	case status != http.StatusOK:
		return nil, fmt.Errorf("GET %s: daemon answered %d", path, status)
	}
	var users []volumeUser
	if err := json.Unmarshal(body, &users); err != nil {
		return nil, fmt.Errorf("failed to read the containers of volume %q: %w", name, err)
	}
	return users, nil
}

// volumeUsersPath lists the containers that mount a volume (dockerd's
// "volume" filter matches a mount's volume name or its destination, and
// a volume name never starts with '/').
func volumeUsersPath(name string) string {
	filters := `{"volume":[` + strconv.Quote(name) + `]}`
	return "/containers/json?all=1&filters=" + url.QueryEscape(filters)
}
