package policy

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// OwnerLabel is the label that says which client created an object; its
// value is the client certificate's CN.
const OwnerLabel = "dockgate.owner"

// ObjectKind is the kind of object an ownership check looks up.
type ObjectKind uint8

// The kinds owner isolation covers.
const (
	KindContainer ObjectKind = iota + 1
	KindExec
	KindVolume
	KindNetwork
)

// String returns "container", "exec", "volume" or "network".
func (k ObjectKind) String() string {
	switch k {
	case KindContainer:
		return "container"
	case KindExec:
		return "exec"
	case KindVolume:
		return "volume"
	case KindNetwork:
		return "network"
	}
	return "unknown"
}

// OwnerPlan is what owner isolation does for one request. Label and
// Filter are pure rewrites (decision.rewrite applies them); Checks need
// the daemon (Host.Inspect).
type OwnerPlan struct {
	// Label: stamp OwnerLabel=CN on the create body (container, volume,
	// network), overwriting whatever value the client sent.
	Label bool
	// Filter: add the filter label=OwnerLabel=CN to the "filters" query
	// parameter (lists, prunes, events).
	Filter bool
	// Checks are the objects the request names that the caller must own,
	// in the order to check them. The first one that fails answers 404
	// with its NotFound message.
	Checks []OwnerCheck

	// pinned maps container references in the body to the IDs their
	// checks found (decision.checked); pinnedNets does the same for
	// networks.
	pinned, pinnedNets map[string]string
}

// OwnerCheck is one object the caller must own.
//
// Evaluate looks the object up with Host.Inspect (dockerd resolves an ID,
// an ID prefix or a name as it will for the request itself) and checks its
// owner label. An exec is owned through its container. When the object is
// missing or not owned, the request is answered with NotFound(), the
// message dockerd gives for a missing object, so that a client cannot
// tell another client's object from none at all.
type OwnerCheck struct {
	Kind ObjectKind
	// Ref is how the request names the object: ID, ID prefix or name.
	Ref string
	// Field is where the request names it: "path", "query container",
	// "HostConfig.VolumesFrom[0]", "Container".
	Field string
	// CreateMissing (volumes a container create names): a missing volume
	// is not an error; dockerd would create it unlabelled, so Evaluate
	// creates it first with the owner label (Host.CreateVolume), then
	// checks the owner in the answer (another client may have created it
	// first).
	CreateMissing bool
	// Unique: Ref is the name a create gives its object, not an object
	// the request uses. The check passes when no object has that name, or
	// (containers, volumes) when the caller's has; otherwise the create is
	// answered 409 with Conflict(), dockerd's message for a name in use
	// without the other object's ID, since dockerd would answer with the
	// other client's object (a volume create), or name its ID (a
	// container create). Network names are kept unique, the caller's own
	// included: dockerd resolves a name several networks share to none.
	Unique bool
	// Pin: Ref is the object the request path names. After a successful
	// check the path is forwarded with the object's full ID (pinnedPath),
	// so that dockerd acts on the object that was checked even if the name
	// is taken over in between.
	Pin bool
}

// NotFound returns the 404 message dockerd gives for a missing object of
// the kind.
func (c OwnerCheck) NotFound() string {
	switch c.Kind {
	case KindExec:
		return "No such exec instance: " + c.Ref
	case KindVolume:
		return "get " + c.Ref + ": no such volume"
	case KindNetwork:
		return "network " + c.Ref + " not found"
	}
	return "No such container: " + c.Ref
}

// Conflict returns the 409 message for a create whose name is in use
// (Unique): dockerd's own, without the ID of the object that has it.
func (c OwnerCheck) Conflict() string {
	switch c.Kind {
	case KindVolume:
		return "create " + c.Ref + ": volume name must be unique"
	case KindNetwork:
		return "network with name " + c.Ref + " already exists"
	}
	return `Conflict. The container name "/` + c.Ref + `" is already in use. You have to remove (or rename) that container to be able to reuse that name.`
}

// holdsName reports whether obj, found by a lookup of c.Ref, is the
// object that has the name c.Ref, not one found by its ID or an ID
// prefix.
func (c OwnerCheck) holdsName(obj Object) bool {
	name := obj.Name
	if name == "" && c.Kind == KindVolume {
		name = obj.ID // a volume's name is its ID
	}
	if c.Kind == KindContainer {
		name = strings.TrimPrefix(name, "/")
	}
	return name == c.Ref
}

// conflictStatus is the status of a create whose name is in use.
const conflictStatus = http.StatusConflict

// notFoundStatus is the status of a failed ownership check.
const notFoundStatus = http.StatusNotFound

