package dockerconf

import (
	"path/filepath"
	"strings"
)

// The docker CLI plugin: `docker gate ...` runs a binary called docker-gate
// from a cli-plugins directory (docs/extend/cli_plugins.md in docker/cli).
const (
	PluginName            = "gate"
	PluginBinary          = "docker-" + PluginName
	PluginMetadataCommand = "docker-cli-plugin-metadata"
	// pluginSchemaVersion is the only schema version the docker CLI
	// accepts in plugin metadata.
	pluginSchemaVersion = "0.1.0"
	pluginsDir          = "cli-plugins"
)

// PluginMetadata is what a plugin prints for PluginMetadataCommand.
type PluginMetadata struct {
	SchemaVersion    string
	Vendor           string
	Version          string `json:",omitempty"`
	ShortDescription string `json:",omitempty"`
	URL              string `json:",omitempty"`
}

// NewPluginMetadata describes dockgate as the docker CLI plugin.
func NewPluginMetadata(version string) PluginMetadata {
	return PluginMetadata{
		SchemaVersion:    pluginSchemaVersion,
		Vendor:           "dockgate",
		Version:          version,
		ShortDescription: "Log in to a dockgate gateway with a token, check and renew access",
	}
}

// PluginDir is the per-user plugin directory under a docker configuration
// directory, the one the docker CLI searches first.
func PluginDir(configDir string) string { return filepath.Join(configDir, pluginsDir) }

// dockerGlobalFlagsWithValue are the docker CLI's global options that take
// a value (docker --help); the rest are booleans.
var dockerGlobalFlagsWithValue = map[string]bool{
	"--config": true, "-c": true, "--context": true, "-H": true, "--host": true,
	"-l": true, "--log-level": true, "--tlscacert": true, "--tlscert": true, "--tlskey": true,
}

// dockerGlobalFlagEnv maps the global options a plugin must honour to the
// environment variables that mean the same.
var dockerGlobalFlagEnv = map[string]string{
	"--config": "DOCKER_CONFIG", "-c": "DOCKER_CONTEXT", "--context": "DOCKER_CONTEXT",
	"-H": "DOCKER_HOST", "--host": "DOCKER_HOST",
}

// PluginInvocation reads the arguments the docker CLI runs a plugin with:
// docker's own global options, then the plugin's name, then the user's
// arguments (`docker --context x gate status` runs `docker-gate --context x
// gate status`). It returns the user's arguments and the environment that
// the global options stand for. Arguments without the plugin name are
// returned as they are: someone ran docker-gate by hand.
func PluginInvocation(args []string) (rest []string, env map[string]string) {
	env = map[string]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == PluginName {
			return args[i+1:], env
		}
		if !strings.HasPrefix(arg, "-") {
			break
		}
		name, value, hasValue := strings.Cut(arg, "=")
		if !hasValue && dockerGlobalFlagsWithValue[name] && i+1 < len(args) {
			i++
			value, hasValue = args[i], true
		}
		if v, ok := dockerGlobalFlagEnv[name]; ok && hasValue {
			env[v] = value
		}
		if name == "--tlsverify" && value != "false" {
			env["DOCKER_TLS_VERIFY"] = "1"
		}
		if name == "--tls" && value != "false" {
			env["DOCKER_TLS"] = "1"
		}
	}
	return args, map[string]string{}
}
