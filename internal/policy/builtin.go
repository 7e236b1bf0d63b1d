package policy

import (
	"strings"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
)

// readOnlyOps are read-only's explicit operations; it also gets every
// *.list and *.inspect operation (readOnlySet). Logs, archives, exports,
// attach, exec, top and stats are left out: they read what is inside a
// container, not what dockerd knows about it.
var readOnlyOps = []dockerapi.Operation{
	dockerapi.OpSystemPing,
	dockerapi.OpSystemVersion,
	dockerapi.OpSystemInfo,
	dockerapi.OpSystemEvents,
	dockerapi.OpSystemDF,
	dockerapi.OpImageHistory,
}

// readOnlyExcluded are *.inspect operations that do more than read
// metadata: distribution.inspect asks a registry with the caller's
// credentials, and swarm.inspect answers with the swarm's join tokens
// (the manager token joins a node that controls the whole swarm).
var readOnlyExcluded = []dockerapi.Operation{
	dockerapi.OpDistributionInspect,
	dockerapi.OpSwarmInspect,
}

// operatorOps are what operator adds to read-only: a container's
// lifecycle and its logs.
var operatorOps = []dockerapi.Operation{
	dockerapi.OpContainerStart,
	dockerapi.OpContainerStop,
	dockerapi.OpContainerRestart,
	dockerapi.OpContainerKill,
	dockerapi.OpContainerPause,
	dockerapi.OpContainerUnpause,
	dockerapi.OpContainerLogs,
}

// deployerOps are what deployer adds to operator: creating, running
// (attach, wait, resize) and removing containers, non-privileged exec,
// pulling, building and tagging images, volumes and networks. All of it
// under the default guardrails: the built-in deployer relaxes none.
var deployerOps = []dockerapi.Operation{
	dockerapi.OpContainerCreate,
	dockerapi.OpContainerDelete,
	dockerapi.OpContainerAttach,
	dockerapi.OpContainerAttachWS,
	dockerapi.OpContainerWait,
	dockerapi.OpContainerResize,
	dockerapi.OpContainerExec,
	dockerapi.OpExecStart,
	dockerapi.OpExecResize,
	dockerapi.OpExecInspect,
	dockerapi.OpImagePull,
	dockerapi.OpImageBuild,
	dockerapi.OpSessionStart, // BuildKit's file sync for POST /build?version=2
	dockerapi.OpGRPCServe,    // docker buildx; the gateway judges each Solve (JudgeSolve)
	dockerapi.OpImageTag,
	dockerapi.OpVolumeCreate,
	dockerapi.OpVolumeDelete,
	dockerapi.OpNetworkCreate,
	dockerapi.OpNetworkDelete,
	dockerapi.OpNetworkConnect,
	dockerapi.OpNetworkDisconnect,
}

// builtinOperations returns the operations a built-in role allows, in
// table order; nil for a name that is not built in. admin allows every
// operation.
func builtinOperations(name string) []dockerapi.Operation {
	set, ok := builtinSet(name)
	if !ok {
		return nil
	}
	return set.Ops()
}

func builtinSet(name string) (dockerapi.OpSet, bool) {
	var set dockerapi.OpSet
	switch name {
	case config.RoleAdmin:
		for _, op := range dockerapi.Operations() {
			set.Add(op)
		}
	case config.RoleReadOnly:
		set = readOnlySet()
	case config.RoleOperator:
		set = readOnlySet()
		addOps(&set, operatorOps)
	case config.RoleDeployer:
		set = readOnlySet()
		addOps(&set, operatorOps)
		addOps(&set, deployerOps)
	default:
		return set, false
	}
	return set, true
}

func readOnlySet() dockerapi.OpSet {
	var set dockerapi.OpSet
	for _, op := range dockerapi.Operations() {
		name := op.String()
		if strings.HasSuffix(name, ".list") || strings.HasSuffix(name, ".inspect") {
			set.Add(op)
		}
	}
	addOps(&set, readOnlyOps)
	var excluded dockerapi.OpSet
	addOps(&excluded, readOnlyExcluded)
	for i := range set {
		set[i] &^= excluded[i]
	}
	return set
}

func addOps(set *dockerapi.OpSet, ops []dockerapi.Operation) {
	for _, op := range ops {
		set.Add(op)
	}
}
