package dockerapi

import (
	"fmt"
	"strings"
)

// routeSpec is one route as moby registers it: a method, a gorilla/mux path
// template and the operation it serves.
type routeSpec struct {
	method   string
	template string
	op       Operation
}

// routeTable lists dockerd's routes in the order the daemon registers them
// (daemon/command: checkpoint, container, image, system, volume, build,
// session, swarm, plugin, distribution, network, debug, grpc routers), each
// router's routes in its own order. gorilla/mux serves the first route whose
// method and path match, so the order decides overlaps: the checkpoint
// router comes first, or container.delete would mask checkpoint.delete.
//
// The templates are moby's, from daemon/server/router/*/*.go; "/images/{name:.*}/json"
// means any run of characters between the prefix and suffix, "{id}" one path
// segment ([^/]+), "{id:.+}" a non-empty run.
var routeTable = []routeSpec{
	// checkpoint
	{"GET", "/containers/{name:.*}/checkpoints", OpCheckpointList},
	{"POST", "/containers/{name:.*}/checkpoints", OpCheckpointCreate},
	{"DELETE", "/containers/{name}/checkpoints/{checkpoint}", OpCheckpointDelete},

	// container
	{"HEAD", "/containers/{name:.*}/archive", OpContainerArchiveHead},
	{"GET", "/containers/json", OpContainerList},
	{"GET", "/containers/{name:.*}/export", OpContainerExport},
	{"GET", "/containers/{name:.*}/changes", OpContainerChanges},
	{"GET", "/containers/{name:.*}/json", OpContainerInspect},
	{"GET", "/containers/{name:.*}/top", OpContainerTop},
	{"GET", "/containers/{name:.*}/logs", OpContainerLogs},
	{"GET", "/containers/{name:.*}/stats", OpContainerStats},
	{"GET", "/containers/{name:.*}/attach/ws", OpContainerAttachWS},
	{"GET", "/exec/{id:.*}/json", OpExecInspect},
	{"GET", "/containers/{name:.*}/archive", OpContainerArchiveGet},
	{"POST", "/containers/create", OpContainerCreate},
	{"POST", "/containers/{name:.*}/kill", OpContainerKill},
	{"POST", "/containers/{name:.*}/pause", OpContainerPause},
	{"POST", "/containers/{name:.*}/unpause", OpContainerUnpause},
	{"POST", "/containers/{name:.*}/restart", OpContainerRestart},
	{"POST", "/containers/{name:.*}/start", OpContainerStart},
	{"POST", "/containers/{name:.*}/stop", OpContainerStop},
	{"POST", "/containers/{name:.*}/wait", OpContainerWait},
	{"POST", "/containers/{name:.*}/resize", OpContainerResize},
	{"POST", "/containers/{name:.*}/attach", OpContainerAttach},
	{"POST", "/containers/{name:.*}/exec", OpContainerExec},
	{"POST", "/exec/{name:.*}/start", OpExecStart},
	{"POST", "/exec/{name:.*}/resize", OpExecResize},
	{"POST", "/containers/{name:.*}/rename", OpContainerRename},
	{"POST", "/containers/{name:.*}/update", OpContainerUpdate},
	{"POST", "/containers/prune", OpContainerPrune},
	{"POST", "/commit", OpContainerCommit},
	{"PUT", "/containers/{name:.*}/archive", OpContainerArchivePut},
	{"DELETE", "/containers/{name:.*}", OpContainerDelete},

	// image
	{"GET", "/images/json", OpImageList},
	{"GET", "/images/search", OpImageSearch},
	{"GET", "/images/get", OpImageSave},
	{"GET", "/images/{name:.*}/get", OpImageSave},
	{"GET", "/images/{name:.*}/history", OpImageHistory},
	{"GET", "/images/{name:.*}/json", OpImageInspect},
	{"GET", "/images/{name:.*}/attestations", OpImageAttestations},
	{"POST", "/images/load", OpImageLoad},
	{"POST", "/images/create", OpImagePull},
	{"POST", "/images/{name:.*}/push", OpImagePush},
	{"POST", "/images/{name:.*}/tag", OpImageTag},
	{"POST", "/images/prune", OpImagePrune},
	{"DELETE", "/images/{name:.*}", OpImageDelete},

	// system
	{"OPTIONS", "/{anyroute:.*}", OpSystemOptions},
	{"GET", "/_ping", OpSystemPing},
	{"HEAD", "/_ping", OpSystemPing},
	{"GET", "/events", OpSystemEvents},
	{"GET", "/info", OpSystemInfo},
	{"GET", "/version", OpSystemVersion},
	{"GET", "/system/df", OpSystemDF},
	{"POST", "/auth", OpSystemAuth},

	// volume
	{"GET", "/volumes", OpVolumeList},
	{"GET", "/volumes/{name:.*}", OpVolumeInspect},
	{"POST", "/volumes/create", OpVolumeCreate},
	{"POST", "/volumes/prune", OpVolumePrune},
	{"PUT", "/volumes/{name:.*}", OpVolumeUpdate},
	{"DELETE", "/volumes/{name:.*}", OpVolumeDelete},

	// build
	{"POST", "/build", OpImageBuild},
	{"POST", "/build/prune", OpBuildPrune},
	{"POST", "/build/cancel", OpBuildCancel},

	// session
	{"POST", "/session", OpSessionStart},

	// swarm
	{"POST", "/swarm/init", OpSwarmInit},
	{"POST", "/swarm/join", OpSwarmJoin},
	{"POST", "/swarm/leave", OpSwarmLeave},
	{"GET", "/swarm", OpSwarmInspect},
	{"GET", "/swarm/unlockkey", OpSwarmUnlockKey},
	{"POST", "/swarm/update", OpSwarmUpdate},
	{"POST", "/swarm/unlock", OpSwarmUnlock},
	{"GET", "/services", OpServiceList},
	{"GET", "/services/{id}", OpServiceInspect},
	{"POST", "/services/create", OpServiceCreate},
	{"POST", "/services/{id}/update", OpServiceUpdate},
	{"DELETE", "/services/{id}", OpServiceDelete},
	{"GET", "/services/{id}/logs", OpServiceLogs},
	{"GET", "/nodes", OpNodeList},
	{"GET", "/nodes/{id}", OpNodeInspect},
	{"DELETE", "/nodes/{id}", OpNodeDelete},
	{"POST", "/nodes/{id}/update", OpNodeUpdate},
	{"GET", "/tasks", OpTaskList},
	{"GET", "/tasks/{id}", OpTaskInspect},
	{"GET", "/tasks/{id}/logs", OpTaskLogs},
	{"GET", "/secrets", OpSecretList},
	{"POST", "/secrets/create", OpSecretCreate},
	{"DELETE", "/secrets/{id}", OpSecretDelete},
	{"GET", "/secrets/{id}", OpSecretInspect},
	{"POST", "/secrets/{id}/update", OpSecretUpdate},
	{"GET", "/configs", OpConfigList},
	{"POST", "/configs/create", OpConfigCreate},
	{"DELETE", "/configs/{id}", OpConfigDelete},
	{"GET", "/configs/{id}", OpConfigInspect},
	{"POST", "/configs/{id}/update", OpConfigUpdate},

	// plugin
	{"GET", "/plugins", OpPluginList},
	{"GET", "/plugins/{name:.*}/json", OpPluginInspect},
	{"GET", "/plugins/privileges", OpPluginPrivileges},
	{"DELETE", "/plugins/{name:.*}", OpPluginDelete},
	{"POST", "/plugins/{name:.*}/enable", OpPluginEnable},
	{"POST", "/plugins/{name:.*}/disable", OpPluginDisable},
	{"POST", "/plugins/pull", OpPluginInstall},
	{"POST", "/plugins/{name:.*}/push", OpPluginPush},
	{"POST", "/plugins/{name:.*}/upgrade", OpPluginUpgrade},
	{"POST", "/plugins/{name:.*}/set", OpPluginSet},
	{"POST", "/plugins/create", OpPluginCreate},

	// distribution
	{"GET", "/distribution/{name:.*}/json", OpDistributionInspect},

	// network
	{"GET", "/networks", OpNetworkList},
	{"GET", "/networks/", OpNetworkList},
	{"GET", "/networks/{id:.+}", OpNetworkInspect},
	{"POST", "/networks/create", OpNetworkCreate},
	{"POST", "/networks/{id:.*}/connect", OpNetworkConnect},
	{"POST", "/networks/{id:.*}/disconnect", OpNetworkDisconnect},
	{"POST", "/networks/prune", OpNetworkPrune},
	{"DELETE", "/networks/{id:.*}", OpNetworkDelete},

	// debug
	{"GET", "/debug/vars", OpDebugVars},
	{"GET", "/debug/pprof/", OpDebugPprof},
	{"GET", "/debug/pprof/cmdline", OpDebugPprof},
	{"GET", "/debug/pprof/profile", OpDebugPprof},
	{"GET", "/debug/pprof/symbol", OpDebugPprof},
	{"GET", "/debug/pprof/trace", OpDebugPprof},
	{"GET", "/debug/pprof/{name}", OpDebugPprof},

	// grpc
	{"POST", "/grpc", OpGRPCServe},
}

