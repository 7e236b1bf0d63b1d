package policy

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// SolveMethod is the gRPC method of BuildKit's control API that starts a
// build: its request names the entitlements, exporters and caches the
// build may use. JudgeSolve decides it.
const SolveMethod = "/moby.buildkit.v1.Control/Solve"

// FrontendSolveMethod is the gRPC method with which a frontend the client
// runs (buildx runs the Dockerfile frontend's calls from the client) asks
// the daemon to solve: frontend options, cache imports and a build graph
// of its own. JudgeFrontendSolve decides it.
const FrontendSolveMethod = "/moby.buildkit.v1.frontend.LLBBridge/Solve"

// SolveVerdict is JudgeSolve's answer for one Solve request.
type SolveVerdict struct {
	// Effect: Deny (answer the call with Message), Allow or WouldDeny
	// (forward it).
	Effect Effect
	// Rule, Reason, Field and Fix say why, as Verdict does.
	Rule, Reason, Field, Fix string
	// Message is the sentence a denied (or would-be denied) call is
	// answered or logged with; empty when allowed.
	Message string
}

// Forward reports whether the gateway forwards the Solve request.
func (v *SolveVerdict) Forward() bool { return v.Effect != Deny }

// JudgeSolve decides one Solve request that a client of the given role
// sends over BuildKit's gRPC API (grpc.serve), which the gateway reads
// when Verdict.InspectBuildKit says so. A build may ask for nothing that
// escapes what a classic build may do: the network.host and
// security.insecure entitlements (RUN steps in the host's network, or
// privileged), a network mode or cgroup parent its role does not allow,
// a push its role could not do with image.push, or a cache backend that
// falls back on the daemon host's credentials. Exporters and caches of
// type local write to and read from the client, through its session,
// not the daemon's host. Like Evaluate it never fails: what it does not
// know is denied.
func (p *Policy) JudgeSolve(id identity.Identity, roleName string, req *controlapi.SolveRequest) SolveVerdict {
	return p.judge(id, roleName, req == nil, func(r *role) *violation { return r.judgeSolve(req) })
}

// JudgeFrontendSolve decides one LLBBridge Solve request as JudgeSolve
// decides a Solve request: its frontend options, cache imports and build
// graph. Entitlements are not asked for here: the build's Solve request
// bounds them.
func (p *Policy) JudgeFrontendSolve(id identity.Identity, roleName string, req *gatewaypb.SolveRequest) SolveVerdict {
	return p.judge(id, roleName, req == nil, func(r *role) *violation { return r.judgeFrontendSolve(req) })
}

func (p *Policy) judge(id identity.Identity, roleName string, missing bool, check func(*role) *violation) SolveVerdict {
	d := decision{Op: dockerapi.OpGRPCServe, CN: id.CN, Role: roleName}
	r := p.roles[roleName]
	switch {
	case r == nil:
		d.Reason = "no role: no clients: entry matches this identity"
	case missing:
		r.deny(&d, &violation{reason: "the Solve request was not read"})
	default:
		if v := check(r); v != nil {
			r.deny(&d, v)
		} else {
			d.Effect = Allow
			d.Rule = r.rules[dockerapi.OpGRPCServe]
		}
	}
	return SolveVerdict{Effect: d.Effect, Rule: d.Rule, Reason: d.Reason, Field: d.Field, Fix: d.Fix, Message: d.message()}
}

func (r *role) judgeFrontendSolve(req *gatewaypb.SolveRequest) *violation {
	if r.unrestricted {
		return nil
	}
	if v := r.guardFrontendAttrs(req.FrontendOpt); v != nil {
		return v
	}
	for i, e := range req.CacheImports {
		if v := r.guardCacheBackend(fmt.Sprintf("CacheImports[%d]", i), e.GetType()); v != nil {
			return v
		}
	}
	return r.guardDefinitions(req.Definition, req.FrontendInputs)
}

// guardDefinitions checks the build graphs a request carries: each exec
// step's network mode and cgroup parent, as the frontend options say them
// for a whole build.
func (r *role) guardDefinitions(def *pb.Definition, inputs map[string]*pb.Definition) *violation {
	if v := r.guardDefinition("Definition", def); v != nil {
		return v
	}
	if _, ok := inputs[SessionDockerfileDir]; ok && r.inspectsSession() {
		return &violation{field: "FrontendInputs[" + quote(SessionDockerfileDir) + "]", knob: knobBuildRemoteSources,
			reason: "FrontendInputs[" + quote(SessionDockerfileDir) + "] gives the Dockerfile frontend a Dockerfile that does not come through the session the gateway reads, so what it fetches cannot be checked"}
	}
	for name, d := range inputs {
		if v := r.guardDefinition("FrontendInputs["+quote(name)+"]", d); v != nil {
			return v
		}
	}
	return nil
}

