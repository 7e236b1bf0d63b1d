package policy

import "github.com/dockgate/dockgate/internal/dockerapi"

// EnvMarker replaces the value of every environment variable in an answer
// a role with containers.redact_env reads: "DB_PASSWORD=hunter2" reaches
// the client as "DB_PASSWORD=<redacted by dockgate>". The name stays, so
// that the client still sees which variables are set.
const EnvMarker = "<redacted by dockgate>"

// Redaction says where the daemon's answer to a request carries
// environment variables ("NAME=value" lists) whose values the gateway
// replaces with EnvMarker before the client sees them. The zero value
// redacts nothing.
type Redaction struct {
	// List: the answer is a JSON array of objects, each redacted at
	// Paths; otherwise it is one object.
	List bool
	// Paths are the object keys leading to each "NAME=value" list, from
	// the answer's object (or each array element) down. Keys match as
	// encoding/json matches them: without regard to case.
	Paths [][]string
}

// Env reports whether the answer is to be redacted at all.
func (r *Redaction) Env() bool { return len(r.Paths) > 0 }

// Where each kind of answer carries environment variables, in the moby
// API types: a container's Config.Env (container.InspectResponse); a
// service's spec, current and previous, with a container or a plugin
// runtime (swarm.Service: TaskTemplate.ContainerSpec.Env,
// TaskTemplate.PluginSpec.env); a task's spec (swarm.Task); a plugin's
// settings (plugin.Plugin Settings.Env, set by `docker plugin set` and
// often a storage driver's credentials). A container list
// (container.Summary), an exec inspect (container.ExecInspectResponse:
// entrypoint and arguments only) and system.df carry none.
var (
	containerEnvPaths = [][]string{{"Config", "Env"}}
	taskSpecEnvPaths  = [][]string{{"Spec", "ContainerSpec", "Env"}, {"Spec", "PluginSpec", "Env"}}
	serviceEnvPaths   = [][]string{
		{"Spec", "TaskTemplate", "ContainerSpec", "Env"},
		{"Spec", "TaskTemplate", "PluginSpec", "Env"},
		{"PreviousSpec", "TaskTemplate", "ContainerSpec", "Env"},
		{"PreviousSpec", "TaskTemplate", "PluginSpec", "Env"},
	}
	pluginEnvPaths = [][]string{{"Settings", "Env"}}
)

// envAnswers are the redactions of the operations whose answers carry
// environment variables.
var envAnswers = map[dockerapi.Operation]Redaction{
	dockerapi.OpContainerInspect: {Paths: containerEnvPaths},
	dockerapi.OpServiceInspect:   {Paths: serviceEnvPaths},
	dockerapi.OpServiceList:      {List: true, Paths: serviceEnvPaths},
	dockerapi.OpTaskInspect:      {Paths: taskSpecEnvPaths},
	dockerapi.OpTaskList:         {List: true, Paths: taskSpecEnvPaths},
	dockerapi.OpPluginInspect:    {Paths: pluginEnvPaths},
	dockerapi.OpPluginList:       {List: true, Paths: pluginEnvPaths},
}

// redaction is what the gateway removes from the answer to op for a
// client of role r: the environment values, unless the role shows them.
func (r *role) redaction(op dockerapi.Operation) Redaction {
	if r == nil || !r.redactEnv {
		return Redaction{}
	}
	return envAnswers[op]
}
