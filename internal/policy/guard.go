package policy

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/volume"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// guard runs the guardrails of the request's operation, then the checks
// that span operations: writing a tag and the images a request names.
func (r *role) guard(req *request) *violation {
	if v := r.guardOp(req); v != nil {
		return v
	}
	if v := r.guardTagWrites(req); v != nil {
		return v
	}
	return r.guardImages(req)
}

func (r *role) guardOp(req *request) *violation {
	switch op := req.Route.Op; op {
	case dockerapi.OpContainerCreate:
		if c, ok := req.Body.(*dockerapi.ContainerCreate); ok && c.Config != nil && c.HostConfig != nil {
			return r.guardCreate(c)
		}
	case dockerapi.OpContainerUpdate:
		if u, ok := req.Body.(*container.UpdateConfig); ok && u != nil {
			return r.guardResources("", &u.Resources)
		}
	case dockerapi.OpContainerExec:
		if e, ok := req.Body.(*container.ExecCreateRequest); ok && e != nil {
			return r.guardExec(e)
		}
	case dockerapi.OpVolumeCreate:
		if v, ok := req.Body.(*volume.CreateRequest); ok && v != nil {
			return r.guardVolumeCreate(v)
		}
	case dockerapi.OpServiceCreate, dockerapi.OpServiceUpdate:
		if s, ok := req.Body.(*swarm.ServiceSpec); ok && s != nil {
			return r.guardService(s)
		}
	case dockerapi.OpNetworkCreate:
		if n, ok := req.Body.(*network.CreateRequest); ok && n != nil {
			return nil
		}
	case dockerapi.OpNetworkConnect:
		if n, ok := req.Body.(*network.ConnectRequest); ok && n != nil {
			return r.guardEndpoint("EndpointConfig.", n.EndpointConfig)
		}
	case dockerapi.OpNetworkDisconnect:
		if n, ok := req.Body.(*network.DisconnectRequest); ok && n != nil {
			return nil
		}
	case dockerapi.OpImageBuild:
		return r.guardBuild(dockerapi.ParseBuildQuery(req.Query))
	case dockerapi.OpGRPCServe:
		// Allowed; the gateway reads its Solve requests (JudgeSolve)
		// unless builds.buildkit_grpc says not to.
		return nil
	default:
		return nil
	}
	return errNoBody
}

// errNoBody denies an operation whose decoded body the gateway did not
// pass: a programming error, which must not let the request through.
var errNoBody = &violation{reason: "the request body was not inspected", status: http.StatusInternalServerError,
	hint: "the gateway must pass the decoded body of this operation (needsBody)"}

// guardCreate checks a container create body: both host configurations
// an engine may apply (the HostConfig object and top-level legacy
// fields) and the networks it joins.
func (r *role) guardCreate(c *dockerapi.ContainerCreate) *violation {
	if v := r.guardHostConfig("HostConfig.", c.HostConfig); v != nil {
		return v
	}
	if c.LegacyHostConfig != nil {
		if v := r.guardHostConfig("", c.LegacyHostConfig); v != nil {
			return v
		}
	}
	if c.NetworkingConfig != nil {
		for _, name := range sortedKeys(c.NetworkingConfig.EndpointsConfig) {
			if v := r.guardNetworkMode(endpointField, name); v != nil {
				v.field = "NetworkingConfig.EndpointsConfig[" + strconv.Quote(name) + "]"
				v.reason = v.field + strings.TrimPrefix(v.reason, endpointField)
				return v
			}
			if v := r.guardEndpoint("NetworkingConfig.EndpointsConfig["+strconv.Quote(name)+"].", c.NetworkingConfig.EndpointsConfig[name]); v != nil {
				return v
			}
		}
	}
	return nil
}

