package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// refsCase is one request of a tenant (t1) through Evaluate against a
// daemon that holds t1's and t2's objects.
type refsCase struct {
	name, method, target, body string
	effect                     Effect
	status                     int
	message                    string
	field                      string // the denied field, when denied
	path                       string // the forwarded path, when allowed
	// want are values the forwarded body has, by path of object keys.
	want map[string]any
}

const (
	ownNetID     = "0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f0e7f"
	foreignNetID = "f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1f0e1"
	ownCtrID     = "c0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ffeec0ff"
	foreignCtrID = "deadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeefdeadbeef"
)

// refsDaemon holds t1's network "mine" and container "web", and t2's
// network "theirs", container "db" and volume "shared".
func refsDaemon() *fakeDaemon {
	mine := Object{ID: ownNetID, Name: "mine", Labels: map[string]string{OwnerLabel: "t1"}}
	theirs := Object{ID: foreignNetID, Name: "theirs", Labels: map[string]string{OwnerLabel: "t2"}}
	web := Object{ID: ownCtrID, Name: "/web", Labels: map[string]string{OwnerLabel: "t1"}}
	db := Object{ID: foreignCtrID, Name: "/db", Labels: map[string]string{OwnerLabel: "t2"}}
	return &fakeDaemon{objects: map[string]Object{
		"network/mine": mine, "network/" + ownNetID: mine, "network/0e7f": mine,
		"network/theirs": theirs, "network/" + foreignNetID: theirs, "network/f0e1": theirs,
		"container/web": web, "container/" + ownCtrID: web,
		"container/db": db, "container/" + foreignCtrID: db, "container/dead": db,
		"volume/mydata": owned("mydata", "t1"),
		"volume/shared": owned("shared", "t2"),
	}}
}

func runRefsCases(t *testing.T, cases []refsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := refsDaemon()
			method := tc.method
			if method == "" {
				method = "POST"
			}
			v := evaluate(t, tenant1, method, tc.target, tc.body, d)
			if v.Effect != tc.effect {
				t.Fatalf("effect = %v (%d %s: %s), want %v", v.Effect, v.Status, v.Message, v.Reason, tc.effect)
			}
			if tc.effect == Deny {
				if v.Status != tc.status || v.Message != tc.message {
					t.Errorf("answer = %d %q, want %d %q", v.Status, v.Message, tc.status, tc.message)
				}
				if tc.field != "" && v.Field != tc.field {
					t.Errorf("field = %q, want %q", v.Field, tc.field)
				}
				for _, id := range []string{foreignNetID, foreignCtrID, "t2"} {
					if strings.Contains(v.Message, id) && !strings.Contains(tc.body+tc.target, id) {
						t.Errorf("answer %q names another client's object (%s)", v.Message, id)
					}
				}
				return
			}
			if tc.path != "" && v.Path != tc.path {
				t.Errorf("forwarded path = %q, want %q", v.Path, tc.path)
			}
			var body map[string]any
			if len(tc.want) > 0 {
				if err := json.Unmarshal(v.Body, &body); err != nil {
					t.Fatalf("forwarded body %s: %v", v.Body, err)
				}
			}
			for key, want := range tc.want {
				if got := lookupJSON(body, key); !reflect.DeepEqual(got, want) {
					t.Errorf("forwarded %s = %#v, want %#v (body %s)", key, got, want, v.Body)
				}
			}
		})
	}
}

