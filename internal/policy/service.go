package policy

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// guardService checks a service spec: its tasks' containers get the same
// guardrails as a container create, in swarm's spelling.
func (r *role) guardService(s *swarm.ServiceSpec) *violation {
	t := &s.TaskTemplate
	if t.PluginSpec != nil || t.Runtime != "" && t.Runtime != swarm.RuntimeContainer {
		if !r.adminOps {
			return &violation{field: "TaskTemplate.Runtime", knob: knobAdminOperations,
				reason: fmt.Sprintf("TaskTemplate.Runtime is %s: a service that runs a plugin is an admin operation", quote(string(t.Runtime)))}
		}
	}
	if v := guardRedactedEnv(t); v != nil {
		return v
	}
	for i, n := range t.Networks {
		field := fmt.Sprintf("TaskTemplate.Networks[%d].Target", i)
		if v := r.guardNetworkMode(field, n.Target); v != nil {
			return v
		}
	}
	if t.ContainerSpec == nil {
		return nil
	}
	return r.guardContainerSpec("TaskTemplate.ContainerSpec.", t.ContainerSpec)
}

func (r *role) guardContainerSpec(prefix string, c *swarm.ContainerSpec) *violation {
	if v := r.checkCapAdd(prefix+"CapabilityAdd", c.CapabilityAdd); v != nil {
		return v
	}
	if v := r.guardMounts(prefix+"Mounts", c.Mounts); v != nil {
		return v
	}
	if v := r.checkSysctls(prefix+"Sysctls", c.Sysctls); v != nil {
		return v
	}
	if c.Privileges != nil && !r.containers.unconfined {
		return guardPrivileges(prefix+"Privileges.", c.Privileges)
	}
	return nil
}

// guardPrivileges denies a service's seccomp, AppArmor and SELinux
// overrides: unconfined or custom seccomp, AppArmor disabled, SELinux
// disabled or given another label.
func guardPrivileges(prefix string, p *swarm.Privileges) *violation {
	weakens := func(field, what string) *violation {
		return &violation{field: field, reason: fmt.Sprintf("%s %s, which weakens confinement", field, what), knob: knobUnconfined}
	}
	if p.Seccomp != nil && p.Seccomp.Mode != "" && p.Seccomp.Mode != swarm.SeccompModeDefault {
		return weakens(prefix+"Seccomp.Mode", "is "+quote(string(p.Seccomp.Mode)))
	}
	if p.AppArmor != nil && p.AppArmor.Mode != "" && p.AppArmor.Mode != swarm.AppArmorModeDefault {
		return weakens(prefix+"AppArmor.Mode", "is "+quote(string(p.AppArmor.Mode)))
	}
	if s := p.SELinuxContext; s != nil && (s.Disable || s.User != "" || s.Role != "" || s.Type != "" || s.Level != "") {
		return weakens(prefix+"SELinuxContext", "disables or changes the SELinux label")
	}
	return nil
}

// guardRedactedEnv refuses a spec that would write EnvMarker back as an
// environment value. The docker CLI updates a service by reading its spec
// (GET /services/{id}), changing it and sending all of it back, so a
// client that reads specs redacted (containers.redact_env) would replace
// every secret of the service with the marker.
func guardRedactedEnv(t *swarm.TaskSpec) *violation {
	if t.ContainerSpec != nil {
		if v := checkRedactedEnv("TaskTemplate.ContainerSpec.Env", t.ContainerSpec.Env); v != nil {
			return v
		}
	}
	if t.PluginSpec != nil {
		return checkRedactedEnv("TaskTemplate.PluginSpec.env", t.PluginSpec.Env)
	}
	return nil
}

func checkRedactedEnv(field string, env []string) *violation {
	for i, e := range env {
		if name, value, _ := strings.Cut(e, "="); value == EnvMarker {
			return &violation{
				field:  fmt.Sprintf("%s[%d]", field, i),
				reason: fmt.Sprintf("%s[%d] sets %s to %s, which the gateway shows in place of a value: the spec was read redacted", field, i, name, EnvMarker),
				hint:   "a role that reads services redacted would overwrite their environment values with the marker; update the service with a role that has containers.redact_env: false",
				status: http.StatusBadRequest,
			}
		}
	}
	return nil
}