// createRefStatus is the status of a failed ownership check on an object a
// container create names in its body: dockerd answers a missing container
// in PidMode, IpcMode, VolumesFrom or Links with 400 ("No such container:
// NAME"), and the docker CLI reads a 404 from create as "no such image" and
// goes on to pull the image.
const createRefStatus = http.StatusBadRequest

// Status is the status the request is answered with when the check fails
// for operation op (ownershipStatus).
func (c OwnerCheck) Status(op dockerapi.Operation) int { return ownershipStatus(op) }

// ownershipStatus is the status a failed ownership check answers for an
// operation: createRefStatus for a container create, else notFoundStatus.
func ownershipStatus(op dockerapi.Operation) int {
	if op == dockerapi.OpContainerCreate {
		return createRefStatus
	}
	return notFoundStatus
}

// denyOwnership records that an ownership check failed: the object is
// missing, or it is another client's. In enforce mode the decision becomes
// a denial with ownershipStatus(d.Op) whose message is c.NotFound(); in audit
// mode it becomes WouldDeny, and the gateway forwards the request. Reason,
// Field and Rule say what happened, for the audit log. A decision that
// already is WouldDeny keeps its first reason.
func (d *decision) denyOwnership(c OwnerCheck) {
	if d.Effect == WouldDeny {
		return
	}
	d.Effect = Deny
	if d.Audit {
		d.Effect = WouldDeny
	}
	d.Status = ownershipStatus(d.Op)
	d.Field = c.Field
	d.Reason = fmt.Sprintf("%s %s (%s) is missing or not the caller's", c.Kind, quote(c.Ref), c.Field)
	d.Rule = "roles." + d.Role + ".owner_isolation"
	d.Fix = ""
	d.notFound = c.NotFound()
}

// denyConflict records that a create takes a name another object has
// (OwnerCheck.Unique), as denyOwnership does for a failed check: the
// answer is 409 with c.Conflict().
func (d *decision) denyConflict(c OwnerCheck) {
	if d.Effect == WouldDeny {
		return
	}
	d.denyOwnership(c)
	d.Status = conflictStatus
	d.Reason = fmt.Sprintf("%s name %s (%s) is in use", c.Kind, quote(c.Ref), c.Field)
	d.notFound = c.Conflict()
}

// ownedBy reports whether labels carry OwnerLabel=cn. An empty CN owns
// nothing, so an unlabelled object is never anybody's.
func ownedBy(labels map[string]string, cn string) bool {
	v, ok := labels[OwnerLabel]
	return ok && cn != "" && v == cn
}

// pinnedPath returns the request path with the object it names replaced
// by id (the full ID a lookup returned), keeping the version prefix and
// the rest of the path. ok is false when the route names no object or id
// is not a plain ID or name.
func pinnedPath(r dockerapi.Route, id string) (p string, ok bool) {
	prefix := targetPrefix(r.Op)
	if prefix == "" || r.Target == "" || !plainName(id) ||
		!strings.HasPrefix(r.Path, prefix) || !strings.HasPrefix(r.Path[len(prefix):], r.Target) {
		return "", false
	}
	p = prefix + id + r.Path[len(prefix)+len(r.Target):]
	if r.Version != "" {
		p = "/v" + r.Version + p
	}
	return p, true
}

func targetPrefix(op dockerapi.Operation) string {
	switch op.Object() {
	case "container", "checkpoint":
		return "/containers/"
	case "exec":
		return "/exec/"
	case "volume":
		return "/volumes/"
	case "network":
		return "/networks/"
	}
	return ""
}

// plainName: the characters of IDs and volume names, nothing a path
// would need to escape.
func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// addOwnerFilter returns a "filters" value that keeps the client's
// filters and adds label=OwnerLabel=cn. Docker requires every label
// filter to match, so the client can narrow the result but never widen
// it. raw may be empty or in either of the formats dockerd reads.
func addOwnerFilter(raw, cn string) (string, error) {
	f, err := dockerapi.ParseFilters(raw)
	if err != nil {
		return "", err
	}
	f.Add("label", OwnerLabel+"="+cn)
	return f.Encode(), nil
}

// stampOwner sets OwnerLabel=cn on a decoded create body (container,
// volume or network), replacing a client-supplied value. It reports
// whether body was such a body.
func stampOwner(body any, cn string) bool {
	switch b := body.(type) {
	case *dockerapi.ContainerCreate:
		b.SetLabel(OwnerLabel, cn)
	case *volume.CreateRequest:
		b.Labels = dockerapi.WithLabel(b.Labels, OwnerLabel, cn)
	case *network.CreateRequest:
		b.Labels = dockerapi.WithLabel(b.Labels, OwnerLabel, cn)
	default:
		return false
	}
	return true
}

