package policy

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// checkAll plays the gateway: every container check of d resolves to
// ids[ref] (a ref without an entry is left unchecked).
func checkAll(d *decision, ids map[string]string) {
	for _, c := range d.Owner.Checks {
		if id, ok := ids[c.Ref]; ok {
			d.checked(c, id)
		}
	}
}

// rewritten decides body for tenant t1, checks its references against
// ids, rewrites it and returns the JSON the gateway would forward.
func rewritten(t *testing.T, method, path string, body string, ids map[string]string) map[string]any {
	t.Helper()
	p := mustPolicy(t, pinConfig)
	req, err := newRequest(method, path, "", []byte(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	d := p.decide(identity.Identity{CN: "t1"}, "tenant", req)
	if d.Effect != Allow {
		t.Fatalf("Decide = %v: %s", d.Effect, d.message())
	}
	checkAll(&d, ids)
	if _, _, err := d.rewrite(&req); err != nil {
		t.Fatal(err)
	}
	encoded, err := dockerapi.Encode(req.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(encoded, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// pinConfig has a tenant role that may take other (own) containers'
// volumes as well as their namespaces.
const pinConfig = `
roles:
  tenant:
    allow: [container.*, network.*]
    owner_isolation: true
    containers:
      volumes_from: true
`

const (
	webID = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	dbID  = "f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8d7c6b5a4f9e8"
)

func TestRewritePinsContainerReferences(t *testing.T) {
	body := `{"Image":"x","HostConfig":{"NetworkMode":"container:web","PidMode":"container:0a1b","IpcMode":"container:db",` +
		`"Cgroup":"container:web","VolumesFrom":["web:ro","db"],"Links":["web","/db:/app/database","db:store","other"]},` +
		`"Binds":["vol:/v"],"VolumesFrom":["0a1b"]}`
	ids := map[string]string{"web": webID, "0a1b": webID, "db": dbID}
	v := rewritten(t, "POST", "/containers/create", body, ids)
	hc := v["HostConfig"].(map[string]any)
	want := map[string]any{
		"NetworkMode": "container:" + webID,
		"PidMode":     "container:" + webID,
		"IpcMode":     "container:" + dbID,
		"Cgroup":      "container:" + webID,
		"VolumesFrom": []any{webID + ":ro", dbID},
		"Links":       []any{webID + ":web", dbID + ":database", dbID + ":store", "other"},
	}
	for k, w := range want {
		if !reflect.DeepEqual(hc[k], w) {
			t.Errorf("HostConfig.%s = %v, want %v", k, hc[k], w)
		}
	}
	if got := v["VolumesFrom"]; !reflect.DeepEqual(got, []any{webID}) {
		t.Errorf("legacy VolumesFrom = %v, want [%s]", got, webID)
	}
}

func TestRewritePinsNetworkConnect(t *testing.T) {
	for _, op := range []string{"connect", "disconnect"} {
		v := rewritten(t, "POST", "/networks/appnet/"+op, `{"Container":"web"}`, map[string]string{"web": webID})
		if v["Container"] != webID {
			t.Errorf("%s: Container = %v, want %s", op, v["Container"], webID)
		}
	}
}

// References that were not checked, or that already are the ID, stay as
// the client wrote them; so does everything when nothing was checked.
func TestRewriteLeavesUncheckedReferences(t *testing.T) {
	body := `{"Image":"x","HostConfig":{"NetworkMode":"container:` + webID + `","PidMode":"container:db","VolumesFrom":["db:rw"]}}`
	v := rewritten(t, "POST", "/containers/create", body, map[string]string{webID: webID})
	hc := v["HostConfig"].(map[string]any)
	if hc["NetworkMode"] != "container:"+webID || hc["PidMode"] != "container:db" || !reflect.DeepEqual(hc["VolumesFrom"], []any{"db:rw"}) {
		t.Errorf("HostConfig = %v, want the references as written", hc)
	}
}

func TestCheckedIgnoresWhatIsNotABodyContainer(t *testing.T) {
	var d decision
	d.checked(OwnerCheck{Kind: KindVolume, Ref: "v"}, "v2")
	d.checked(OwnerCheck{Kind: KindContainer, Ref: "web", Pin: true}, webID)
	d.checked(OwnerCheck{Kind: KindContainer, Ref: "web"}, "")
	d.checked(OwnerCheck{Kind: KindContainer, Ref: "web"}, "../x")
	if d.Owner.pinned != nil {
		t.Errorf("pinned = %v, want nothing", d.Owner.pinned)
	}
}

func TestPinLink(t *testing.T) {
	ids := map[string]string{"web": webID}
	for in, want := range map[string]string{
		"web":           webID + ":web",
		"/web":          webID + ":web",
		"web:alias":     webID + ":alias",
		"/web:/app/web": webID + ":web",
		"web:a:b":       "web:a:b", // dockerd refuses it; left for dockerd to say so
		"db":            "db",
	} {
		got, _ := pinLink(in, ids)
		if got != want {
			t.Errorf("pinLink(%q) = %q, want %q", in, got, want)
		}
	}
	if strings.Contains(webID, ":") {
		t.Fatal("test ID must not contain ':'")
	}
}

func TestRewritePinsQueryContainers(t *testing.T) {
	cases := []struct{ target, key, want string }{
		{"/commit?container=web&repo=img", "container", webID},
		{"/build?networkmode=container:web&t=img", "networkmode", "container:" + webID},
	}
	cfg := strings.Replace(pinConfig, "allow: [container.*, network.*]", "allow: [container.*, network.*, image.build, image.tag]", 1)
	p := mustPolicy(t, cfg)
	for _, c := range cases {
		path, query, _ := strings.Cut(c.target, "?")
		req, err := newRequest("POST", path, query, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		req.Build = &buildInput{facts: &dockerfileFacts{}} // a context with "FROM scratch"
		d := p.decide(identity.Identity{CN: "t1"}, "tenant", req)
		if d.Effect != Allow {
			t.Fatalf("%s: %s", c.target, d.message())
		}
		checkAll(&d, map[string]string{"web": webID})
		queryChanged, _, err := d.rewrite(&req)
		if err != nil || !queryChanged {
			t.Fatalf("%s: Rewrite = %v, %v; want the query changed", c.target, queryChanged, err)
		}
		if got := req.Query.Get(c.key); got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.target, c.key, got, c.want)
		}
	}
}