// guardEndpoint checks an endpoint's NetworkID, which dockerd joins in
// place of the network the request names (an EndpointsConfig key, the
// path of a connect): as a network mode.
func (r *role) guardEndpoint(prefix string, ep *network.EndpointSettings) *violation {
	if ep == nil || ep.NetworkID == "" {
		return nil
	}
	return r.guardNetworkMode(prefix+"NetworkID", ep.NetworkID)
}

// endpointField names a network a create joins until a check fails.
const endpointField = "NetworkingConfig.EndpointsConfig"

// guardHostConfig checks one host configuration; prefix is "HostConfig."
// or "" for the legacy top-level fields.
func (r *role) guardHostConfig(prefix string, hc *container.HostConfig) *violation {
	if v := r.guardPrivileged(prefix, hc); v != nil {
		return v
	}
	if v := r.guardCapabilities(prefix, hc); v != nil {
		return v
	}
	if v := r.guardMountsOf(prefix, hc); v != nil {
		return v
	}
	if v := r.guardNamespaces(prefix, hc); v != nil {
		return v
	}
	if v := r.guardConfinement(prefix, hc); v != nil {
		return v
	}
	if v := r.guardSysctls(prefix, hc); v != nil {
		return v
	}
	if v := r.guardRuntime(prefix, hc); v != nil {
		return v
	}
	if v := r.guardAnnotations(prefix, hc); v != nil {
		return v
	}
	return r.guardResources(prefix, &hc.Resources)
}

func (r *role) guardPrivileged(prefix string, hc *container.HostConfig) *violation {
	if hc.Privileged && !r.containers.privileged {
		return notAllowed(prefix+"Privileged", knobPrivileged)
	}
	return nil
}

func (r *role) guardCapabilities(prefix string, hc *container.HostConfig) *violation {
	return r.checkCapAdd(prefix+"CapAdd", hc.CapAdd)
}

// checkCapAdd checks capabilities to add, read as dockerd reads them.
func (r *role) checkCapAdd(field string, caps []string) *violation {
	if r.containers.allCaps {
		return nil
	}
	for _, c := range caps {
		canon, _ := dockerapi.NormalizeCapability(c)
		if r.containers.caps[canon] {
			continue
		}
		name := strings.TrimPrefix(canon, "CAP_")
		added := quote(c)
		if c != canon {
			added += " (" + canon + ")" // the spelling dockerd reads it as
		}
		return &violation{
			field:  field,
			reason: fmt.Sprintf("%s adds %s, which is not allowed", field, added),
			knob:   knobCapabilities, item: name,
		}
	}
	return nil
}

// guardResources checks the resources of a create or an update.
func (r *role) guardResources(prefix string, res *container.Resources) *violation {
	k := &r.containers
	switch {
	case len(res.Devices) > 0 && !k.devices:
		return notAllowed(prefix+"Devices", knobDevices)
	case len(res.DeviceCgroupRules) > 0 && !k.devices:
		return notAllowed(prefix+"DeviceCgroupRules", knobDevices)
	case len(res.DeviceRequests) > 0 && !k.deviceRequests:
		return notAllowed(prefix+"DeviceRequests", knobDeviceRequests)
	case res.CgroupParent != "" && !k.cgroupParent:
		return notAllowed(prefix+"CgroupParent", knobCgroupParent)
	}
	return nil
}

func (r *role) guardMountsOf(prefix string, hc *container.HostConfig) *violation {
	if v := r.guardBinds(prefix, hc.Binds); v != nil {
		return v
	}
	if v := r.guardMounts(prefix+"Mounts", hc.Mounts); v != nil {
		return v
	}
	if len(hc.VolumesFrom) > 0 && !r.containers.volumesFrom {
		return notAllowed(prefix+"VolumesFrom", knobVolumesFrom)
	}
	return nil
}