// rewrite applies the rewrites of d.Owner to req: the owner label on the
// create body, the owner filter on the query (req.Query is changed in
// place, and created when nil), the IDs of the containers the body and
// query name (checked). It reports what changed, so that the
// gateway re-encodes only that: the query with req.Query.Encode(), the
// body with dockerapi.Encode(req.Body).
func (d *decision) rewrite(req *request) (queryChanged, bodyChanged bool, err error) {
	if d.Owner.Filter {
		f, err := addOwnerFilter(req.Query.Get("filters"), d.CN)
		if err != nil {
			return false, false, err
		}
		if req.Query == nil {
			req.Query = url.Values{}
		}
		req.Query["filters"] = []string{f}
		queryChanged = true
	}
	if d.Owner.Label {
		if !stampOwner(req.Body, d.CN) {
			return queryChanged, false, fmt.Errorf("failed to stamp the owner label: %s has no labelled body", d.Op)
		}
		bodyChanged = true
	}
	if d.Owner.pinBody(req.Body, req.Route.Target) {
		bodyChanged = true
	}
	if d.Owner.pinQuery(d.Op, req.Query) {
		queryChanged = true
	}
	return queryChanged, bodyChanged, nil
}

// isolationUncovered are the operations owner isolation cannot confine:
// system.df lists every container and volume, and swarm objects
// (services, tasks, secrets, configs, nodes, the swarm) carry no owner.
var isolationUncovered = func() dockerapi.OpSet {
	var s dockerapi.OpSet
	s.Add(dockerapi.OpSystemDF)
	for _, op := range dockerapi.Operations() {
		switch op.Object() {
		case "service", "task", "secret", "config", "node", "swarm":
			s.Add(op)
		}
	}
	return s
}()

// filteredOps take the owner filter: they list, prune or report objects.
var filteredOps = func() dockerapi.OpSet {
	var s dockerapi.OpSet
	addOps(&s, []dockerapi.Operation{
		dockerapi.OpContainerList, dockerapi.OpContainerPrune,
		dockerapi.OpVolumeList, dockerapi.OpVolumePrune,
		dockerapi.OpNetworkList, dockerapi.OpNetworkPrune,
		dockerapi.OpSystemEvents,
	})
	return s
}()

// isolate plans owner isolation for a request.
func (r *role) isolate(id identity.Identity, req *request, plan *OwnerPlan) *violation {
	op := req.Route.Op
	if id.CN == "" {
		return &violation{reason: "owner isolation needs a client certificate with a CN", hint: "issue the client a certificate with a name"}
	}
	if isolationUncovered.Has(op) {
		return &violation{reason: op.String() + " is not confined by owner isolation (it reaches other clients' objects)",
			hint: "give clients that need it a role without owner_isolation"}
	}
	if filteredOps.Has(op) {
		plan.Filter = true
		if v := r.isolateFilters(req, plan); v != nil {
			return v
		}
	}
	switch op {
	case dockerapi.OpContainerCreate, dockerapi.OpVolumeCreate, dockerapi.OpNetworkCreate:
		plan.Label = true
	}
	if v := addNames(req, plan); v != nil {
		return v
	}
	addRefs(req, plan)
	return nil
}

// addNames adds the name check of a create or rename, so that a name
// another client's object holds is answered without its ID, and refuses an
// owner label set on an object the create makes on the side.
func addNames(req *request, plan *OwnerPlan) *violation {
	switch req.Route.Op {
	case dockerapi.OpContainerCreate:
		plan.addName(KindContainer, strings.TrimPrefix(req.Query.Get("name"), "/"), "query name")
		if c, ok := req.Body.(*dockerapi.ContainerCreate); ok {
			if v := nestedOwnerLabel(c); v != nil {
				return v
			}
		}
	case dockerapi.OpContainerRename:
		plan.addName(KindContainer, strings.TrimPrefix(req.Query.Get("name"), "/"), "query name")
	case dockerapi.OpVolumeCreate:
		if v, ok := req.Body.(*volume.CreateRequest); ok {
			plan.addName(KindVolume, v.Name, "Name")
		}
	case dockerapi.OpNetworkCreate:
		if n, ok := req.Body.(*network.CreateRequest); ok {
			plan.addName(KindNetwork, n.Name, "Name")
		}
	}
	return nil
}

