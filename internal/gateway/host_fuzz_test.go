package gateway

import (
	"encoding/json"
	"maps"
	"testing"

	"github.com/dockgate/dockgate/internal/policy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// objectKinds are the kinds an ownership lookup asks about, indexed by the
// fuzzer's kind byte.
var objectKinds = []policy.ObjectKind{policy.KindContainer, policy.KindExec, policy.KindVolume, policy.KindNetwork}

// referenceObject reads an inspect answer with the Engine API's own types:
// what a Docker client would make of the same bytes.
func referenceObject(kind policy.ObjectKind, body []byte) (policy.Object, error) {
	var o policy.Object
	switch kind {
	case policy.KindContainer:
		var v container.InspectResponse
		if err := json.Unmarshal(body, &v); err != nil {
			return o, err
		}
		o.ID = v.ID
		if v.Config != nil {
			o.Labels = v.Config.Labels
		}
	case policy.KindExec:
		var v container.ExecInspectResponse
		if err := json.Unmarshal(body, &v); err != nil {
			return o, err
		}
		o.ID, o.ContainerID = v.ID, v.ContainerID
	case policy.KindVolume:
		var v volume.Volume
		if err := json.Unmarshal(body, &v); err != nil {
			return o, err
		}
		o.ID, o.Labels = v.Name, v.Labels
	case policy.KindNetwork:
		var v network.Inspect
		if err := json.Unmarshal(body, &v); err != nil {
			return o, err
		}
		o.ID, o.Labels = v.ID, v.Labels
	}
	return o, nil
}

// FuzzParseObject checks the ownership lookup's reading of an inspect
// answer: it never panics, never returns an object without an ID, and when
// the Engine API's types read the same bytes too, both see the same ID, the
// same exec container and the same labels, so the owner label the policy
// judges is the one the daemon reported.
func FuzzParseObject(f *testing.F) {
	f.Add(uint8(0), []byte(`{"Id":"abc","Name":"/web","Config":{"Labels":{"dockgate.owner":"t1"}}}`))
	f.Add(uint8(0), []byte(`{"Id":"abc","Config":{"Labels":{"dockgate.owner":"t1"}},"config":{"Labels":{"dockgate.owner":"t2"}}}`))
	f.Add(uint8(0), []byte(`{"Id":"abc","Config":{"Labels":{"dockgate.owner":"t1","dockgate.owner":"t2"}}}`))
	f.Add(uint8(0), []byte(`{"Id":"abc","Labels":{"dockgate.owner":"t1"}}`))
	f.Add(uint8(0), []byte(`{"ID":"abc","Config":null}`))
	f.Add(uint8(1), []byte(`{"ID":"e1","ContainerID":"abc","Running":true}`))
	f.Add(uint8(1), []byte(`{"ID":"e1","ContainerID":"abc","containerid":"def"}`))
	f.Add(uint8(2), []byte(`{"Name":"data","Driver":"local","Labels":{"dockgate.owner":"t1"}}`))
	f.Add(uint8(2), []byte(`{"Name":"","Labels":{"dockgate.owner":"t1"}}`))
	f.Add(uint8(3), []byte(`{"Name":"n","Id":"n1","Labels":{}}`))
	f.Add(uint8(3), []byte(`{"Id":"n1","Labels":{"dockgate.owner":"t1"}} {"Id":"n2"}`))
	f.Add(uint8(3), []byte(`null`))
	f.Fuzz(func(t *testing.T, k uint8, body []byte) {
		kind := objectKinds[int(k)%len(objectKinds)]
		got, err := parseObject(kind, body)
		if err != nil {
			return
		}
		if got.ID == "" {
			t.Fatalf("parseObject(%s, %q) returned an object without an ID", kind, body)
		}
		want, refErr := referenceObject(kind, body)
		if refErr != nil {
			return // typed fields (times, numbers) the lookup does not read
		}
		if got.ID != want.ID || got.ContainerID != want.ContainerID || !maps.Equal(got.Labels, want.Labels) {
			t.Fatalf("parseObject(%s, %q) = %+v; the Engine API types read %+v", kind, body, got, want)
		}
	})
}