// varKind is what a template's variable matches.
type varKind uint8

const (
	varAny      varKind = iota // {x:.*}: any run of characters, possibly empty
	varNonEmpty                // {x:.+}: any non-empty run
	varSegment                 // {x}: one path segment, [^/]+
)

// route is a compiled routeSpec. A template with a ".*" or ".+" variable has
// exactly one variable and matches as prefix + variable + suffix; a template
// with only segment variables (or none) matches segment by segment.
type route struct {
	routeSpec
	prefix, suffix string  // around the single .* or .+ variable
	wide           bool    // the template has a .* or .+ variable
	kind           varKind // of the wide variable
	segments       []string
	nvars          int
	// slashFree: the objects this route names (containers, execs, volumes,
	// networks) never have '/' in their names, so a variable holding one is
	// refused rather than passed to dockerd.
	slashFree bool
}

// methodRoutes are the compiled routes of one method, in registration
// order, and the same routes grouped by their literal first path segment.
// Every template but OPTIONS's "/{anyroute:.*}" starts with a literal
// segment, and a route can only serve paths that start with it, so looking
// in the group keeps the first match of the full list.
type methodRoutes struct {
	all       []route
	bySegment map[string][]route // nil when a template starts with a variable
}

// routesByMethod holds the compiled routes per method.
var routesByMethod = compileRoutes(routeTable)