// guardNamespaces checks the namespace modes: "host" needs the namespace
// in host_namespaces, "container:<name>" needs container_namespaces or
// owner isolation (which then checks that the caller owns <name>).
func (r *role) guardNamespaces(prefix string, hc *container.HostConfig) *violation {
	if v := r.guardNamespace(prefix, "NetworkMode", string(hc.NetworkMode), "network"); v != nil {
		return v
	}
	if v := r.guardNamespace(prefix, "PidMode", string(hc.PidMode), "pid"); v != nil {
		return v
	}
	if v := r.guardNamespace(prefix, "IpcMode", string(hc.IpcMode), "ipc"); v != nil {
		return v
	}
	if v := r.guardNamespace(prefix, "UTSMode", string(hc.UTSMode), "uts"); v != nil {
		return v
	}
	if v := r.guardNamespace(prefix, "UsernsMode", string(hc.UsernsMode), "userns"); v != nil {
		return v
	}
	if v := r.guardNamespace(prefix, "CgroupnsMode", string(hc.CgroupnsMode), "cgroupns"); v != nil {
		return v
	}
	return r.guardNamespace(prefix, "Cgroup", string(hc.Cgroup), "")
}

// guardNetworkMode checks a network mode or a network a container joins.
func (r *role) guardNetworkMode(field, mode string) *violation {
	return r.guardNamespace(field, "", mode, "network")
}

// guardNamespace checks one namespace mode. The field is prefix+name,
// joined only when the check fails, so that an allowed create does not
// build field names.
func (r *role) guardNamespace(prefix, name, mode, ns string) *violation {
	switch {
	case mode == "":
		return nil
	case mode == "host" && ns != "" && !r.containers.hostNS[ns]:
		field := prefix + name
		return &violation{field: field, reason: fmt.Sprintf("%s is host (the host's %s namespace), which is not allowed", field, ns),
			knob: knobHostNamespaces, item: ns}
	case strings.HasPrefix(mode, "container:") && !r.containers.containerNS && !r.isolation:
		field := prefix + name
		return &violation{field: field, reason: fmt.Sprintf("%s joins another container's namespace (%s), which is not allowed", field, quote(mode)),
			knob: knobContainerNamespaces}
	}
	return nil
}

// guardConfinement checks what weakens seccomp, AppArmor, SELinux and the
// masked /proc and /sys paths.
func (r *role) guardConfinement(prefix string, hc *container.HostConfig) *violation {
	if r.containers.unconfined {
		return nil
	}
	for _, opt := range hc.SecurityOpt {
		if !harmlessSecurityOpt(opt) {
			field := prefix + "SecurityOpt"
			return &violation{field: field, reason: fmt.Sprintf("%s has %s, which weakens confinement", field, quote(opt)), knob: knobUnconfined}
		}
	}
	if hc.MaskedPaths != nil {
		field := prefix + "MaskedPaths"
		return &violation{field: field, reason: field + " replaces the paths dockerd masks in /proc and /sys", knob: knobUnconfined}
	}
	if hc.ReadonlyPaths != nil {
		field := prefix + "ReadonlyPaths"
		return &violation{field: field, reason: field + " replaces the paths dockerd makes read-only in /proc and /sys", knob: knobUnconfined}
	}
	return nil
}