// lookupJSON follows a path of object keys separated by '>' (keys may
// hold dots).
func lookupJSON(v any, path string) any {
	for _, k := range strings.Split(path, ">") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestEvaluateNetworkReferences: every place a request names a network
// (or a container inside an endpoint) is checked and forwarded as the full
// ID the check found, so that dockerd, which resolves the name again (at
// create, at start, at connect), uses the object that was checked.
func TestEvaluateNetworkReferences(t *testing.T) {
	create := func(s string) string { return `{"Image":"x",` + s + `}` }
	cases := []refsCase{
		{name: "network mode by name pinned", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"mine"}`),
			effect: Allow, want: map[string]any{
				"HostConfig>NetworkMode": ownNetID,
				"NetworkingConfig>EndpointsConfig>" + ownNetID + ">NetworkID": ownNetID,
			}},
		{name: "network mode by ID prefix pinned", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"0e7f"},"NetworkingConfig":{"EndpointsConfig":{"0e7f":{"Aliases":["a"]}}}`),
			effect: Allow, want: map[string]any{
				"HostConfig>NetworkMode":                          ownNetID,
				"NetworkingConfig>EndpointsConfig>0e7f>NetworkID": ownNetID,
				"NetworkingConfig>EndpointsConfig>0e7f>Aliases":   []any{"a"},
			}},
		{name: "endpoint key pinned through NetworkID", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"mine"},"NetworkingConfig":{"EndpointsConfig":{"mine":{}}}`),
			effect: Allow, want: map[string]any{"NetworkingConfig>EndpointsConfig>mine>NetworkID": ownNetID}},
		{name: "legacy network mode pinned", target: "/containers/create",
			body:   create(`"NetworkMode":"mine","HostConfig":{"NetworkMode":"mine"}`),
			effect: Allow, want: map[string]any{"NetworkMode": ownNetID, "HostConfig>NetworkMode": ownNetID}},
		{name: "foreign network mode", target: "/containers/create", body: create(`"HostConfig":{"NetworkMode":"theirs"}`),
			effect: Deny, status: 400, message: "network theirs not found", field: "HostConfig.NetworkMode"},
		{name: "foreign network mode by ID", target: "/containers/create", body: create(`"HostConfig":{"NetworkMode":"` + foreignNetID + `"}`),
			effect: Deny, status: 400, message: "network " + foreignNetID + " not found", field: "HostConfig.NetworkMode"},
		{name: "own endpoint key, foreign NetworkID", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"mine"},"NetworkingConfig":{"EndpointsConfig":{"mine":{"NetworkID":"theirs"}}}`),
			effect: Deny, status: 400, message: "network theirs not found", field: `NetworkingConfig.EndpointsConfig["mine"].NetworkID`},
		{name: "own endpoint key, foreign NetworkID prefix", target: "/containers/create",
			body:   create(`"NetworkingConfig":{"EndpointsConfig":{"mine":{"NetworkID":"f0e1"}}}`),
			effect: Deny, status: 400, message: "network f0e1 not found"},
		{name: "foreign container linked in an endpoint", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"mine"},"NetworkingConfig":{"EndpointsConfig":{"mine":{"Links":["db:database"]}}}`),
			effect: Deny, status: 400, message: "No such container: db", field: `NetworkingConfig.EndpointsConfig["mine"].Links[0]`},
		{name: "own container linked in an endpoint pinned", target: "/containers/create",
			body:   create(`"HostConfig":{"NetworkMode":"mine"},"NetworkingConfig":{"EndpointsConfig":{"mine":{"Links":["web:w","web"]}}}`),
			effect: Allow, want: map[string]any{"NetworkingConfig>EndpointsConfig>mine>Links": []any{ownCtrID + ":w", ownCtrID + ":web"}}},
		{name: "foreign container's network", target: "/containers/create", body: create(`"HostConfig":{"NetworkMode":"container:dead"}`),
			effect: Deny, status: 400, message: "No such container: dead"},
		{name: "connect: NetworkID overrides the path", target: "/networks/mine/connect",
			body:   `{"Container":"web","EndpointConfig":{"NetworkID":"theirs"}}`,
			effect: Deny, status: 404, message: "network theirs not found", field: "EndpointConfig.NetworkID"},
		{name: "connect: own NetworkID pinned", target: "/networks/mine/connect",
			body:   `{"Container":"web","EndpointConfig":{"NetworkID":"mine"}}`,
			effect: Allow, path: "/networks/" + ownNetID + "/connect",
			want: map[string]any{"Container": ownCtrID, "EndpointConfig>NetworkID": ownNetID}},
		{name: "connect: the path's network stored in the endpoint", target: "/networks/mine/connect",
			body:   `{"Container":"web"}`,
			effect: Allow, path: "/networks/" + ownNetID + "/connect",
			want: map[string]any{"Container": ownCtrID, "EndpointConfig>NetworkID": ownNetID}},
		{name: "connect: the path's network stored in the endpoint with aliases", target: "/networks/0e7f/connect",
			body:   `{"Container":"web","EndpointConfig":{"Aliases":["a"]}}`,
			effect: Allow, want: map[string]any{"EndpointConfig>NetworkID": ownNetID, "EndpointConfig>Aliases": []any{"a"}}},
		{name: "connect: foreign link", target: "/networks/mine/connect",
			body:   `{"Container":"web","EndpointConfig":{"Links":["db"]}}`,
			effect: Deny, status: 404, message: "No such container: db", field: "EndpointConfig.Links[0]"},
		{name: "connect: own link pinned", target: "/networks/mine/connect",
			body:   `{"Container":"web","EndpointConfig":{"Links":["web:self"]}}`,
			effect: Allow, want: map[string]any{"EndpointConfig>Links": []any{ownCtrID + ":self"}}},
		{name: "connect a foreign container", target: "/networks/mine/connect", body: `{"Container":"dead"}`,
			effect: Deny, status: 404, message: "No such container: dead"},
		{name: "connect to a foreign network by prefix", target: "/networks/f0e1/connect", body: `{"Container":"web"}`,
			effect: Deny, status: 404, message: "network f0e1 not found"},
		{name: "disconnect pinned", target: "/networks/0e7f/disconnect", body: `{"Container":"web"}`,
			effect: Allow, path: "/networks/" + ownNetID + "/disconnect", want: map[string]any{"Container": ownCtrID}},
		{name: "network create from a foreign config network", target: "/networks/create",
			body:   `{"Name":"n2","ConfigFrom":{"Network":"theirs"}}`,
			effect: Deny, status: 404, message: "network theirs not found", field: "ConfigFrom.Network"},
	}
	runRefsCases(t, cases)
}

// TestEvaluateNestedOwnerLabels: the owner label cannot be set through a
// label map dockerd applies to an object it creates on the side.
func TestEvaluateNestedOwnerLabels(t *testing.T) {
	cases := []refsCase{
		{name: "anonymous volume labelled for another client", target: "/containers/create",
			body:   `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Target":"/d","VolumeOptions":{"Labels":{"dockgate.owner":"t2"}}}]}}`,
			effect: Deny, status: 403, field: "HostConfig.Mounts[0].VolumeOptions.Labels",
			message: "dockgate: denied container.create for t1 (role tenant): HostConfig.Mounts[0].VolumeOptions.Labels sets dockgate.owner, which only the gateway sets"},
		{name: "anonymous volume labelled for the caller", target: "/containers/create",
			body:   `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Target":"/d","VolumeOptions":{"Labels":{"dockgate.owner":"t1"}}}]}}`,
			effect: Deny, status: 403, field: "HostConfig.Mounts[0].VolumeOptions.Labels",
			message: "dockgate: denied container.create for t1 (role tenant): HostConfig.Mounts[0].VolumeOptions.Labels sets dockgate.owner, which only the gateway sets"},
		{name: "legacy mounts", target: "/containers/create",
			body:   `{"Image":"x","Mounts":[{"Type":"volume","Source":"new","Target":"/d","VolumeOptions":{"Labels":{"dockgate.owner":"t2"}}}]}`,
			effect: Deny, status: 403, field: "Mounts[0].VolumeOptions.Labels",
			message: "dockgate: denied container.create for t1 (role tenant): Mounts[0].VolumeOptions.Labels sets dockgate.owner, which only the gateway sets"},
		{name: "other volume labels pass", target: "/containers/create",
			body:   `{"Image":"x","HostConfig":{"Mounts":[{"Type":"volume","Target":"/d","VolumeOptions":{"Labels":{"app":"web"}}}]}}`,
			effect: Allow, want: map[string]any{"Labels>dockgate.owner": "t1"}},
	}
	runRefsCases(t, cases)
}

