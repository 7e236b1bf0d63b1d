package gateway

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
)

func TestParseObject(t *testing.T) {
	cases := []struct {
		kind policy.ObjectKind
		body string
		want policy.Object
	}{
		{policy.KindContainer, `{"Id":"abc","Name":"/web","Config":{"Labels":{"dockgate.owner":"t1"}}}`, policy.Object{ID: "abc", Name: "/web", Labels: map[string]string{policy.OwnerLabel: "t1"}}},
		{policy.KindContainer, `{"Id":"abc","Config":{}}`, policy.Object{ID: "abc"}},
		{policy.KindContainer, `{"Id":"abc"}`, policy.Object{ID: "abc"}},
		{policy.KindExec, `{"ID":"e1","ContainerID":"abc","Running":true}`, policy.Object{ID: "e1", ContainerID: "abc"}},
		{policy.KindVolume, `{"Name":"data","Driver":"local","Labels":{"dockgate.owner":"t1"}}`, policy.Object{ID: "data", Name: "data", Driver: "local", Labels: map[string]string{policy.OwnerLabel: "t1"}}},
		{policy.KindVolume, `{"Name":"etc","Driver":"local","Options":{"device":"/etc","o":"bind","type":"none"}}`,
			policy.Object{ID: "etc", Name: "etc", Driver: "local", Options: map[string]string{"device": "/etc", "o": "bind", "type": "none"}}},
		{policy.KindContainer, `{"Id":"abc","HostConfig":{"Privileged":true,"Binds":["/run/docker.sock:/s"],"CapAdd":["SYS_ADMIN"]}}`,
			policy.Object{ID: "abc", HostConfig: &container.HostConfig{Privileged: true, Binds: []string{"/run/docker.sock:/s"}, CapAdd: []string{"SYS_ADMIN"}}}},
		{policy.KindExec, `{"ID":"e2","ContainerID":"abc","Privileged":true}`, policy.Object{ID: "e2", ContainerID: "abc", Privileged: true}},
		{policy.KindNetwork, `{"Name":"n","Id":"n1","Labels":{}}`, policy.Object{ID: "n1", Name: "n", Labels: map[string]string{}}},
	}
	for _, tc := range cases {
		got, err := parseObject(tc.kind, []byte(tc.body))
		if err != nil {
			t.Fatalf("parseObject(%s, %s) = %v", tc.kind, tc.body, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseObject(%s, %s) = %+v, want %+v", tc.kind, tc.body, got, tc.want)
		}
	}
	for _, bad := range []string{"", "{}", "[]", `{"Id":1}`, `{"Name":"web"}`} {
		if _, err := parseObject(policy.KindContainer, []byte(bad)); err == nil {
			t.Errorf("parseObject(%q) accepted", bad)
		}
	}
	if _, err := parseObject(policy.ObjectKind(99), []byte(`{"Id":"x"}`)); err == nil {
		t.Error("parseObject accepted an unknown kind")
	}
}

func TestInspectPath(t *testing.T) {
	cases := []struct {
		kind policy.ObjectKind
		ref  string
		want string
	}{
		{policy.KindContainer, "web", "/containers/web/json"},
		{policy.KindExec, "e1", "/exec/e1/json"},
		{policy.KindVolume, "data", "/volumes/data"},
		{policy.KindNetwork, "n 1", "/networks/n%201"},
		{policy.KindContainer, "a?b#c", "/containers/a%3Fb%23c/json"},
	}
	for _, tc := range cases {
		if got := inspectPath(tc.kind, tc.ref); got != tc.want {
			t.Errorf("inspectPath(%s, %q) = %q, want %q", tc.kind, tc.ref, got, tc.want)
		}
	}
}

// fakeCall answers the daemon host's requests from a table keyed
// "METHOD path", recording them.
type fakeCall struct {
	answers map[string]struct {
		status int
		body   string
	}
	err   error
	calls []string
}

func (f *fakeCall) call(_ context.Context, method, path string, body []byte) (int, []byte, error) {
	f.calls = append(f.calls, method+" "+path+" "+string(body))
	if f.err != nil {
		return 0, nil, f.err
	}
	a, ok := f.answers[method+" "+path]
	if !ok {
		return http.StatusNotFound, []byte(`{"message":"not found"}`), nil
	}
	return a.status, []byte(a.body), nil
}

// TestDaemonHostInspect: what each daemon answer means to the policy.
func TestDaemonHostInspect(t *testing.T) {
	type answer = struct {
		status int
		body   string
	}
	cases := []struct {
		name    string
		answer  answer
		callErr error
		want    policy.Object
		wantErr error // nil: success; policy.ErrNotFound; errAny: any other error
	}{
		{"owned", answer{200, `{"Id":"abc","Config":{"Labels":{"dockgate.owner":"t1"}}}`}, nil, policy.Object{ID: "abc", Labels: map[string]string{policy.OwnerLabel: "t1"}}, nil},
		{"missing", answer{404, `{"message":"No such container: web"}`}, nil, policy.Object{}, policy.ErrNotFound},
		{"ambiguous prefix, Docker 23+", answer{400, `{"message":"multiple IDs found with provided prefix: ab"}`}, nil, policy.Object{}, policy.ErrNotFound},
		{"ambiguous prefix, Docker 20", answer{500, `{"message":"Multiple IDs found with provided prefix: ab"}`}, nil, policy.Object{}, policy.ErrNotFound},
		{"network name several networks share", answer{400, `{"message":"network web is ambiguous (2 matches found based on name)"}`}, nil, policy.Object{}, policy.ErrNotFound},
		{"daemon error", answer{500, `{"message":"boom"}`}, nil, policy.Object{}, errAny},
		{"garbage", answer{200, `{"Id":`}, nil, policy.Object{}, errAny},
		{"unreachable", answer{}, errors.New("connection refused"), policy.Object{}, errAny},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeCall{answers: map[string]struct {
				status int
				body   string
			}{"GET /containers/web/json": tc.answer}, err: tc.callErr}
			h := daemonHost{call: f.call}
			got, err := h.Inspect(context.Background(), policy.KindContainer, "web")
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Inspect = %v", err)
			case tc.wantErr == errAny && (err == nil || errors.Is(err, policy.ErrNotFound)):
				t.Fatalf("Inspect = %v, want a failure that is not ErrNotFound", err)
			case tc.wantErr == policy.ErrNotFound && !errors.Is(err, policy.ErrNotFound):
				t.Fatalf("Inspect = %v, want ErrNotFound", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Inspect = %+v, want %+v", got, tc.want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestDaemonHostCreateVolume(t *testing.T) {
	f := &fakeCall{answers: map[string]struct {
		status int
		body   string
	}{"POST /volumes/create": {201, `{"Name":"data","Labels":{"dockgate.owner":"t2"}}`},
		"GET " + volumeUsersPath("data"): {200, `[]`}}}
	h := daemonHost{call: f.call}
	got, err := h.CreateVolume(context.Background(), "data", map[string]string{policy.OwnerLabel: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	// dockerd answers with the volume of that name, whoever made it.
	if got.ID != "data" || got.Labels[policy.OwnerLabel] != "t2" {
		t.Errorf("CreateVolume = %+v, want the daemon's answer", got)
	}
	if len(f.calls) != 2 || !strings.Contains(f.calls[0], `"Labels":{"dockgate.owner":"t1"}`) || !strings.Contains(f.calls[0], `"Name":"data"`) {
		t.Errorf("calls = %q, want one create with the owner label", f.calls)
	}
	f.answers["POST /volumes/create"] = struct {
		status int
		body   string
	}{500, `{"message":"disk full"}`}
	if _, err := h.CreateVolume(context.Background(), "data", nil); err == nil {
		t.Error("CreateVolume accepted a 500")
	}
	f.err = errors.New("connection refused")
	if _, err := h.CreateVolume(context.Background(), "data", nil); err == nil {
		t.Error("CreateVolume hid a failed call")
	}
}

func TestHostPathResolver(t *testing.T) {
	remote := HostPathResolver(config.Upstream{URL: "tcp://docker.example:2376"})
	if got, err := remote("/srv/x/../y"); err != nil || got != "/srv/x/../y" {
		t.Errorf("a remote daemon's paths are resolved: %q, %v", got, err)
	}
	local := HostPathResolver(config.Upstream{URL: "unix:///var/run/docker.sock"})
	dir := t.TempDir()
	if got, err := local(dir + "/missing/x"); err != nil || !strings.HasSuffix(got, "/missing/x") {
		t.Errorf("a local daemon's missing path: %q, %v", got, err)
	}
}

// CreateVolume takes dockerd's 201 (created) and 200 (another client
// created it first) as the volume; any other answer is an error, even one
// whose body reads as a volume with the owner label asked for.
func TestCreateVolumeStatuses(t *testing.T) {
	const body = `{"Name":"data","Labels":{"dockgate.owner":"t1"}}`
	for _, tc := range []struct {
		status int
		ok     bool
	}{{http.StatusCreated, true}, {http.StatusOK, true}, {http.StatusInternalServerError, false}, {http.StatusConflict, false}} {
		h := daemonHost{call: func(_ context.Context, method, path string, _ []byte) (int, []byte, error) {
			if method == http.MethodGet && strings.HasPrefix(path, "/containers/json") {
				return http.StatusOK, []byte("[]"), nil // no container mounts the volume
			}
			return tc.status, []byte(body), nil
		}}
		o, err := h.CreateVolume(context.Background(), "data", map[string]string{policy.OwnerLabel: "t1"})
		if (err == nil) != tc.ok {
			t.Errorf("daemon answered %d: %+v, %v; want ok %v", tc.status, o, err, tc.ok)
		}
	}
}