func (r *role) guardDefinition(field string, def *pb.Definition) *violation {
	for i, b := range def.GetDef() {
		var op pb.Op
		if err := proto.Unmarshal(b, &op); err != nil {
			return &violation{field: field, reason: fmt.Sprintf("%s step %d cannot be read: %v", field, i, err), status: http.StatusBadRequest}
		}
		step := fmt.Sprintf("%s step %d", field, i)
		if src := op.GetSource(); src != nil && !localSource(src.GetIdentifier()) && !r.builds.RemoteSources {
			return &violation{field: step, knob: knobBuildRemoteSources,
				reason: fmt.Sprintf("%s fetches %s, which BuildKit does from the host's network whatever the network mode", step, quote(src.GetIdentifier()))}
		}
		exec := op.GetExec()
		if exec == nil {
			continue
		}
		if exec.GetNetwork() == pb.NetMode_HOST && !r.builds.HostNetwork {
			return &violation{field: step, reason: step + " runs in the host's network, which is not allowed", knob: knobBuildHostNetwork}
		}
		if exec.GetMeta().GetCgroupParent() != "" && !r.containers.cgroupParent {
			return notAllowed(step+" cgroup parent", knobCgroupParent)
		}
	}
	return nil
}

// inspectsBuildKit reports whether the gateway must read the Solve
// requests of a role's BuildKit connections: every role but the built-in
// admin and one with builds.buildkit_grpc.
func (r *role) inspectsBuildKit() bool {
	return !r.unrestricted && !r.builds.BuildkitGRPC
}

func (r *role) judgeSolve(req *controlapi.SolveRequest) *violation {
	if r.unrestricted {
		return nil
	}
	for _, e := range req.Entitlements {
		if v := r.guardEntitlement(e); v != nil {
			return v
		}
	}
	if v := r.guardFrontendAttrs(req.FrontendAttrs); v != nil {
		return v
	}
	if req.ExporterDeprecated != "" {
		if v := r.guardExporter("ExporterDeprecated", req.ExporterDeprecated, req.ExporterAttrsDeprecated); v != nil {
			return v
		}
	}
	for i, e := range req.Exporters {
		if v := r.guardExporter(fmt.Sprintf("Exporters[%d]", i), e.GetType(), e.GetAttrs()); v != nil {
			return v
		}
	}
	if v := r.guardCache(req.Cache); v != nil {
		return v
	}
	return r.guardDefinitions(req.Definition, req.FrontendInputs)
}

// guardEntitlement checks one entitlement a build asks for: "network.host",
// "security.insecure", or "device" with an optional "=name".
func (r *role) guardEntitlement(e string) *violation {
	name, _, _ := strings.Cut(e, "=")
	if !slices.Contains(config.EntitlementNames, name) {
		return &violation{field: "Entitlements", reason: fmt.Sprintf("the build asks for entitlement %s, which dockgate does not know", quote(e)),
			hint: "only " + strings.Join(config.EntitlementNames, ", ") + " can be allowed"}
	}
	if slices.Contains(r.builds.Entitlements, name) {
		return nil
	}
	return &violation{field: "Entitlements", reason: fmt.Sprintf("the build asks for entitlement %s (%s), which is not allowed", name, entitlementMeaning[name]),
		knob: knobBuildEntitlements, item: name}
}

var entitlementMeaning = map[string]string{
	config.EntitlementNetworkHost:      "RUN steps in the host's network",
	config.EntitlementSecurityInsecure: "privileged RUN steps, root on the host",
	config.EntitlementDevice:           "host devices in RUN steps",
}

// guardFrontendAttrs checks the options a build gives its frontend that
// the classic builder takes as query parameters: the network mode of RUN
// steps and their cgroup parent.
func (r *role) guardFrontendAttrs(attrs map[string]string) *violation {
	switch mode := attrs["force-network-mode"]; mode {
	case "", "none", "sandbox", "default":
	case "host":
		if !r.builds.HostNetwork {
			return &violation{field: "FrontendAttrs force-network-mode", reason: "FrontendAttrs force-network-mode=host (RUN steps in the host's network) is not allowed", knob: knobBuildHostNetwork}
		}
	default:
		return &violation{field: "FrontendAttrs force-network-mode", reason: fmt.Sprintf("FrontendAttrs force-network-mode=%s is a network mode dockgate does not know", quote(mode)),
			hint: "use none, sandbox or host"}
	}
	if attrs["cgroup-parent"] != "" && !r.containers.cgroupParent {
		return notAllowed("FrontendAttrs cgroup-parent", knobCgroupParent)
	}
	if r.builds.RemoteSources {
		return nil
	}
	// The gateway reads the Dockerfile in the session directory the
	// frontend fetches it from by default; another one would pass unread.
	if k, ok := attrs[frontendKeyDockerfileDir]; ok && k != SessionDockerfileDir && r.inspectsSession() {
		return &violation{field: "FrontendAttrs " + frontendKeyDockerfileDir, knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("FrontendAttrs %s=%s takes the Dockerfile from a session directory the gateway does not read, so what it fetches cannot be checked", frontendKeyDockerfileDir, quote(k))}
	}
	if sid, ok := attrs["local-sessionid:"+SessionDockerfileDir]; ok && r.inspectsSession() {
		return &violation{field: "FrontendAttrs local-sessionid:" + SessionDockerfileDir, knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("FrontendAttrs local-sessionid:%s=%s takes the Dockerfile from another session, so what it fetches cannot be checked", SessionDockerfileDir, quote(sid))}
	}
	if syntax := attrs["build-arg:"+buildArgSyntax]; syntax != "" {
		return &violation{field: "FrontendAttrs build-arg:" + buildArgSyntax, knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("the frontend image %s (BUILDKIT_SYNTAX) is pulled and run by BuildKit, and fetches what it likes", quote(syntax))}
	}
	if c := attrs["context"]; c != "" && !r.builds.RemoteContext {
		return &violation{field: "FrontendAttrs context", knob: knobBuildRemoteContext,
			reason: fmt.Sprintf("FrontendAttrs context=%s is a build context BuildKit fetches itself, from the host's network", quote(c))}
	}
	for _, k := range sortedKeys(attrs) {
		if strings.HasPrefix(k, "context:") && !localContext(attrs[k]) {
			return &violation{field: "FrontendAttrs " + k, knob: knobBuildRemoteSources,
				reason: fmt.Sprintf("FrontendAttrs %s=%s is a named context BuildKit may fetch from the host's network", k, quote(attrs[k]))}
		}
	}
	return nil
}

