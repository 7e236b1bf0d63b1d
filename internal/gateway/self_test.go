package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/policy"
)

const selfID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestContainerIDFromProc(t *testing.T) {
	mountinfo := `1249 1201 0:112 / / rw,relatime master:391 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/X
1254 1249 8:1 /var/lib/docker/containers/` + selfID + `/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/sda1 rw
1255 1249 8:1 /var/lib/docker/containers/` + selfID + `/hostname /etc/hostname rw,relatime - ext4 /dev/sda1 rw
`
	if got := containerIDFromMountinfo([]byte(mountinfo)); got != selfID {
		t.Errorf("containerIDFromMountinfo = %q, want %q", got, selfID)
	}
	podman := "1 2 0:1 /home/u/.local/share/containers/storage/overlay-containers/" + selfID + "/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n"
	if got := containerIDFromMountinfo([]byte(podman)); got != selfID {
		t.Errorf("containerIDFromMountinfo(podman) = %q, want %q", got, selfID)
	}
	host := "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n25 22 0:5 / /dev rw - devtmpfs udev rw\n"
	if got := containerIDFromMountinfo([]byte(host)); got != "" {
		t.Errorf("containerIDFromMountinfo(host) = %q, want none", got)
	}
	for in, want := range map[string]string{
		"0::/system.slice/docker-" + selfID + ".scope\n":                          selfID,
		"12:pids:/docker/" + selfID + "\n1:name=systemd:/docker/" + selfID + "\n": selfID,
		"0::/\n": "",
		"0::/user.slice/user-1000.slice/session-2.scope\n": "",
	} {
		if got := containerIDFromCgroup([]byte(in)); got != want {
			t.Errorf("containerIDFromCgroup(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDaemonHostMarksGateway: the gateway's container by its ID, and a
// volume that it or a container labelled dockgate.self=true mounts.
func TestDaemonHostMarksGateway(t *testing.T) {
	type answer = struct {
		status int
		body   string
	}
	f := &fakeCall{answers: map[string]answer{
		"GET /containers/gw/json":            {200, `{"Id":"` + selfID + `"}`},
		"GET /containers/web/json":           {200, `{"Id":"aaa"}`},
		"GET /volumes/state":                 {200, `{"Name":"state","Driver":"local"}`},
		"GET /volumes/labelled":              {200, `{"Name":"labelled","Driver":"local"}`},
		"GET /volumes/data":                  {200, `{"Name":"data","Driver":"local"}`},
		"GET /volumes/broken":                {200, `{"Name":"broken","Driver":"local"}`},
		"GET " + volumeUsersPath("state"):    {200, `[{"Id":"aaa"},{"Id":"` + selfID + `"}]`},
		"GET " + volumeUsersPath("labelled"): {200, `[{"Id":"bbb","Labels":{"dockgate.self":"true"}}]`},
		"GET " + volumeUsersPath("data"):     {200, `[{"Id":"aaa","Labels":{"dockgate.self":"no"}}]`},
		"GET " + volumeUsersPath("broken"):   {http.StatusInternalServerError, `{"message":"boom"}`},
	}}
	h := daemonHost{call: f.call, self: selfID}
	for _, tc := range []struct {
		kind policy.ObjectKind
		ref  string
		want bool
	}{
		{policy.KindContainer, "gw", true},
		{policy.KindContainer, "web", false},
		{policy.KindVolume, "state", true},
		{policy.KindVolume, "labelled", true},
		{policy.KindVolume, "data", false},
	} {
		obj, err := h.Inspect(context.Background(), tc.kind, tc.ref)
		if err != nil {
			t.Fatalf("Inspect(%s %s) = %v", tc.kind, tc.ref, err)
		}
		if obj.Gateway != tc.want {
			t.Errorf("Inspect(%s %s).Gateway = %v, want %v", tc.kind, tc.ref, obj.Gateway, tc.want)
		}
	}
	if _, err := h.Inspect(context.Background(), policy.KindVolume, "broken"); err == nil {
		t.Error("Inspect of a volume whose containers the daemon would not list succeeded")
	}
	// On the host (no container of its own) only the label marks it.
	h.self = ""
	if obj, _ := h.Inspect(context.Background(), policy.KindContainer, "gw"); obj.Gateway {
		t.Error("a gateway on the host took a container for its own")
	}
	if !strings.Contains(volumeUsersPath("a b"), "all=1") {
		t.Errorf("volumeUsersPath = %q, want all containers, stopped too", volumeUsersPath("a b"))
	}
}

// FuzzSelfContainerID: whatever /proc says, an ID found is 64 lower-case
// hex digits that the input contains.
func FuzzSelfContainerID(f *testing.F) {
	f.Add([]byte("1255 1249 8:1 /var/lib/docker/containers/" + selfID + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n"))
	f.Add([]byte("0::/system.slice/docker-" + selfID + ".scope\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, id := range []string{containerIDFromMountinfo(b), containerIDFromCgroup(b)} {
			if id == "" {
				continue
			}
			if len(id) != 64 || strings.Trim(id, "0123456789abcdef") != "" || !strings.Contains(string(b), id) {
				t.Errorf("found %q in %q", id, b)
			}
		}
	})
}
