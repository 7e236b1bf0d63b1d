package dockerapi

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/plugin"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/volume"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeContainerCreateDockerCLIBody(t *testing.T) {
	body := readFixture(t, "create-docker-cli.json")
	c, err := DecodeContainerCreate(body, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Config.Image, "busybox"; got != want {
		t.Errorf("Image = %q, want %q", got, want)
	}
	if got, want := c.Config.Cmd, []string{"sleep", "1000"}; !slices.Equal(got, want) {
		t.Errorf("Cmd = %q, want %q", got, want)
	}
	if got, want := c.HostConfig.Binds, []string{"/srv/data:/data"}; !slices.Equal(got, want) {
		t.Errorf("Binds = %q, want %q", got, want)
	}
	if got, want := c.HostConfig.CapAdd, []string{"NET_ADMIN"}; !slices.Equal(got, want) {
		t.Errorf("CapAdd = %q, want %q", got, want)
	}
	if len(c.HostConfig.Mounts) != 1 || c.HostConfig.Mounts[0].Type != mount.TypeVolume ||
		c.HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options["device"] != "/etc" {
		t.Errorf("Mounts = %+v, want the volume mount with local driver options", c.HostConfig.Mounts)
	}
	if c.LegacyHostConfig != nil {
		t.Errorf("LegacyHostConfig = %+v, want nil for a body without top-level HostConfig fields", c.LegacyHostConfig)
	}
	if got := len(c.HostConfigs()); got != 1 {
		t.Errorf("len(HostConfigs()) = %d, want 1", got)
	}

	// What dockerd decodes (container.CreateRequest) equals what we decoded.
	var ref container.CreateRequest
	if err := json.Unmarshal(body, &ref); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ref.Config, c.Config) || !reflect.DeepEqual(ref.HostConfig, c.HostConfig) ||
		!reflect.DeepEqual(ref.NetworkingConfig, c.NetworkingConfig) {
		t.Error("DecodeContainerCreate differs from encoding/json into container.CreateRequest")
	}
}

// TestContainerCreateRoundTrip checks that the forwarded body decodes, in
// dockerd, to the value that was inspected.
func TestContainerCreateRoundTrip(t *testing.T) {
	bodies := map[string][]byte{
		"docker cli":   readFixture(t, "create-docker-cli.json"),
		"minimal":      []byte(`{"Image":"busybox"}`),
		"legacy":       []byte(`{"Image":"busybox","Privileged":true,"Binds":["/:/host"],"Cpuset":"0","MacAddress":"02:42:ac:11:00:02"}`),
		"legacy+inner": []byte(`{"Image":"busybox","HostConfig":{"Memory":1},"Memory":2,"CapAdd":["ALL"]}`),
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			c, err := DecodeContainerCreate(body, 0)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeContainerCreate(out, 0)
			if err != nil {
				t.Fatalf("re-decoding the encoded body: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(again, c) {
				t.Errorf("round trip changed the body:\n got %+v\nwant %+v", again, c)
			}
			var ref container.CreateRequest
			if err := json.Unmarshal(out, &ref); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ref.HostConfig, c.HostConfig) || !reflect.DeepEqual(ref.Config, c.Config) {
				t.Error("dockerd's decoding of the encoded body differs from the inspected value")
			}
		})
	}
}