// localContext reports whether a named context's value is one BuildKit
// does not fetch over the network itself: the client's directory (local:),
// another input (input:), an image (docker-image://, pulled as FROM pulls)
// or the client's OCI layout (oci-layout://).
func localContext(v string) bool {
	for _, p := range []string{"local:", "input:", "docker-image://", "oci-layout://"} {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

// localSource reports whether a build graph's source is one BuildKit does
// not fetch over the network itself (as localContext): HTTP and Git
// sources are not.
func localSource(id string) bool {
	for _, p := range []string{"local://", "docker-image://", "oci-layout://"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

// frontendKeyDockerfileDir is the Dockerfile frontend's option naming the
// session directory the Dockerfile comes from (SessionDockerfileDir
// unless set).
const frontendKeyDockerfileDir = "dockerfilekey"

// Exporter types dockerd's BuildKit knows. Those that write files (local,
// tar, oci, docker) send them to the client through its session; image
// and moby store the image in the daemon (and push it if asked).
var (
	imageExporters = []string{"image", "moby"}
	otherExporters = []string{"local", "tar", "oci", "docker", "cacheonly"}
)

// guardExporter checks one exporter: a push needs what image.push needs.
func (r *role) guardExporter(field, typ string, attrs map[string]string) *violation {
	switch {
	case slices.Contains(otherExporters, typ):
		return nil
	case !slices.Contains(imageExporters, typ):
		return &violation{field: field, reason: fmt.Sprintf("%s is an exporter of type %s, which dockgate does not know", field, quote(typ)),
			hint: "use type image, local, tar, oci or docker"}
	}
	if pushes(attrs) && !r.allow.Has(dockerapi.OpImagePush) {
		return &violation{field: field + " push", reason: field + " pushes the image, and image.push is not allowed", knob: knobAllow, item: dockerapi.OpImagePush.String()}
	}
	return nil
}

// pushes reports whether image exporter attributes ask for a push: BuildKit
// reads an empty "push" as true, and fails on a value that is no boolean.
func pushes(attrs map[string]string) bool {
	v, ok := attrs["push"]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return v == "" || err != nil || b
}

// safeCacheBackends need no setting: registry and gha use credentials the
// client sends, inline rides in the image, local is the client's
// directory, reached through its session.
var safeCacheBackends = []string{"registry", "inline", "local", "gha"}

// guardCache checks the cache backends a build imports from and exports to.
func (r *role) guardCache(c *controlapi.CacheOptions) *violation {
	if c == nil {
		return nil
	}
	for i, e := range c.GetExports() {
		if v := r.guardCacheBackend(fmt.Sprintf("Cache.Exports[%d]", i), e.GetType()); v != nil {
			return v
		}
	}
	for i, e := range c.GetImports() {
		if v := r.guardCacheBackend(fmt.Sprintf("Cache.Imports[%d]", i), e.GetType()); v != nil {
			return v
		}
	}
	return nil // the deprecated ref fields are registry caches
}

func (r *role) guardCacheBackend(field, typ string) *violation {
	switch {
	case slices.Contains(safeCacheBackends, typ), slices.Contains(r.builds.CacheBackends, typ):
		return nil
	case slices.Contains(config.CacheBackendNames, typ):
		return &violation{field: field, reason: fmt.Sprintf("%s is a %s cache, which uses the daemon host's credentials unless the build names its own, and is not allowed", field, typ),
			knob: knobBuildCacheBackends, item: typ}
	}
	return &violation{field: field, reason: fmt.Sprintf("%s is a cache of type %s, which dockgate does not know", field, quote(typ)),
		hint: "use type registry, inline, local or gha"}
}
