package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// daemonNetwork is what the daemon says about a network.
type daemonNetwork struct {
	ID         string `json:"Id"`
	Name       string
	Labels     map[string]string
	Containers map[string]struct{ Name string }
}

// network inspects a network; ok is false when it does not exist.
func (a *daemonAPI) network(t testing.TB, ref string) (daemonNetwork, bool) {
	t.Helper()
	var n daemonNetwork
	status, body := a.do(t, http.MethodGet, "/networks/"+url.PathEscape(ref), nil)
	if status == http.StatusNotFound {
		return n, false
	}
	if status != http.StatusOK {
		t.Fatalf("daemon inspect network %s: %d %s", ref, status, body)
	}
	if err := json.Unmarshal(body, &n); err != nil {
		t.Fatal(err)
	}
	return n, true
}

// networksNamed lists the daemon's networks whose name is name.
func (a *daemonAPI) networksNamed(t testing.TB, name string) []daemonNetwork {
	t.Helper()
	var all []daemonNetwork
	a.getJSON(t, "/networks", &all)
	var named []daemonNetwork
	for _, n := range all {
		if n.Name == name {
			named = append(named, n)
		}
	}
	return named
}

// endpoints is what the daemon stored of a container's networks.
func (a *daemonAPI) endpoints(t testing.TB, ref string) (mode string, nets map[string]struct{ NetworkID string }) {
	t.Helper()
	var c struct {
		HostConfig      struct{ NetworkMode string }
		NetworkSettings struct {
			Networks map[string]struct{ NetworkID string }
		}
	}
	a.getJSON(t, "/containers/"+url.PathEscape(ref)+"/json", &c)
	return c.HostConfig.NetworkMode, c.NetworkSettings.Networks
}

// createNetwork creates a network as client through the gateway (docker
// CLI) and removes it on the daemon when t ends; it returns its ID.
func (p *policyEnv) createNetwork(t *testing.T, client, name string) string {
	t.Helper()
	id := p.mustDockerAs(t, client, "network", "create", name)
	t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/networks/"+id, nil) })
	return id
}