func TestDecodeContainerCreateLegacyTopLevel(t *testing.T) {
	c, err := DecodeContainerCreate([]byte(`{"Image":"busybox","Privileged":true,"Binds":["/:/host"],"Cpuset":"0-3"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.HostConfig == nil || c.HostConfig.Privileged {
		t.Errorf("HostConfig = %+v, want an empty one", c.HostConfig)
	}
	if c.LegacyHostConfig == nil || !c.LegacyHostConfig.Privileged ||
		!slices.Equal(c.LegacyHostConfig.Binds, []string{"/:/host"}) {
		t.Fatalf("LegacyHostConfig = %+v, want Privileged and the / bind", c.LegacyHostConfig)
	}
	if got := c.LegacyCpuset; got != "0-3" {
		t.Errorf("LegacyCpuset = %q, want 0-3", got)
	}
	hcs := c.HostConfigs()
	if len(hcs) != 2 || hcs[0] != c.HostConfig || hcs[1] != c.LegacyHostConfig {
		t.Errorf("HostConfigs() = %v, want HostConfig and LegacyHostConfig", hcs)
	}
	// The encoded body carries an explicit HostConfig, so engines that
	// used top-level fields only in its absence no longer do.
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(out, &probe); err != nil {
		t.Fatal(err)
	}
	if _, ok := probe["HostConfig"]; !ok {
		t.Errorf("encoded body %s has no HostConfig object", out)
	}
	if string(probe["Privileged"]) != "true" {
		t.Errorf("encoded body %s dropped the inspected top-level Privileged", out)
	}
}

// TestContainerCreateKeepsEmptyPathLists checks that "MaskedPaths": []
// (unmask everything) stays distinct from an absent list (the defaults)
// through decoding and encoding: a policy must see which one dockerd gets.
func TestContainerCreateKeepsEmptyPathLists(t *testing.T) {
	cases := map[string]bool{
		`{"Image":"x","HostConfig":{"MaskedPaths":[],"ReadonlyPaths":[]}}`: true,
		`{"Image":"x","HostConfig":{"MaskedPaths":null}}`:                  false,
		`{"Image":"x","HostConfig":{}}`:                                    false,
	}
	for body, emptied := range cases {
		c, err := DecodeContainerCreate([]byte(body), 0)
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var ref container.CreateRequest
		if err := json.Unmarshal(out, &ref); err != nil {
			t.Fatal(err)
		}
		for name, hc := range map[string]*container.HostConfig{"decoded": c.HostConfig, "forwarded": ref.HostConfig} {
			if got := hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0; got != emptied {
				t.Errorf("%s MaskedPaths of %s = %#v, emptied = %v, want %v", name, body, hc.MaskedPaths, got, emptied)
			}
		}
	}
}

func TestDecodeContainerCreateRefusals(t *testing.T) {
	cases := []struct {
		name, body string
		want       error
	}{
		{"empty", ``, ErrBodyEmpty},
		{"null", `null`, ErrBodyTopLevel},
		{"array", `[{"Image":"x"}]`, ErrBodyTopLevel},
		{"no config", `{"HostConfig":{"Privileged":true}}`, ErrBodyNotDocker},
		{"case variant privileged", `{"Image":"x","HostConfig":{"Privileged":false,"privileged":true}}`, ErrDuplicateKey},
		{"unicode escaped privileged", `{"Image":"x","HostConfig":{"Privileged":false,"Privil\u0065ged":true}}`, ErrDuplicateKey},
		{"duplicate HostConfig", `{"Image":"x","HostConfig":{},"hostconfig":{"Privileged":true}}`, ErrDuplicateKey},
		{"duplicate image", `{"Image":"busybox","image":"evil"}`, ErrDuplicateKey},
		{"dotless i", `{"Image":"x","HostConfig":{"Prıvileged":true}}`, ErrAmbiguousKey},
		{"wrong type", `{"Image":"x","HostConfig":{"Privileged":"true"}}`, ErrBodyNotDocker},
		{"trailing", `{"Image":"x"} {"Image":"y"}`, ErrBodySyntax},
		{"too large", `{"Image":"` + strings.Repeat("x", 200) + `"}`, ErrBodyTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeContainerCreate([]byte(tc.body), 200); !errors.Is(err, tc.want) {
				t.Errorf("DecodeContainerCreate(%s) error = %v, want %v", tc.body, err, tc.want)
			}
		})
	}
}

func TestContainerCreateSetLabel(t *testing.T) {
	c, err := DecodeContainerCreate([]byte(`{"Image":"x","Labels":{"dockgate.owner":"mallory","app":"web"},"FutureField":{"x":1}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLabel("dockgate.owner", "ci-7")
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	var ref container.CreateRequest
	if err := json.Unmarshal(out, &ref); err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"dockgate.owner": "ci-7", "app": "web"}; !reflect.DeepEqual(ref.Labels, want) {
		t.Errorf("labels after SetLabel = %v, want %v", ref.Labels, want)
	}
	if strings.Contains(string(out), "FutureField") {
		t.Errorf("encoded body %s forwards a field that was not inspected", out)
	}

	empty, err := DecodeContainerCreate([]byte(`{"Image":"x"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	empty.SetLabel("dockgate.owner", "ci-7")
	if got := empty.Config.Labels["dockgate.owner"]; got != "ci-7" {
		t.Errorf("SetLabel on a body without labels: %q", got)
	}
}

// TestCreateWireFieldsDisjoint checks the assumption createWire rests on:
// no JSON name (case-folded) is both a Config and a HostConfig field or one
// of the wrapper's own, so each key lands in one struct.
func TestCreateWireFieldsDisjoint(t *testing.T) {
	own := map[string]bool{"HOSTCONFIG": true, "NETWORKINGCONFIG": true, "CPUSET": true, "MACADDRESS": true}
	config := jsonNames(reflect.TypeFor[container.Config]())
	host := jsonNames(reflect.TypeFor[container.HostConfig]())
	if len(config) < 20 || len(host) < 50 {
		t.Fatalf("found %d Config and %d HostConfig fields; the reflection walk is broken", len(config), len(host))
	}
	for name := range config {
		if host[name] || own[name] {
			t.Errorf("JSON name %q is in container.Config and elsewhere in createWire", name)
		}
	}
	for name := range host {
		if own[name] {
			t.Errorf("JSON name %q is in container.HostConfig and in createWire", name)
		}
	}
}

// jsonNames lists the folded JSON names encoding/json gives a struct's
// fields, following embedded structs.
func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && tag == "" && f.Type.Kind() == reflect.Struct {
			for n := range jsonNames(f.Type) {
				names[n] = true
			}
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		names[strings.ToUpper(tag)] = true
	}
	return names
}

func TestDecodeExecCreate(t *testing.T) {
	e, err := DecodeExecCreate([]byte(`{"Cmd":["sh"],"Privileged":true,"User":"root"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !e.Privileged || e.User != "root" {
		t.Errorf("DecodeExecCreate = %+v, want Privileged and root", e)
	}
	if _, err := DecodeExecCreate([]byte(`{"Cmd":["sh"],"Privileged":false,"PRIVILEGED":true}`), 0); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("case-variant Privileged: %v, want ErrDuplicateKey", err)
	}
	zero, err := DecodeExecCreate(nil, 0)
	if err != nil || zero == nil || zero.Privileged {
		t.Errorf("empty exec body = %+v, %v; want the zero value, as dockerd's ReadJSON", zero, err)
	}
}

func TestDecodeOtherBodies(t *testing.T) {
	up, err := DecodeContainerUpdate([]byte(`{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}],"CgroupParent":"/"}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Devices) != 1 || up.CgroupParent != "/" {
		t.Errorf("DecodeContainerUpdate = %+v", up)
	}

	vol, err := DecodeVolumeCreate([]byte(`{"Name":"v","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/etc"}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (map[string]string{"type": "none", "o": "bind", "device": "/etc"}); !reflect.DeepEqual(vol.DriverOpts, want) {
		t.Errorf("DecodeVolumeCreate DriverOpts = %v, want %v", vol.DriverOpts, want)
	}
	if _, err := DecodeVolumeCreate([]byte(`{"DriverOpts":{"device":"/tmp","device":"/etc"}}`), 0); !errors.Is(err, ErrDuplicateKey) {
		t.Errorf("duplicate driver option: %v, want ErrDuplicateKey", err)
	}

	nw, err := DecodeNetworkCreate([]byte(`{"Name":"n","Driver":"bridge","Options":{"com.docker.network.bridge.name":"docker0"}}`), 0)
	if err != nil || nw.Name != "n" || nw.Options["com.docker.network.bridge.name"] != "docker0" {
		t.Errorf("DecodeNetworkCreate = %+v, %v", nw, err)
	}
	conn, err := DecodeNetworkConnect([]byte(`{"Container":"web","EndpointConfig":{"Aliases":["a"]}}`), 0)
	if err != nil || conn.Container != "web" {
		t.Errorf("DecodeNetworkConnect = %+v, %v", conn, err)
	}
	disc, err := DecodeNetworkDisconnect([]byte(`{"Container":"web","Force":true}`), 0)
	if err != nil || disc.Container != "web" || !disc.Force {
		t.Errorf("DecodeNetworkDisconnect = %+v, %v", disc, err)
	}

	spec, err := DecodeServiceSpec([]byte(`{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox","CapabilityAdd":["SYS_ADMIN"],"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]}}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if cs := spec.TaskTemplate.ContainerSpec; cs == nil || !slices.Equal(cs.CapabilityAdd, []string{"SYS_ADMIN"}) || cs.Mounts[0].Source != "/" {
		t.Errorf("DecodeServiceSpec ContainerSpec = %+v", spec.TaskTemplate.ContainerSpec)
	}

	privs, err := DecodePluginPrivileges([]byte(`[{"Name":"network","Description":"","Value":["host"]},{"Name":"mount","Value":["/var/lib/docker"]}]`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := (plugin.Privileges{{Name: "network", Value: []string{"host"}}, {Name: "mount", Value: []string{"/var/lib/docker"}}}); !reflect.DeepEqual(privs, want) {
		t.Errorf("DecodePluginPrivileges = %+v, want %+v", privs, want)
	}
	if _, err := DecodePluginPrivileges([]byte(`{"Name":"network"}`), 0); !errors.Is(err, ErrBodyTopLevel) {
		t.Errorf("privileges as an object: %v, want ErrBodyTopLevel", err)
	}
}

// TestDecodeBodyEveryJSONOperation decodes a body for every operation that
// takes JSON and checks that Encode of the result decodes to the same value.
func TestDecodeBodyEveryJSONOperation(t *testing.T) {
	samples := map[Operation]string{
		OpContainerCreate: `{"Image":"busybox","HostConfig":{"Privileged":true}}`,
		OpPluginInstall:   `[{"Name":"network","Value":["host"]}]`,
		OpPluginUpgrade:   `[]`,
		OpPluginSet:       `["DEBUG=1"]`,
		OpSystemAuth:      `{"username":"u","password":"p","serveraddress":"r.example"}`,
		OpServiceCreate:   `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`,
		OpSwarmInit:       `{"ListenAddr":"0.0.0.0:2377"}`,
		OpSecretCreate:    `{"Name":"s","Data":"c2VjcmV0"}`,
	}
	n := 0
	for _, op := range Operations() {
		if op.Body() != BodyJSON {
			continue
		}
		n++
		t.Run(op.String(), func(t *testing.T) {
			body := samples[op]
			if body == "" {
				body = `{}`
			}
			v, err := DecodeBody(op, []byte(body), 0)
			if err != nil || v == nil || reflect.ValueOf(v).Kind() != reflect.Pointer {
				t.Fatalf("DecodeBody(%s, %s) = %T %v, %v; want a pointer to a decoded value", op, body, v, v, err)
			}
			out, err := Encode(v)
			if err != nil {
				t.Fatal(err)
			}
			again, err := DecodeBody(op, out, 0)
			if err != nil {
				t.Fatalf("re-decoding %s: %v", out, err)
			}
			if !reflect.DeepEqual(again, v) {
				t.Errorf("round trip changed the body: %s", out)
			}
		})
	}
	if n < 25 {
		t.Errorf("only %d operations take JSON bodies; the table lost some", n)
	}
	if _, err := DecodeBody(OpContainerList, []byte(`{}`), 0); !errors.Is(err, ErrBodyNotDocker) {
		t.Errorf("DecodeBody(container.list) error = %v, want ErrBodyNotDocker", err)
	}
}

func TestDecodeBodyTypes(t *testing.T) {
	cases := []struct {
		op   Operation
		want any
	}{
		{OpContainerCreate, &ContainerCreate{}},
		{OpContainerUpdate, &container.UpdateConfig{}},
		{OpContainerExec, &container.ExecCreateRequest{}},
		{OpVolumeCreate, &volume.CreateRequest{}},
		{OpNetworkCreate, &network.CreateRequest{}},
		{OpServiceUpdate, &swarm.ServiceSpec{}},
		{OpPluginInstall, &plugin.Privileges{}},
		{OpContainerCommit, &CommitRequest{}},
	}
	for _, tc := range cases {
		body := `{"Image":"x"}`
		if tc.op == OpPluginInstall {
			body = `[]`
		}
		v, err := DecodeBody(tc.op, []byte(body), 0)
		if err != nil {
			t.Fatalf("DecodeBody(%s): %v", tc.op, err)
		}
		if reflect.TypeOf(v) != reflect.TypeOf(tc.want) {
			t.Errorf("DecodeBody(%s) = %T, want %T", tc.op, v, tc.want)
		}
	}
}

func TestEncodeKeepsHTML(t *testing.T) {
	out, err := Encode(map[string]string{"Cmd": "a && b <c>"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"Cmd":"a && b <c>"}`; got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}
