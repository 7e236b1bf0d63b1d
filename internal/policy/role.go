package policy

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
)

// numOps sizes the per-operation tables: every operation plus
// OpUnknownRoute, whose value is 0.
var numOps = len(dockerapi.Operations()) + 1

// role is one compiled role. It is never changed after Compile.
type role struct {
	name    string
	builtin bool
	allow   dockerapi.OpSet
	// rules[op] says which entry allowed op, for decision.Rule; built once
	// so that an allowed decision does not build a string.
	rules     []string
	audit     bool
	isolation bool
	adminOps  bool
	// unrestricted skips every guardrail: the built-in admin.
	unrestricted bool
	containers   containerRules
	builds       config.BuildKnob
	// redactEnv replaces environment values in inspect answers
	// (containers.redact_env; answer.go).
	redactEnv bool
	// limits cap what one client of the role may hold (Policy.Limits).
	limits Limits
	// images is images.allow; nil allows any image.
	images *imageRules
}

// Limits are the caps on one client of a role, resolved from the config
// (config.ClientLimitsOf), with the config key that raises each.
type Limits struct {
	config.ClientLimits
	// keyPrefix is where they are set: "roles.ci.limits." or
	// "limits.per_client.".
	keyPrefix string
}

// Key is the config key that sets limit ("connections", "requests",
// "streams", "rate"), for the message of a client over its cap.
func (l Limits) Key(limit string) string { return l.keyPrefix + limit }

func limitsOf(cfg *config.Config, role string) Limits {
	key := cfg.ClientLimitKey(role, "")
	return Limits{ClientLimits: cfg.ClientLimitsOf(role), keyPrefix: key}
}

// Limits returns the caps on one client of role; a role the policy does
// not know (a client no clients: entry matches) gets limits.per_client.
func (p *Policy) Limits(role string) Limits {
	if r := p.roles[role]; r != nil {
		return r.limits
	}
	return p.unmatchedLimits
}

// containerRules is a ContainerKnob made fast to test.
type containerRules struct {
	privileged bool
	allCaps    bool
	caps       map[string]bool // canonical names, "CAP_NET_ADMIN"
	bindPaths  []string        // cleaned, absolute
	// resolvedBindPaths are bindPaths with their symbolic links resolved
	// when the policy was loaded (WithResolvedBindPaths); nil until then.
	resolvedBindPaths   []string
	volumeDriverOptions bool
	volumesFrom         bool
	hostNS              map[string]bool
	containerNS         bool
	devices             bool
	deviceRequests      bool
	unconfined          bool
	allSysctls          bool
	sysctls             map[string]bool // dotted form
	runtimes            map[string]bool
	cgroupParent        bool
	annotations         bool
}

func compileBuiltin(name string) *role {
	set, _ := builtinSet(name)
	admin := name == config.RoleAdmin
	r := &role{name: name, builtin: true, allow: set, unrestricted: admin, adminOps: admin, redactEnv: !admin}
	r.rules = make([]string, numOps)
	for _, op := range set.Ops() {
		r.rules[op] = "built-in role " + name
	}
	return r
}

func compileRole(name string, spec *config.RoleSpec) (*role, error) {
	field := "roles." + name
	r := &role{
		name:      name,
		audit:     spec.Mode == config.ModeAudit,
		isolation: spec.OwnerIsolation,
		adminOps:  spec.AdminOperations,
		builds:    spec.Builds,
		redactEnv: spec.Containers.RedactsEnv(),
		rules:     make([]string, numOps),
	}
	var errs []error
	if spec.Preset != "" {
		p, ok := findPreset(spec.Preset)
		if !ok {
			errs = append(errs, &config.FieldError{Field: field + ".preset", Msg: fmt.Sprintf("%q is not a preset", spec.Preset)})
		} else {
			r.allow = p.set()
			for _, op := range r.allow.Ops() {
				r.rules[op] = field + ".preset " + p.name
			}
		}
	}
	for i, glob := range spec.Allow {
		set, err := dockerapi.CompileGlob(glob)
		if err != nil {
			errs = append(errs, &config.FieldError{Field: fmt.Sprintf("%s.allow[%d]", field, i), Msg: err.Error()})
			continue
		}
		for _, op := range set.Ops() {
			if r.rules[op] == "" {
				r.rules[op] = fmt.Sprintf("%s.allow[%d] %s", field, i, glob)
			}
		}
		r.allow.Union(set)
	}
	if spec.AllowsDiscovery() {
		for _, op := range discoveryOps {
			if r.rules[op] == "" {
				r.rules[op] = field + ".discovery (default: the docker CLI pings and asks the version first)"
			}
			r.allow.Add(op)
		}
	}
	switch spec.Mode {
	case "", config.ModeEnforce, config.ModeAudit:
	default:
		errs = append(errs, &config.FieldError{Field: field + ".mode", Msg: fmt.Sprintf("%q is not a mode", spec.Mode)})
	}
	c, err := compileContainerRules(field+".containers", &spec.Containers)
	if err != nil {
		errs = append(errs, err)
	}
	r.containers = c
	images, ierrs := compileImagePatterns(field+".images.allow", spec.Images.Allow)
	r.images = images
	errs = append(errs, ierrs...)
	return r, errors.Join(errs...)
}

