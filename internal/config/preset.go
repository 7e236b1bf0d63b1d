package config

import (
	"fmt"
	"slices"
	"strings"
)

// Presets are the tools a role may name in preset: (RoleSpec.Preset). The
// operations each allows are internal/policy's; its tests keep the two
// lists equal.
var Presets = []string{
	"traefik",
	"watchtower",
	"dozzle",
	"homepage",
	"uptime-kuma",
	"autoheal",
	"gitlab-runner",
	"github-actions-runner",
	"docker-compose",
}

// refusedPresets are tools that have no preset, with the reason, so that a
// config naming one learns why and what to do instead.
var refusedPresets = map[string]string{
	"portainer": "Portainer manages everything the Docker API can do (containers of any kind, exec, images, " +
		"volumes, networks, swarm, plugins), so a preset could not be narrower than admin",
}

// IsPreset reports whether name is a preset.
func IsPreset(name string) bool { return slices.Contains(Presets, name) }

func validatePreset(field, name string, add addFunc) {
	if name == "" || IsPreset(name) {
		return
	}
	if why, ok := refusedPresets[name]; ok {
		add(field, fmt.Sprintf("%q has no preset: %s", name, why),
			"give it role admin only if you trust it with the host (docs/PRESETS.md#portainer)")
		return
	}
	add(field, fmt.Sprintf("%q is not a preset", name), "use one of "+strings.Join(Presets, ", "))
}
