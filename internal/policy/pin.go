package policy

import (
	"net/url"
	"path"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// checked records the full ID an ownership check of a container named in
// the request body or query resolved to. rewrite then names that
// container by its ID, so that dockerd uses the container that was
// checked even if its name (or an ID prefix) comes to mean another one in
// between.
//
// A network is recorded even when the request names it by its full ID:
// pinBody then also writes the ID into the endpoint's NetworkID, the
// field dockerd prefers to the network's name when it connects a created
// container at start.
func (d *decision) checked(c OwnerCheck, id string) {
	if id == "" || !plainName(id) {
		return
	}
	var m *map[string]string
	switch {
	case c.Kind == KindNetwork:
		m = &d.Owner.pinnedNets
	case c.Kind == KindContainer && !c.Pin && id != c.Ref:
		m = &d.Owner.pinned
	default:
		return
	}
	if *m == nil {
		*m = make(map[string]string)
	}
	(*m)[c.Ref] = id
}

// pinBody rewrites the container and network references of a body to
// the IDs checked recorded; target is the object the request path names.
// It reports whether anything changed.
func (p *OwnerPlan) pinBody(body any, target string) bool {
	if len(p.pinned) == 0 && len(p.pinnedNets) == 0 {
		return false
	}
	switch b := body.(type) {
	case *dockerapi.ContainerCreate:
		changed := false
		for _, hc := range b.HostConfigs() {
			changed = pinHostConfig(hc, p.pinned) || changed
			changed = pinNetworkMode(hc, p.pinnedNets) || changed
		}
		return p.pinEndpoints(b) || changed
	case *network.ConnectRequest:
		// dockerd stores the endpoint of a container that is not running
		// under the network's name and connects it by that name at start
		// unless its NetworkID is set.
		changed := pinName(&b.Container, p.pinned)
		if _, ok := p.pinnedNets[target]; ok && userNetwork(target) && b.EndpointConfig == nil {
			b.EndpointConfig = &network.EndpointSettings{}
		}
		return p.pinEndpoint(b.EndpointConfig, target) || changed
	case *network.DisconnectRequest:
		return pinName(&b.Container, p.pinned)
	}
	return false
}

// userNetwork reports whether a network mode or an EndpointsConfig key
// names a user-defined network: dockerd resolves those by name or ID, and
// prefers an endpoint's NetworkID to them.
func userNetwork(mode string) bool {
	return !predefinedNetworks[mode] && !strings.HasPrefix(mode, "container:")
}

// pinNetworkMode names a user-defined network mode by the full ID its
// check found.
func pinNetworkMode(hc *container.HostConfig, nets map[string]string) bool {
	mode := string(hc.NetworkMode)
	if id, ok := nets[mode]; ok && userNetwork(mode) && mode != id {
		hc.NetworkMode = container.NetworkMode(id)
		return true
	}
	return false
}

// pinEndpoints pins the networks a create joins. dockerd stores each
// endpoint under the name the request gives it and, at every start,
// connects the endpoint's NetworkID when it is set and the name
// otherwise: so each endpoint of a user-defined network gets the checked
// network's full ID as its NetworkID (the key stays: dockerd keys the
// endpoints by network name), and a user-defined NetworkMode without an
// endpoint gets one, keyed by the ID (dockerd moves it under the
// network's name at create).
func (p *OwnerPlan) pinEndpoints(c *dockerapi.ContainerCreate) bool {
	changed := false
	if c.NetworkingConfig != nil {
		for _, key := range sortedKeys(c.NetworkingConfig.EndpointsConfig) {
			ep := c.NetworkingConfig.EndpointsConfig[key]
			if !userNetwork(key) {
				changed = p.pinEndpoint(ep, "") || changed
				continue
			}
			if ep == nil {
				ep = &network.EndpointSettings{}
			}
			if p.pinEndpoint(ep, key) {
				c.NetworkingConfig.EndpointsConfig[key] = ep
				changed = true
			}
		}
	}
	mode := string(c.HostConfig.NetworkMode)
	if !userNetwork(mode) || c.NetworkingConfig != nil && len(c.NetworkingConfig.EndpointsConfig) > 0 {
		return changed
	}
	id, ok := p.pinnedNets[mode]
	if !ok {
		for _, v := range p.pinnedNets {
			if v == mode {
				id, ok = v, true
			}
		}
	}
	if !ok {
		return changed
	}
	if c.NetworkingConfig == nil {
		c.NetworkingConfig = &network.NetworkingConfig{}
	}
	c.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{id: {NetworkID: id}}
	return true
}

// pinEndpoint writes into an endpoint's settings the full ID of the
// network it joins (its NetworkID if set, else the network named by key;
// key "" pins only a NetworkID that is set) and the IDs of the containers
// its Links name.
func (p *OwnerPlan) pinEndpoint(ep *network.EndpointSettings, key string) bool {
	if ep == nil {
		return false
	}
	changed := false
	ref := ep.NetworkID
	if ref == "" {
		ref = key
	}
	if id, ok := p.pinnedNets[ref]; ok && ref != "" && ep.NetworkID != id {
		ep.NetworkID, changed = id, true
	}
	for i, link := range ep.Links {
		if pinned, ok := pinLink(link, p.pinned); ok {
			ep.Links[i], changed = pinned, true
		}
	}
	return changed
}

// pinQuery rewrites the container a query names to the ID checked
// recorded: commit's container, a build's networkmode=container:X. It
// reports whether anything changed.
func (p *OwnerPlan) pinQuery(op dockerapi.Operation, q url.Values) bool {
	if len(p.pinned) == 0 || q == nil {
		return false
	}
	switch op {
	case dockerapi.OpContainerCommit:
		ref := q.Get("container")
		if pinName(&ref, p.pinned) {
			q.Set("container", ref)
			return true
		}
	case dockerapi.OpImageBuild:
		mode := q.Get("networkmode")
		if pinMode(&mode, p.pinned) {
			q.Set("networkmode", mode)
			return true
		}
	}
	return false
}

// pinHostConfig rewrites "container:REF" modes, VolumesFrom and Links,
// keeping what dockerd reads after the reference (":ro", the alias).
func pinHostConfig(hc *container.HostConfig, ids map[string]string) bool {
	if hc == nil {
		return false
	}
	changed := pinMode((*string)(&hc.NetworkMode), ids)
	changed = pinMode((*string)(&hc.PidMode), ids) || changed
	changed = pinMode((*string)(&hc.IpcMode), ids) || changed
	changed = pinMode((*string)(&hc.Cgroup), ids) || changed
	for i, vf := range hc.VolumesFrom {
		ref, mode, hasMode := strings.Cut(vf, ":")
		if id, ok := ids[ref]; ok {
			hc.VolumesFrom[i] = id
			if hasMode {
				hc.VolumesFrom[i] += ":" + mode
			}
			changed = true
		}
	}
	for i, link := range hc.Links {
		if pinned, ok := pinLink(link, ids); ok {
			hc.Links[i], changed = pinned, true
		}
	}
	return changed
}

func pinMode(mode *string, ids map[string]string) bool {
	ref, ok := strings.CutPrefix(*mode, "container:")
	if id, found := ids[ref]; ok && found {
		*mode = "container:" + id
		return true
	}
	return false
}

func pinName(name *string, ids map[string]string) bool {
	if id, ok := ids[*name]; ok {
		*name = id
		return true
	}
	return false
}

// pinLink rewrites "NAME[:ALIAS]" to "ID:ALIAS" with the alias dockerd
// would have used: NAME itself when there is none, and for "/NAME:/a/b"
// (the form inspect shows) the last element.
func pinLink(link string, ids map[string]string) (string, bool) {
	ref, alias, hasAlias := strings.Cut(link, ":")
	name := strings.TrimPrefix(ref, "/")
	id, ok := ids[name]
	if !ok || strings.Contains(alias, ":") {
		return link, false
	}
	switch {
	case !hasAlias:
		alias = name
	case strings.HasPrefix(ref, "/"):
		_, alias = path.Split(alias)
	}
	return id + ":" + alias, true
}