// TestPolicyOwnerReferences: tenant B names tenant A's networks,
// containers and volumes (by name, ID and ID prefix) in every field
// dockerd resolves (network modes, endpoints and their NetworkID and
// Links, connect bodies), sets A's owner label on a mounted volume, and
// creates objects with A's names. The daemon's own state says that
// nothing of A's was touched or joined, that B's objects are B's, and
// that A's and B's everyday work goes on.
func TestPolicyOwnerReferences(t *testing.T) {
	p := startPolicyEnv(t)
	img := p.d.Image()

	aNet, bNet := "ta-"+newMarker(), "tb-"+newMarker()
	aNetID := p.createNetwork(t, tenantA, aNet)
	bNetID := p.createNetwork(t, tenantB, bNet)
	aName := "ta-" + newMarker()
	aID := p.mustDockerAs(t, tenantA, "create", "--network", aNet, "--name", aName, img, "sleep", "300")
	t.Cleanup(func() { p.daemon.removeContainer(t, aID) })
	p.mustDockerAs(t, tenantA, "start", aID)
	aVol := "ta-" + newMarker()
	p.mustDockerAs(t, tenantA, "volume", "create", aVol)
	t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+aVol+"?force=1", nil) })
	bName := "tb-" + newMarker()
	bID := p.mustDockerAs(t, tenantB, "create", "--network", bNet, "--name", bName, img, "sleep", "300")
	t.Cleanup(func() { p.daemon.removeContainer(t, bID) })
	p.mustDockerAs(t, tenantB, "start", bID)

	// aNetUnchanged: A's network has only A's container on it, and is
	// still A's and the only one of its name.
	aNetUnchanged := func(t *testing.T) {
		t.Helper()
		n, ok := p.daemon.network(t, aNetID)
		if !ok {
			t.Fatal("THE DAEMON ACTED: A's network is gone")
		}
		if len(n.Containers) != 1 {
			t.Errorf("THE DAEMON ACTED: A's network has %d endpoints %v, want A's container alone", len(n.Containers), n.Containers)
		}
		if _, ok := n.Containers[aID]; !ok {
			t.Errorf("A's container is not on A's network: %v", n.Containers)
		}
		if n.Labels[ownerLabelKey] != tenantA {
			t.Errorf("THE DAEMON ACTED: A's network is labelled %q", n.Labels[ownerLabelKey])
		}
		if named := p.daemon.networksNamed(t, aNet); len(named) != 1 {
			t.Errorf("THE DAEMON ACTED: %d networks are named %s", len(named), aNet)
		}
		if c := p.daemon.mustContainer(t, aID); c.Name != "/"+aName || !c.State.Running {
			t.Errorf("THE DAEMON ACTED on A's container: %s %s", c.Name, c.State.Status)
		}
		var vol struct{ Labels map[string]string }
		p.daemon.getJSON(t, "/volumes/"+aVol, &vol)
		if vol.Labels[ownerLabelKey] != tenantA {
			t.Errorf("THE DAEMON ACTED: A's volume is labelled %q", vol.Labels[ownerLabelKey])
		}
	}
	// noneMarked: no container of the attempt exists.
	noneMarked := func(t *testing.T, marker string) {
		t.Helper()
		if list := p.daemon.containersLabelled(t, markerLabel+"="+marker); len(list) > 0 {
			t.Errorf("THE DAEMON ACTED: container %v was created", list[0].Names)
		}
	}
	// leaks: the answer names none of A's objects but by the reference
	// B wrote itself.
	leaks := func(t *testing.T, r *rawResponse, wrote ...string) {
		t.Helper()
		for _, s := range []string{aID, aID[:12], aNetID, aNetID[:12], tenantA} {
			if strings.Contains(r.Body, s) && !strings.Contains(strings.Join(wrote, " "), s) {
				t.Errorf("the answer names A's object (%s): %s", s, r)
			}
		}
	}

	netRefs := map[string]string{"name": aNet, "ID": aNetID, "ID prefix": aNetID[:12]}
	ctrRefs := map[string]string{"name": aName, "ID": aID, "ID prefix": aID[:12]}
	for _, kind := range []string{"name", "ID", "ID prefix"} {
		netRef, ctrRef := netRefs[kind], ctrRefs[kind]
		creates := []struct {
			name, extra string
			status      int
			msg         string
		}{
			{"NetworkMode", `,"HostConfig":{"NetworkMode":"` + netRef + `"}`, 400, "network " + netRef + " not found"},
			{"EndpointsConfig key", `,"HostConfig":{"NetworkMode":"` + bNet + `"},"NetworkingConfig":{"EndpointsConfig":{"` + netRef + `":{}}}`,
				400, "network " + netRef + " not found"},
			{"EndpointsConfig NetworkID", `,"HostConfig":{"NetworkMode":"` + bNet + `"},"NetworkingConfig":{"EndpointsConfig":{"` + bNet + `":{"NetworkID":"` + netRef + `"}}}`,
				400, "network " + netRef + " not found"},
			{"endpoint Links", `,"HostConfig":{"NetworkMode":"` + bNet + `"},"NetworkingConfig":{"EndpointsConfig":{"` + bNet + `":{"Links":["` + ctrRef + `:x"]}}}`,
				400, "No such container: " + ctrRef},
			{"NetworkMode container:", `,"HostConfig":{"NetworkMode":"container:` + ctrRef + `"}`, 400, "No such container: " + ctrRef},
		}
		for _, c := range creates {
			t.Run("create with A's network by "+kind+" in "+c.name, func(t *testing.T) {
				m := newMarker()
				r := p.call(t, tenantB, http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, c.extra))
				if r.Status != c.status || r.Message != c.msg {
					t.Errorf("answer %s, want %d %q", r, c.status, c.msg)
				}
				leaks(t, r, netRef, ctrRef)
				t.Cleanup(func() { p.daemon.removeContainer(t, m) })
				noneMarked(t, m)
				aNetUnchanged(t)
			})
		}
		t.Run("connect with A's network by "+kind+" as NetworkID", func(t *testing.T) {
			r := p.call(t, tenantB, http.MethodPost, "/v1.41/networks/"+bNet+"/connect",
				`{"Container":"`+bID+`","EndpointConfig":{"NetworkID":"`+netRef+`"}}`)
			if r.Status != http.StatusNotFound || r.Message != "network "+netRef+" not found" {
				t.Errorf("answer %s, want 404 network %s not found", r, netRef)
			}
			leaks(t, r, netRef)
			aNetUnchanged(t)
		})
		t.Run("connect to A's network by "+kind, func(t *testing.T) {
			r := p.call(t, tenantB, http.MethodPost, "/v1.41/networks/"+netRef+"/connect", `{"Container":"`+bID+`"}`)
			if r.Status != http.StatusNotFound || r.Message != "network "+netRef+" not found" {
				t.Errorf("answer %s, want 404 network %s not found", r, netRef)
			}
			aNetUnchanged(t)
		})
		t.Run("connect with A's container by "+kind+" in Links", func(t *testing.T) {
			r := p.call(t, tenantB, http.MethodPost, "/v1.41/networks/"+bNet+"/connect",
				`{"Container":"`+bID+`","EndpointConfig":{"Links":["`+ctrRef+`:x"]}}`)
			if r.Status != http.StatusNotFound || r.Message != "No such container: "+ctrRef {
				t.Errorf("answer %s, want 404 No such container: %s", r, ctrRef)
			}
			leaks(t, r, ctrRef)
			aNetUnchanged(t)
		})
		t.Run("disconnect A's container by "+kind, func(t *testing.T) {
			r := p.call(t, tenantB, http.MethodPost, "/v1.41/networks/"+netRef+"/disconnect", `{"Container":"`+ctrRef+`","Force":true}`)
			if r.Status != http.StatusNotFound {
				t.Errorf("answer %s, want 404", r)
			}
			aNetUnchanged(t)
		})
	}

	t.Run("an endpoint's NetworkID names a predefined network", func(t *testing.T) {
		for _, c := range []struct{ client, net string }{{tenantB, "host"}, {tenantB, "bridge"}, {ciClient, "host"}} {
			m := newMarker()
			extra := `,"HostConfig":{"NetworkMode":"` + bNet + `"},"NetworkingConfig":{"EndpointsConfig":{"` + bNet + `":{"NetworkID":"` + c.net + `"}}}`
			if c.client == ciClient {
				extra = `,"HostConfig":{"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"someone":{"NetworkID":"host"}}}`
			}
			r := p.call(t, c.client, http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, extra))
			if r.Status != http.StatusBadRequest && r.Status != http.StatusForbidden {
				t.Errorf("%s, NetworkID %s: answer %s, want a refusal", c.client, c.net, r)
			}
			t.Cleanup(func() { p.daemon.removeContainer(t, m) })
			noneMarked(t, m)
		}
	})

	t.Run("a mounted volume labelled as A's", func(t *testing.T) {
		for _, source := range []string{"", "tb-" + newMarker()} {
			m := newMarker()
			extra := `,"HostConfig":{"Mounts":[{"Type":"volume","Source":"` + source + `","Target":"/d","VolumeOptions":{"Labels":{"` +
				ownerLabelKey + `":"` + tenantA + `","` + markerLabel + `":"` + m + `"}}}]}`
			r := p.call(t, tenantB, http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, extra))
			if r.Status != http.StatusForbidden || !r.says("VolumeOptions.Labels sets dockgate.owner") {
				t.Errorf("source %q: answer %s, want 403", source, r)
			}
			t.Cleanup(func() { p.daemon.removeContainer(t, m) })
			noneMarked(t, m)
			if vols := p.daemon.volumesLabelled(t, markerLabel+"="+m); len(vols) > 0 {
				t.Errorf("THE DAEMON ACTED: volume %v was created", vols)
			}
			if vols := p.daemon.volumesLabelled(t, ownerLabelKey+"="+tenantA); len(vols) != 1 || vols[0] != aVol {
				t.Errorf("A's volumes are %v, want %s alone", vols, aVol)
			}
		}
	})

	t.Run("creates with A's names", func(t *testing.T) {
		r := p.call(t, tenantB, http.MethodPost, "/v1.41/volumes/create", `{"Name":"`+aVol+`"}`)
		if r.Status != http.StatusConflict || r.Message != "create "+aVol+": volume name must be unique" {
			t.Errorf("volume create: %s, want 409", r)
		}
		leaks(t, r)
		r = p.call(t, tenantB, http.MethodPost, "/v1.41/networks/create", `{"Name":"`+aNet+`"}`)
		if r.Status != http.StatusConflict || r.Message != "network with name "+aNet+" already exists" {
			t.Errorf("network create: %s, want 409", r)
		}
		leaks(t, r)
		m := newMarker()
		r = p.call(t, tenantB, http.MethodPost, "/v1.41/containers/create?name="+aName, createBody(img, m, `,"HostConfig":{"NetworkMode":"none"}`))
		if r.Status != http.StatusConflict || !r.says(`The container name "/`+aName+`" is already in use`) {
			t.Errorf("container create: %s, want 409", r)
		}
		leaks(t, r)
		noneMarked(t, m)
		r = p.call(t, tenantB, http.MethodPost, "/v1.41/containers/"+bName+"/rename?name="+aName, "")
		if r.Status != http.StatusConflict || !r.says(`The container name "/`+aName+`" is already in use`) {
			t.Errorf("container rename: %s, want 409", r)
		}
		leaks(t, r)
		if c := p.daemon.mustContainer(t, bID); c.Name != "/"+bName {
			t.Errorf("THE DAEMON ACTED: B's container is named %s", c.Name)
		}
		aNetUnchanged(t)
		// A's own lookups by name still work.
		if r := p.call(t, tenantA, http.MethodGet, "/v1.41/networks/"+aNet, ""); r.Status != http.StatusOK || !strings.Contains(r.Body, aNetID) {
			t.Errorf("A's inspect of its network: %s", r)
		}
		if r := p.call(t, tenantA, http.MethodGet, "/v1.41/volumes/"+aVol, ""); r.Status != http.StatusOK {
			t.Errorf("A's inspect of its volume: %s", r)
		}
		if r := p.call(t, tenantA, http.MethodGet, "/v1.41/containers/"+aName+"/json", ""); r.Status != http.StatusOK {
			t.Errorf("A's inspect of its container: %s", r)
		}
	})

	t.Run("a created container keeps the network it was checked against", func(t *testing.T) {
		// A creates a container on its network, removes the network
		// before the start, and B creates one of the same name: the
		// start must not join B's network.
		net := "ta-" + newMarker()
		netID := p.mustDockerAs(t, tenantA, "network", "create", net)
		id := p.mustDockerAs(t, tenantA, "create", "--network", net, img, "sleep", "300")
		t.Cleanup(func() { p.daemon.removeContainer(t, id) })
		mode, nets := p.daemon.endpoints(t, id)
		if mode != netID || len(nets) != 1 || nets[net].NetworkID != netID {
			t.Fatalf("stored network mode %q, endpoints %+v; want the network's ID %s", mode, nets, netID)
		}
		p.mustDockerAs(t, tenantA, "network", "rm", net)
		bSameName := p.createNetwork(t, tenantB, net)
		if _, _, err := p.dockerAsClient(tenantA, "start", id); err == nil {
			t.Error("A's container started after its network was removed")
		}
		if n, _ := p.daemon.network(t, bSameName); len(n.Containers) != 0 {
			t.Errorf("THE DAEMON ACTED: A's container joined B's network: %v", n.Containers)
		}
	})

	t.Run("everyday work", func(t *testing.T) {
		// B's container on B's network: pinned to the ID, running, B's.
		mode, nets := p.daemon.endpoints(t, bID)
		if mode != bNetID || nets[bNet].NetworkID != bNetID {
			t.Errorf("B's container: network mode %q, endpoints %+v; want %s", mode, nets, bNetID)
		}
		c := p.daemon.mustContainer(t, bID)
		if !c.State.Running || c.Config.Labels[ownerLabelKey] != tenantB {
			t.Errorf("B's container: %s, owner %q", c.State.Status, c.Config.Labels[ownerLabelKey])
		}
		if n, _ := p.daemon.network(t, bNetID); n.Labels[ownerLabelKey] != tenantB {
			t.Errorf("B's network owner %q", n.Labels[ownerLabelKey])
		}
		// Connect another own container to a second own network by
		// names, then disconnect it.
		bNet2 := "tb-" + newMarker()
		bNet2ID := p.createNetwork(t, tenantB, bNet2)
		other := "tb-" + newMarker()
		otherID := p.mustDockerAs(t, tenantB, "create", "--network", bNet, "--name", other, img, "sleep", "300")
		t.Cleanup(func() { p.daemon.removeContainer(t, otherID) })
		p.mustDockerAs(t, tenantB, "network", "connect", "--alias", "other", bNet2, other)
		if _, nets := p.daemon.endpoints(t, otherID); nets[bNet2].NetworkID != bNet2ID || nets[bNet].NetworkID != bNetID {
			t.Errorf("B's connect: endpoints %+v, want %s and %s", nets, bNetID, bNet2ID)
		}
		p.mustDockerAs(t, tenantB, "start", other)
		if n, _ := p.daemon.network(t, bNet2ID); len(n.Containers) != 1 {
			t.Errorf("B's second network has %v, want B's container", n.Containers)
		}
		p.mustDockerAs(t, tenantB, "network", "disconnect", bNet2, other)
		if n, _ := p.daemon.network(t, bNet2ID); len(n.Containers) != 0 {
			t.Errorf("B's disconnect left %v", n.Containers)
		}
		// Own volume: create twice (dockerd's answer to its own name),
		// mount it, and mount a new one, which becomes B's.
		vol := "tb-" + newMarker()
		p.mustDockerAs(t, tenantB, "volume", "create", vol)
		p.mustDockerAs(t, tenantB, "volume", "create", vol)
		t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+vol+"?force=1", nil) })
		newVol := "tb-" + newMarker()
		t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+newVol+"?force=1", nil) })
		out := p.mustDockerAs(t, tenantB, "run", "--rm", "--network", bNet, "-v", vol+":/a", "--mount", "type=volume,src="+newVol+",dst=/b",
			"--mount", "type=volume,dst=/c,volume-label=app=x", img, "sh", "-c", "echo ok")
		if out != "ok" {
			t.Errorf("docker run: %q", out)
		}
		var v struct{ Labels map[string]string }
		p.daemon.getJSON(t, "/volumes/"+newVol, &v)
		if v.Labels[ownerLabelKey] != tenantB {
			t.Errorf("volume created for B's mount: owner %q", v.Labels[ownerLabelKey])
		}
		// A's work on its own objects goes on.
		p.mustDockerAs(t, tenantA, "run", "--rm", "--network", aNet, "-v", aVol+":/a", img, "true")
	})
}