func compileRoutes(specs []routeSpec) map[string]*methodRoutes {
	m := make(map[string]*methodRoutes)
	for _, spec := range specs {
		r, err := compileRoute(spec)
		if err != nil {
			panic(err) // the table is a constant; a bad entry is a programming error caught by every test
		}
		if m[spec.method] == nil {
			m[spec.method] = &methodRoutes{}
		}
		m[spec.method].all = append(m[spec.method].all, r)
	}
	for _, mr := range m {
		mr.bySegment = groupByFirstSegment(mr.all)
	}
	return m
}

func groupByFirstSegment(routes []route) map[string][]route {
	groups := make(map[string][]route)
	for _, r := range routes {
		seg := firstSegment(r.template)
		if strings.HasPrefix(seg, "{") {
			return nil
		}
		groups[seg] = append(groups[seg], r)
	}
	return groups
}

// firstSegment returns the first segment of a path that starts with '/'.
func firstSegment(p string) string {
	p = p[1:]
	if i := strings.IndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return p
}

// candidates returns, in registration order, the routes of method that
// could serve path.
func candidates(method, path string) []route {
	mr := routesByMethod[method]
	if mr == nil {
		return nil
	}
	if mr.bySegment == nil {
		return mr.all
	}
	return mr.bySegment[firstSegment(path)]
}

func compileRoute(spec routeSpec) (route, error) {
	r := route{routeSpec: spec, slashFree: slashFreeObject(spec.op)}
	segs := strings.Split(spec.template[1:], "/")
	for i, seg := range segs {
		if !strings.HasPrefix(seg, "{") {
			continue
		}
		r.nvars++
		switch {
		case strings.HasSuffix(seg, ":.*}"), strings.HasSuffix(seg, ":.+}"):
			r.wide = true
			r.kind = varAny
			if strings.HasSuffix(seg, ":.+}") {
				r.kind = varNonEmpty
			}
			r.prefix = "/" + strings.Join(segs[:i], "/")
			if i > 0 {
				r.prefix += "/"
			}
			if rest := segs[i+1:]; len(rest) > 0 {
				r.suffix = "/" + strings.Join(rest, "/")
			}
		case !strings.Contains(seg, ":"):
			segs[i] = "{}"
		default:
			return r, fmt.Errorf("dockerapi: unsupported variable %q in %s", seg, spec.template)
		}
	}
	if r.wide && r.nvars != 1 {
		return r, fmt.Errorf("dockerapi: %s mixes a wide variable with others", spec.template)
	}
	if !r.wide {
		r.segments = segs
	}
	return r, nil
}

func slashFreeObject(op Operation) bool {
	switch op.Object() {
	case "container", "exec", "checkpoint", "volume", "network":
		return true
	}
	return false
}

// match reports whether path (decoded, without version prefix) matches the
// route and returns its variables.
func (r *route) match(path string) (v1, v2 string, ok bool) {
	if r.wide {
		if len(path) < len(r.prefix)+len(r.suffix) ||
			!strings.HasPrefix(path, r.prefix) || !strings.HasSuffix(path, r.suffix) {
			return "", "", false
		}
		v := path[len(r.prefix) : len(path)-len(r.suffix)]
		if v == "" && r.kind == varNonEmpty {
			return "", "", false
		}
		return v, "", true
	}
	return r.matchSegments(path)
}

// matchSegments matches a template made of literal segments and {x}
// segments; it walks path without splitting it.
func (r *route) matchSegments(path string) (v1, v2 string, ok bool) {
	rest := path[1:]
	nvar := 0
	for i, seg := range r.segments {
		var part string
		if i == len(r.segments)-1 {
			part, rest = rest, ""
		} else {
			j := strings.IndexByte(rest, '/')
			if j < 0 {
				return "", "", false
			}
			part, rest = rest[:j], rest[j+1:]
		}
		if seg != "{}" {
			if part != seg {
				return "", "", false
			}
			continue
		}
		if part == "" || strings.IndexByte(part, '/') >= 0 {
			return "", "", false
		}
		if nvar == 0 {
			v1 = part
		} else {
			v2 = part
		}
		nvar++
	}
	return v1, v2, true
}
