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
func (d *decision) checked(c OwnerCheck, id string) {
	if c.Kind != KindContainer || c.Pin || id == "" || id == c.Ref || !plainName(id) {
		return
	}
	if d.Owner.pinned == nil {
		d.Owner.pinned = make(map[string]string)
	}
	d.Owner.pinned[c.Ref] = id
}

// pinBody rewrites the container references of a body to the IDs
// checked recorded. It reports whether anything changed.
func (p *OwnerPlan) pinBody(body any) bool {
	if len(p.pinned) == 0 {
		return false
	}
	switch b := body.(type) {
	case *dockerapi.ContainerCreate:
		changed := false
		for _, hc := range b.HostConfigs() {
			changed = pinHostConfig(hc, p.pinned) || changed
		}
		return changed
	case *network.ConnectRequest:
		return pinName(&b.Container, p.pinned)
	case *network.DisconnectRequest:
		return pinName(&b.Container, p.pinned)
	}
	return false
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