// discoveryOps are the docker CLI's first two calls, allowed for every
// declared role unless it says discovery: false (config.RoleSpec).
var discoveryOps = []dockerapi.Operation{dockerapi.OpSystemPing, dockerapi.OpSystemVersion}

func compileContainerRules(field string, k *config.ContainerKnob) (containerRules, error) {
	c := containerRules{
		privileged:          k.Privileged,
		volumeDriverOptions: k.VolumeDriverOptions,
		volumesFrom:         k.VolumesFrom,
		containerNS:         k.ContainerNamespaces,
		devices:             k.Devices,
		deviceRequests:      k.DeviceRequests,
		unconfined:          k.Unconfined,
		cgroupParent:        k.CgroupParent,
		annotations:         k.Annotations,
		caps:                map[string]bool{},
		hostNS:              map[string]bool{},
		sysctls:             map[string]bool{},
		runtimes:            map[string]bool{},
	}
	var errs []error
	for i, name := range k.Capabilities {
		canon, ok := dockerapi.NormalizeCapability(name)
		if !ok {
			errs = append(errs, &config.FieldError{Field: fmt.Sprintf("%s.capabilities[%d]", field, i), Msg: fmt.Sprintf("%q is not a Linux capability", name)})
			continue
		}
		c.allCaps = c.allCaps || canon == dockerapi.AllCapabilities
		c.caps[canon] = true
	}
	for i, p := range k.BindMounts {
		if !path.IsAbs(p) || slices.Contains(strings.Split(p, "/"), "..") {
			errs = append(errs, &config.FieldError{Field: fmt.Sprintf("%s.bind_mounts[%d]", field, i), Msg: fmt.Sprintf("%q is not an absolute path without '..'", p)})
			continue
		}
		c.bindPaths = append(c.bindPaths, path.Clean(p))
	}
	for _, ns := range k.HostNamespaces {
		c.hostNS[ns] = true
	}
	for _, s := range k.Sysctls {
		if s == "*" {
			c.allSysctls = true
		}
		c.sysctls[sysctlName(s)] = true
	}
	for _, rt := range k.Runtimes {
		c.runtimes[rt] = true
	}
	return c, errors.Join(errs...)
}

// sysctlName writes a sysctl in its dotted form: runc accepts
// "net/ipv4/ip_forward" for "net.ipv4.ip_forward".
func sysctlName(s string) string {
	return strings.ReplaceAll(s, "/", ".")
}

// knobPath is where a setting of this role lives, for decision.Rule.
func (r *role) knobPath(knob string) string {
	if r.builtin {
		return "built-in role " + r.name + " (" + knob + ")"
	}
	return "roles." + r.name + "." + knob
}

// fix says how to allow what a violation denies.
func (r *role) fix(v *violation) string {
	if v.knob == "" {
		return v.hint
	}
	if r.builtin {
		switch {
		case v.item != "" && v.knob == knobAllow:
			return fmt.Sprintf("role %s is built in: give this client a role of your own that allows %s", r.name, v.item)
		case v.item != "":
			return fmt.Sprintf("role %s is built in: give this client a role of your own with %s: [%s]", r.name, v.knob, v.item)
		}
		return fmt.Sprintf("role %s is built in: give this client a role of your own with %s: true", r.name, v.knob)
	}
	if v.item != "" {
		return fmt.Sprintf("allow it by adding %s to roles.%s.%s", v.item, r.name, v.knob)
	}
	return fmt.Sprintf("allow it with roles.%s.%s: true", r.name, v.knob)
}