// addRefs adds a check for every existing object the request names: the
// one its path names, and those its query or body act through.
func addRefs(req *request, plan *OwnerPlan) {
	op := req.Route.Op
	if kind := targetKind(op); kind != 0 && req.Route.Target != "" {
		plan.add(OwnerCheck{Kind: kind, Ref: req.Route.Target, Field: "path", Pin: true})
	}
	switch op {
	case dockerapi.OpContainerCreate:
		if c, ok := req.Body.(*dockerapi.ContainerCreate); ok {
			isolateCreate(c, plan)
		}
	case dockerapi.OpNetworkCreate:
		if n, ok := req.Body.(*network.CreateRequest); ok && n.ConfigFrom != nil {
			plan.add(OwnerCheck{Kind: KindNetwork, Ref: n.ConfigFrom.Network, Field: "ConfigFrom.Network"})
		}
	case dockerapi.OpContainerCommit:
		plan.add(OwnerCheck{Kind: KindContainer, Ref: req.Query.Get("container"), Field: "query container"})
	case dockerapi.OpNetworkConnect:
		if c, ok := req.Body.(*network.ConnectRequest); ok {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: c.Container, Field: "Container"})
			isolateEndpoint("EndpointConfig.", c.EndpointConfig, plan)
		}
	case dockerapi.OpNetworkDisconnect:
		if c, ok := req.Body.(*network.DisconnectRequest); ok {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: c.Container, Field: "Container"})
		}
	case dockerapi.OpImageBuild:
		if mode, ok := strings.CutPrefix(req.Query.Get("networkmode"), "container:"); ok {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: mode, Field: "query networkmode"})
		}
	}
}

// isolateFilters checks the "filters" value the owner filter is added to,
// and the references a container list can make to other containers.
func (r *role) isolateFilters(req *request, plan *OwnerPlan) *violation {
	f, err := dockerapi.ParseFilters(req.Query.Get("filters"))
	if err != nil {
		return &violation{field: "query filters", reason: "query filters is invalid: " + err.Error(), status: http.StatusBadRequest,
			hint: `use {"name":{"value":true}}`}
	}
	if req.Route.Op != dockerapi.OpContainerList {
		return nil
	}
	// since and before name a container: dockerd answers "No such
	// container" for one that does not exist.
	for _, key := range []string{"since", "before"} {
		if ref := req.Query.Get(key); ref != "" {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: ref, Field: "query " + key})
		}
		for _, ref := range sortedKeys(f[key]) {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: ref, Field: "query filters " + key})
		}
	}
	return nil
}

func targetKind(op dockerapi.Operation) ObjectKind {
	switch op.Object() {
	case "container", "checkpoint":
		return KindContainer
	case "exec":
		return KindExec
	case "volume":
		return KindVolume
	case "network":
		return KindNetwork
	}
	return 0
}

// nestedOwnerLabel denies a create that sets OwnerLabel in a label map
// dockerd applies to another object it creates on the side: the labels of
// a volume mount, which a volume dockerd creates for the mount (an
// anonymous one, or a named one that does not exist yet) carries. The
// owner label there would make the volume another client's (or, for the
// caller's own CN, one the gateway did not create); no client needs to
// write it, so the create is denied rather than the label rewritten,
// which would also hide from the client that its body was changed.
func nestedOwnerLabel(c *dockerapi.ContainerCreate) *violation {
	for _, hc := range []struct {
		prefix string
		hc     *container.HostConfig
	}{{"HostConfig.", c.HostConfig}, {"", c.LegacyHostConfig}} {
		if hc.hc == nil {
			continue
		}
		for i, m := range hc.hc.Mounts {
			if m.VolumeOptions == nil {
				continue
			}
			if _, ok := m.VolumeOptions.Labels[OwnerLabel]; ok {
				field := fmt.Sprintf("%sMounts[%d].VolumeOptions.Labels", hc.prefix, i)
				return &violation{field: field, reason: field + " sets " + OwnerLabel + ", which only the gateway sets"}
			}
		}
	}
	return nil
}

// isolateCreate adds a check for every object a container create names:
// containers whose namespaces, volumes or links it takes, volumes it
// mounts and networks it joins.
func isolateCreate(c *dockerapi.ContainerCreate, plan *OwnerPlan) {
	isolateHostConfig("HostConfig.", c.HostConfig, plan)
	if c.LegacyHostConfig != nil {
		isolateHostConfig("", c.LegacyHostConfig, plan)
	}
	if c.NetworkingConfig != nil {
		for _, name := range sortedKeys(c.NetworkingConfig.EndpointsConfig) {
			isolateNetwork("NetworkingConfig.EndpointsConfig", name, plan)
			prefix := "NetworkingConfig.EndpointsConfig[" + strconv.Quote(name) + "]."
			isolateEndpoint(prefix, c.NetworkingConfig.EndpointsConfig[name], plan)
		}
	}
}