// TestEvaluateNameConflicts: a create that takes a name another client's
// object has is answered without that object or its ID, and the name of a
// network stays unique, so that its owner's lookups by name keep working.
func TestEvaluateNameConflicts(t *testing.T) {
	cases := []refsCase{
		{name: "container name another client uses", target: "/containers/create?name=db", body: `{"Image":"x"}`,
			effect: Deny, status: 409,
			message: `Conflict. The container name "/db" is already in use. You have to remove (or rename) that container to be able to reuse that name.`},
		{name: "container name with its slash", target: "/containers/create?name=/db", body: `{"Image":"x"}`,
			effect: Deny, status: 409,
			message: `Conflict. The container name "/db" is already in use. You have to remove (or rename) that container to be able to reuse that name.`},
		{name: "own container name is dockerd's to answer", target: "/containers/create?name=web", body: `{"Image":"x"}`,
			effect: Allow},
		{name: "a name that is another client's ID prefix", target: "/containers/create?name=dead", body: `{"Image":"x"}`,
			effect: Allow},
		{name: "free container name", target: "/containers/create?name=new", body: `{"Image":"x"}`, effect: Allow},
		{name: "rename to a name another client uses", target: "/containers/web/rename?name=db",
			effect: Deny, status: 409,
			message: `Conflict. The container name "/db" is already in use. You have to remove (or rename) that container to be able to reuse that name.`},
		{name: "rename to a free name", target: "/containers/web/rename?name=new", effect: Allow, path: "/containers/" + ownCtrID + "/rename"},
		{name: "volume name another client uses", target: "/volumes/create", body: `{"Name":"shared"}`,
			effect: Deny, status: 409, message: "create shared: volume name must be unique"},
		{name: "own volume name", target: "/volumes/create", body: `{"Name":"mydata"}`, effect: Allow,
			want: map[string]any{"Labels>dockgate.owner": "t1"}},
		{name: "free volume name", target: "/volumes/create", body: `{"Name":"new"}`, effect: Allow},
		{name: "network name another client uses", target: "/networks/create", body: `{"Name":"theirs"}`,
			effect: Deny, status: 409, message: "network with name theirs already exists"},
		{name: "own network name", target: "/networks/create", body: `{"Name":"mine"}`,
			effect: Deny, status: 409, message: "network with name mine already exists"},
		{name: "a network name that is another client's ID prefix", target: "/networks/create", body: `{"Name":"f0e1"}`,
			effect: Allow},
		{name: "free network name", target: "/networks/create", body: `{"Name":"new"}`, effect: Allow,
			want: map[string]any{"Labels>dockgate.owner": "t1"}},
	}
	runRefsCases(t, cases)
}

