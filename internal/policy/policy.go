package policy

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// Policy is the compiled roles of one config. It is immutable and safe
// for concurrent use; a reload compiles a new one.
type Policy struct {
	roles   map[string]*role
	clients []config.ClientRule
	// host is this gateway's name and labels, which a rule's hosts:
	// selectors must match for it to apply.
	host config.Host
	// maxJSONBody bounds a JSON request body (limits.max_json_body).
	maxJSONBody int
	// sockets are the Docker sockets no container a role reaches may
	// mount (socketPaths).
	sockets []string
	// unmatchedLimits are the client limits of a client no clients: entry
	// matches (it is refused, but holds a connection while it is told).
	unmatchedLimits Limits
	// maxBuildPrefix bounds what is held of a build context before its
	// Dockerfile (limits.max_build_prefix).
	maxBuildPrefix int
}

// Compile compiles the built-in roles and the roles the config declares.
// It reports every problem as a *config.FieldError (joined); a config that
// passed Validate compiles.
func Compile(cfg *config.Config) (*Policy, error) {
	p := &Policy{
		roles:          make(map[string]*role, len(config.BuiltinRoles)+len(cfg.Roles)),
		clients:        slices.Clone(cfg.Clients),
		host:           cfg.Host,
		maxJSONBody:    cfg.Limits.MaxJSONBody,
		maxBuildPrefix: cfg.Limits.MaxBuildPrefix,
		sockets:        socketPaths(cfg),
	}
	if p.maxJSONBody <= 0 {
		p.maxJSONBody = dockerapi.DefaultMaxBody // a config that skipped Default
	}
	p.unmatchedLimits = limitsOf(cfg, "")
	if p.maxBuildPrefix <= 0 {
		p.maxBuildPrefix = config.DefaultBuildPrefix
	}
	for _, name := range config.BuiltinRoles {
		p.roles[name] = compileBuiltin(name)
		p.roles[name].limits = limitsOf(cfg, name)
	}
	var errs []error
	for _, name := range sortedKeys(cfg.Roles) {
		if config.IsBuiltinRole(name) {
			errs = append(errs, &config.FieldError{Field: "roles." + name, Msg: "is a built-in role and cannot be redefined"})
			continue
		}
		spec := cfg.Roles[name]
		r, err := compileRole(name, &spec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.limits = limitsOf(cfg, name)
		p.roles[name] = r
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Roles lists the role names the policy knows, sorted.
func (p *Policy) Roles() []string { return sortedKeys(p.roles) }

// Allowed returns the operations a role's allow list matches (before
// guardrails and owner isolation), in table order.
func (p *Policy) Allowed(roleName string) []dockerapi.Operation {
	r := p.roles[roleName]
	if r == nil {
		return nil
	}
	return r.allow.Ops()
}

// request is what decide judges.
type request struct {
	// Route is the request as dockerd routes it: dockerapi.Classify, then
	// dockerapi.Refine with the query.
	Route dockerapi.Route
	// Query is the parsed query (dockerapi.ParseQuery); nil is none.
	Query url.Values
	// Body is the decoded JSON body (dockerapi.DecodeBody) of an operation
	// for which needsBody is true; nil otherwise. decide denies such an
	// operation without one rather than guess.
	Body any
	// Build is what the body of an image.build says (readBuild); nil
	// when it was not read.
	Build *buildInput
}

// Effect is what the gateway does with a request.
type Effect uint8

const (
	// Deny: answer decision.Status with decision.message. The zero value,
	// so that a forgotten decision never lets anything through.
	Deny Effect = iota
	// Allow: forward the request.
	Allow
	// WouldDeny: a role in audit mode would deny it; forward it anyway and
	// record would_deny.
	WouldDeny
)

// String returns "deny", "allow" or "would_deny", as the audit log
// writes it.
func (e Effect) String() string {
	switch e {
	case Allow:
		return "allow"
	case WouldDeny:
		return "would_deny"
	}
	return "deny"
}

// decision is decide's answer.
type decision struct {
	Effect Effect
	// Op is the operation decided on.
	Op dockerapi.Operation
	// CN and Role are who asked, for messages and the owner label.
	CN, Role string
	// Rule is the role entry that decided: "roles.ci.allow[0] container.*"
	// for an allowed request, the setting that would allow a denied one
	// ("roles.ci.containers.privileged").
	Rule string
	// Reason says why a request is denied: "HostConfig.Privileged is not
	// allowed". Empty when allowed.
	Reason string
	// Field is the body or query field that was denied
	// ("HostConfig.Privileged", "query networkmode"); empty when the
	// operation itself is.
	Field string
	// Fix says how to allow it: "allow it with
	// roles.ci.containers.privileged: true". Empty when no setting can.
	Fix string
	// Status is the HTTP status of a denial: 403, or 400 for a request the
	// policy cannot judge (an invalid filters value, an unknown mount
	// type), 500 when the gateway did not pass the body needsBody asks for.
	// 0 when allowed.
	Status int
	// Owner is what owner isolation asks of the gateway; zero for roles
	// without it.
	Owner OwnerPlan
	// Audit: the role is in audit mode, so denials come back as WouldDeny
	// (denyOwnership follows it too).
	Audit bool

	// notFound is dockerd's message for a failed ownership check: its
	// not-found message, or its conflict message for a create whose name
	// is in use (denyConflict).
	notFound string
	// role decided; checkHostPaths denies on its terms.
	role *role
	// body is the decoded request body, for hostPaths.
	body any
	// path is the request path pinned to the ID an ownership check found;
	// empty when nothing was pinned.
	path string
}

// Forward reports whether the gateway forwards the request (Allow or
// WouldDeny).
func (d *decision) forward() bool { return d.Effect != Deny }

// message is the sentence a denial answers with, in Docker's error
// message style, e.g. "dockgate: denied container.create for ci-7 (role
// ci): HostConfig.Privileged is not allowed; allow it with
// roles.ci.containers.privileged: true". For WouldDeny it says "would
// deny"; for Allow it is empty.
//
// After a failed ownership check (denyOwnership) a denial's message is
// dockerd's own not-found message, "No such container: web": the client
// must not learn that another client's object exists; after a create
// whose name is in use (denyConflict), dockerd's conflict message without
// the ID of the object that has the name. Reason says what happened, for
// the audit log.
func (d *decision) message() string {
	verb := "denied"
	switch d.Effect {
	case Allow:
		return ""
	case WouldDeny:
		verb = "would deny"
	case Deny:
		if d.notFound != "" {
			return d.notFound
		}
	}
	s := "dockgate: " + verb + " " + d.Op.String() + " for " + d.CN
	if d.Role != "" {
		s += " (role " + d.Role + ")"
	}
	s += ": " + d.Reason
	if d.Fix != "" {
		s += "; " + d.Fix
	}
	return s
}

// needsBody reports whether decide reads the decoded body of op: the
// operations with guardrails on their body, and those whose body names
// an object owner isolation checks. decide denies them (500) when
// request.Body is missing. The gateway decodes every JSON body anyway
// (request.setBody), to refuse ambiguous ones.
func needsBody(op dockerapi.Operation) bool {
	return bodyOps.Has(op)
}

var bodyOps = func() dockerapi.OpSet {
	var s dockerapi.OpSet
	addOps(&s, []dockerapi.Operation{
		dockerapi.OpContainerCreate,
		dockerapi.OpContainerUpdate,
		dockerapi.OpContainerExec,
		dockerapi.OpVolumeCreate,
		dockerapi.OpNetworkCreate,
		dockerapi.OpNetworkConnect,
		dockerapi.OpNetworkDisconnect,
		dockerapi.OpServiceCreate,
		dockerapi.OpServiceUpdate,
	})
	return s
}()

// decide judges one request of a client with the given role (the role
// config.MatchClient found; "" when none did). It never fails: anything it
// cannot judge is denied. For an operation whose path says everything it
// does not allocate.
func (p *Policy) decide(id identity.Identity, roleName string, req request) decision {
	d := decision{Op: req.Route.Op, CN: id.CN, Role: roleName}
	r := p.roles[roleName]
	if r == nil {
		d.Reason = "no role: no clients: entry matches this identity"
		if roleName != "" {
			d.Reason = "role " + roleName + " is not defined"
		}
		d.Status = http.StatusForbidden
		return d
	}
	d.Audit = r.audit
	if v := r.decide(id, &req, &d.Owner); v != nil {
		r.deny(&d, v)
		return d
	}
	d.Effect = Allow
	d.Rule = r.rules[req.Route.Op]
	d.role, d.body = r, req.Body
	return d
}

// deny fills a denial in; in audit mode it becomes WouldDeny.
func (r *role) deny(d *decision, v *violation) {
	d.Effect = Deny
	if r.audit {
		d.Effect = WouldDeny
	}
	d.Field, d.Reason = v.field, v.reason
	d.Status = v.status
	if d.Status == 0 {
		d.Status = http.StatusForbidden
	}
	if v.knob != "" {
		d.Rule = r.knobPath(v.knob)
	}
	d.Fix = r.fix(v)
}

// violation is one reason to deny.
type violation struct {
	field  string // body or query field, "" for the operation itself
	reason string // the sentence after "for CN (role R): "
	knob   string // the setting that allows it, relative to the role: "containers.privileged"
	item   string // for list settings, the entry to add: "SYS_ADMIN"
	hint   string // the fix when no setting allows it
	status int    // 0 means 403
}

// Settings a violation can name.
const (
	knobAllow               = "allow"
	knobAdminOperations     = "admin_operations"
	knobPrivileged          = "containers.privileged"
	knobCapabilities        = "containers.capabilities"
	knobBindMounts          = "containers.bind_mounts"
	knobVolumeDriverOptions = "containers.volume_driver_options"
	knobVolumesFrom         = "containers.volumes_from"
	knobHostNamespaces      = "containers.host_namespaces"
	knobContainerNamespaces = "containers.container_namespaces"
	knobDevices             = "containers.devices"
	knobDeviceRequests      = "containers.device_requests"
	knobUnconfined          = "containers.unconfined"
	knobSysctls             = "containers.sysctls"
	knobRuntimes            = "containers.runtimes"
	knobCgroupParent        = "containers.cgroup_parent"
	knobAnnotations         = "containers.annotations"
	knobBuildHostNetwork    = "builds.host_network"
	knobBuildRemoteContext  = "builds.remote_context"
	knobBuildRemoteSources  = "builds.remote_sources"
	knobBuildkitGRPC        = "builds.buildkit_grpc"
	knobBuildEntitlements   = "builds.entitlements"
	knobBuildCacheBackends  = "builds.cache_backends"
)

// decide runs the checks in order: the route, the allow list, admin
// operations, the operation's guardrails, then owner isolation. In audit
// mode owner isolation plans its rewrites and checks even for a request
// that would be denied, because the gateway forwards it.
func (r *role) decide(id identity.Identity, req *request, plan *OwnerPlan) *violation {
	v := r.check(req)
	if r.isolation && (v == nil || r.audit) && req.Route.Op != dockerapi.OpUnknownRoute {
		if iv := r.isolate(id, req, plan); v == nil {
			v = iv
		}
	}
	return v
}

func (r *role) check(req *request) *violation {
	op := req.Route.Op
	if op == dockerapi.OpUnknownRoute {
		return &violation{reason: "dockerd has no route for " + req.Route.Path, hint: "see docs/OPERATIONS.md for the Engine API routes"}
	}
	if !r.allow.Has(op) {
		return &violation{reason: op.String() + " is not allowed", knob: knobAllow, item: op.String()}
	}
	if r.unrestricted {
		return nil
	}
	if adminOnly.Has(op) && !r.adminOps {
		return &violation{reason: op.String() + " is an admin operation (plugins, swarm and nodes act as root on the host or the cluster)", knob: knobAdminOperations}
	}
	return r.guard(req)
}

// adminOnly are the operations only admin (or a role with
// admin_operations) may perform, whatever its allow list says: plugins
// run as root with the privileges they ask for, the swarm and its nodes
// decide where everything runs, and swarm.inspect answers with the join
// tokens (a manager token makes a new node a manager).
var adminOnly = func() dockerapi.OpSet {
	var s dockerapi.OpSet
	addOps(&s, []dockerapi.Operation{
		dockerapi.OpPluginInstall, dockerapi.OpPluginUpgrade, dockerapi.OpPluginCreate,
		dockerapi.OpPluginSet, dockerapi.OpPluginEnable, dockerapi.OpPluginDisable,
		dockerapi.OpPluginDelete, dockerapi.OpPluginPush,
		dockerapi.OpSwarmInit, dockerapi.OpSwarmJoin, dockerapi.OpSwarmLeave, dockerapi.OpSwarmInspect,
		dockerapi.OpSwarmUpdate, dockerapi.OpSwarmUnlockKey, dockerapi.OpSwarmUnlock,
		dockerapi.OpNodeUpdate, dockerapi.OpNodeDelete,
	})
	return s
}()