// isolateEndpoint adds the checks of what an endpoint's settings name:
// NetworkID, which dockerd uses in place of the network the request
// names (a key of EndpointsConfig, the path of a connect) when it is set,
// and the containers of Links.
func isolateEndpoint(prefix string, ep *network.EndpointSettings, plan *OwnerPlan) {
	if ep == nil {
		return
	}
	// A predefined network carries no owner, so a NetworkID that names
	// one is denied; dockerd ignores NetworkID only under a predefined
	// network's key, which no client needs to set.
	plan.add(OwnerCheck{Kind: KindNetwork, Ref: ep.NetworkID, Field: prefix + "NetworkID"})
	for i, link := range ep.Links {
		ref, _, _ := strings.Cut(link, ":")
		plan.add(OwnerCheck{Kind: KindContainer, Ref: strings.TrimPrefix(ref, "/"), Field: fmt.Sprintf("%sLinks[%d]", prefix, i)})
	}
}

func isolateHostConfig(prefix string, hc *container.HostConfig, plan *OwnerPlan) {
	isolateNetwork(prefix+"NetworkMode", string(hc.NetworkMode), plan)
	for _, m := range []struct{ field, mode string }{
		{"PidMode", string(hc.PidMode)},
		{"IpcMode", string(hc.IpcMode)},
		{"Cgroup", string(hc.Cgroup)},
	} {
		if ref, ok := strings.CutPrefix(m.mode, "container:"); ok {
			plan.add(OwnerCheck{Kind: KindContainer, Ref: ref, Field: prefix + m.field})
		}
	}
	for i, vf := range hc.VolumesFrom {
		ref, _, _ := strings.Cut(vf, ":")
		plan.add(OwnerCheck{Kind: KindContainer, Ref: ref, Field: fmt.Sprintf("%sVolumesFrom[%d]", prefix, i)})
	}
	for i, link := range hc.Links {
		ref, _, _ := strings.Cut(link, ":")
		plan.add(OwnerCheck{Kind: KindContainer, Ref: strings.TrimPrefix(ref, "/"), Field: fmt.Sprintf("%sLinks[%d]", prefix, i)})
	}
	for i, b := range hc.Binds {
		if spec := parseBind(b); spec.Source != "" && !spec.IsBind() {
			plan.add(OwnerCheck{Kind: KindVolume, Ref: spec.Source, Field: fmt.Sprintf("%sBinds[%d]", prefix, i), CreateMissing: true})
		}
	}
	for i, m := range hc.Mounts {
		if m.Type == "volume" && m.Source != "" {
			plan.add(OwnerCheck{Kind: KindVolume, Ref: m.Source, Field: fmt.Sprintf("%sMounts[%d].Source", prefix, i), CreateMissing: true})
		}
	}
}

// predefinedNetworks are the networks dockerd creates itself; every
// client may use them (they carry no owner).
var predefinedNetworks = map[string]bool{"": true, "default": true, "bridge": true, "none": true, "host": true}

// isolateNetwork adds the check a network mode or joined network needs:
// the container whose network it shares, or a user-defined network.
func isolateNetwork(field, mode string, plan *OwnerPlan) {
	if ref, ok := strings.CutPrefix(mode, "container:"); ok {
		plan.add(OwnerCheck{Kind: KindContainer, Ref: ref, Field: field})
		return
	}
	if !predefinedNetworks[mode] {
		plan.add(OwnerCheck{Kind: KindNetwork, Ref: mode, Field: field})
	}
}

// addName appends the check that the name a create gives its object is
// free (OwnerCheck.Unique); an empty name (dockerd picks one) needs none.
func (p *OwnerPlan) addName(kind ObjectKind, name, field string) {
	if name != "" {
		p.Checks = append(p.Checks, OwnerCheck{Kind: kind, Ref: name, Field: field, Unique: true})
	}
}

// add appends a check unless the same object is checked already.
func (p *OwnerPlan) add(c OwnerCheck) {
	if c.Ref == "" {
		return // nothing named: dockerd refuses the request itself
	}
	for i := range p.Checks {
		if p.Checks[i].Kind == c.Kind && p.Checks[i].Ref == c.Ref && !p.Checks[i].Unique {
			p.Checks[i].Pin = p.Checks[i].Pin || c.Pin
			return
		}
	}
	p.Checks = append(p.Checks, c)
}