// harmlessSecurityOpt reports whether a SecurityOpt entry only tightens
// confinement: no-new-privileges, alone or set to true. Everything else
// (seccomp, apparmor, label in its "=" and ":" spellings, the bare
// "disable" dockerd reads as label=disable, systempaths,
// writable-cgroups, options a newer dockerd may add) is for the role's
// unconfined setting to allow.
func harmlessSecurityOpt(opt string) bool {
	if opt == "no-new-privileges" {
		return true
	}
	// dockerd splits at '=' when there is one, else at ':'.
	sep := "="
	if !strings.Contains(opt, "=") {
		sep = ":"
	}
	k, v, ok := strings.Cut(opt, sep)
	if !ok || k != "no-new-privileges" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

func (r *role) guardSysctls(prefix string, hc *container.HostConfig) *violation {
	return r.checkSysctls(prefix+"Sysctls", hc.Sysctls)
}

func (r *role) checkSysctls(field string, sysctls map[string]string) *violation {
	if r.containers.allSysctls {
		return nil
	}
	if len(sysctls) == 0 {
		return nil
	}
	for _, name := range sortedKeys(sysctls) {
		if !r.containers.sysctls[sysctlName(name)] {
			return &violation{field: field, reason: fmt.Sprintf("%s sets %s, which is not allowed", field, quote(name)),
				knob: knobSysctls, item: name}
		}
	}
	return nil
}

func (r *role) guardRuntime(prefix string, hc *container.HostConfig) *violation {
	if hc.Runtime == "" || hc.Runtime == "runc" || r.containers.runtimes[hc.Runtime] {
		return nil
	}
	field := prefix + "Runtime"
	return &violation{field: field, reason: fmt.Sprintf("%s is %s, not runc, which is not allowed", field, quote(hc.Runtime)),
		knob: knobRuntimes, item: hc.Runtime}
}

func (r *role) guardAnnotations(prefix string, hc *container.HostConfig) *violation {
	if len(hc.Annotations) > 0 && !r.containers.annotations {
		return notAllowed(prefix+"Annotations", knobAnnotations)
	}
	return nil
}

func (r *role) guardExec(e *container.ExecCreateRequest) *violation {
	if e.Privileged && !r.containers.privileged {
		return notAllowed("Privileged", knobPrivileged)
	}
	return nil
}

func (r *role) guardVolumeCreate(v *volume.CreateRequest) *violation {
	if isLocalDriver(v.Driver) && !r.containers.volumeDriverOptions {
		if opt := bindOption(v.DriverOpts); opt != "" {
			field := "DriverOpts." + opt
			return &violation{field: field, reason: field + localOptionReason, knob: knobVolumeDriverOptions}
		}
	}
	return nil
}

// guardBuild checks the POST /build parameters.
func (r *role) guardBuild(q dockerapi.BuildQuery) *violation {
	switch mode := q.NetworkMode; {
	case mode == "host" && !r.builds.HostNetwork:
		return &violation{field: "query networkmode", reason: "query networkmode=host (RUN steps in the host's network) is not allowed", knob: knobBuildHostNetwork}
	case strings.HasPrefix(mode, "container:") && !r.containers.containerNS && !r.isolation:
		return &violation{field: "query networkmode", reason: fmt.Sprintf("query networkmode=%s joins another container's network, which is not allowed", mode), knob: knobContainerNamespaces}
	}
	if q.Remote != "" && q.Remote != clientSessionRemote && !r.builds.RemoteContext && !r.builds.RemoteSources {
		return &violation{field: "query remote", reason: "query remote (a build context dockerd fetches itself) is not allowed", knob: knobBuildRemoteContext}
	}
	if q.CgroupParent != "" && !r.containers.cgroupParent {
		return &violation{field: "query cgroupparent", reason: "query cgroupparent is not allowed", knob: knobCgroupParent}
	}
	if len(q.SecurityOpt) > 0 && !r.containers.unconfined {
		return &violation{field: "query securityopt", reason: "query securityopt is not allowed", knob: knobUnconfined}
	}
	return nil
}

// clientSessionRemote is the "remote" value with which BuildKit builds
// say the context comes through the client's session, not from a URL
// (moby's remotecontext.ClientSessionRemote).
const clientSessionRemote = "client-session"

func notAllowed(field, knob string) *violation {
	return &violation{field: field, reason: field + " is not allowed", knob: knob}
}

// maxQuoted bounds how much of a client's value a message repeats (a
// seccomp profile in SecurityOpt can be kilobytes).
const maxQuoted = 64

func quote(s string) string {
	if len(s) > maxQuoted {
		s = s[:maxQuoted] + "..."
	}
	return strconv.Quote(s)
}