// TestEvaluateEndpointNetworkIDIsAJoinedNetwork: an endpoint's NetworkID
// is the network dockerd joins, so it meets the guardrails of a network
// mode (the host's network is host_namespaces' to allow) and, with owner
// isolation, must be the caller's: a predefined network carries no owner.
func TestEvaluateEndpointNetworkIDIsAJoinedNetwork(t *testing.T) {
	hostField := `NetworkingConfig.EndpointsConfig["mynet"].NetworkID`
	ci := []struct{ name, target, body, msg string }{
		{"create", "/containers/create", `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"mynet":{"NetworkID":"host"}}}}`,
			"dockgate: denied container.create for ci-7 (role ci): " + hostField + " is host (the host's network namespace), which is not allowed"},
		{"connect", "/networks/mynet/connect", `{"Container":"web","EndpointConfig":{"NetworkID":"host"}}`,
			"dockgate: denied network.connect for ci-7 (role ci): EndpointConfig.NetworkID is host (the host's network namespace), which is not allowed"},
	}
	for _, tc := range ci {
		t.Run("guardrail "+tc.name, func(t *testing.T) {
			v := evaluate(t, ci7, "POST", tc.target, tc.body, &fakeDaemon{})
			if v.Effect != Deny || v.Status != 403 || !strings.HasPrefix(v.Message, tc.msg) {
				t.Errorf("answer = %v %d %q, want deny 403 %q", v.Effect, v.Status, v.Message, tc.msg)
			}
		})
	}
	runRefsCases(t, []refsCase{
		{name: "isolated create joins bridge through NetworkID", target: "/containers/create",
			body:   `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"mine":{"NetworkID":"bridge"}}}}`,
			effect: Deny, status: 400, message: "network bridge not found", field: `NetworkingConfig.EndpointsConfig["mine"].NetworkID`},
		{name: "isolated connect joins host through NetworkID", target: "/networks/mine/connect",
			body:   `{"Container":"web","EndpointConfig":{"NetworkID":"host"}}`,
			effect: Deny, status: 403, field: "EndpointConfig.NetworkID",
			message: "dockgate: denied network.connect for t1 (role tenant): EndpointConfig.NetworkID is host (the host's network namespace), which is not allowed; allow it by adding network to roles.tenant.containers.host_namespaces"},
	})
}

// TestEvaluateNameConflictAuditMode: in audit mode a create whose name
// is in use is forwarded and recorded as would_deny.
func TestEvaluateNameConflictAuditMode(t *testing.T) {
	v := evaluate(t, auditee, "POST", "/volumes/create", `{"Name":"shared"}`, refsDaemon())
	if v.Effect != WouldDeny || !v.Forward() || !strings.Contains(v.Reason, `volume name "shared" (Name) is in use`) {
		t.Errorf("verdict = %v %q, want would_deny for the name", v.Effect, v.Reason)
	}
}
