package dockerapi

import "strings"

// Operation names one Engine API operation: what a request does, whatever
// path spelling it used. The zero value is OpUnknownRoute.
//
// An Operation is a small integer so that a policy can keep sets of them in
// bitsets (see OpSet) and compare them without allocating.
type Operation uint16

// Operations, in the order of docs/OPERATIONS.md. The name of each is its
// String form: OpContainerCreate is "container.create".
const (
	OpUnknownRoute Operation = iota

	OpSystemPing
	OpSystemVersion
	OpSystemInfo
	OpSystemEvents
	OpSystemDF
	OpSystemAuth
	OpSystemOptions

	OpContainerList
	OpContainerCreate
	OpContainerInspect
	OpContainerTop
	OpContainerLogs
	OpContainerChanges
	OpContainerExport
	OpContainerStats
	OpContainerResize
	OpContainerStart
	OpContainerStop
	OpContainerRestart
	OpContainerKill
	OpContainerUpdate
	OpContainerRename
	OpContainerPause
	OpContainerUnpause
	OpContainerAttach
	OpContainerAttachWS
	OpContainerWait
	OpContainerDelete
	OpContainerArchiveHead
	OpContainerArchiveGet
	OpContainerArchivePut
	OpContainerExec
	OpContainerCommit
	OpContainerPrune

	OpExecStart
	OpExecResize
	OpExecInspect

	OpCheckpointList
	OpCheckpointCreate
	OpCheckpointDelete

	OpImageList
	OpImageBuild
	OpImagePull
	OpImageImport
	OpImageInspect
	OpImageAttestations
	OpImageHistory
	OpImagePush
	OpImageTag
	OpImageDelete
	OpImageSearch
	OpImageSave
	OpImageLoad
	OpImagePrune

	OpBuildPrune
	OpBuildCancel

	OpVolumeList
	OpVolumeCreate
	OpVolumeInspect
	OpVolumeUpdate
	OpVolumeDelete
	OpVolumePrune

	OpNetworkList
	OpNetworkInspect
	OpNetworkCreate
	OpNetworkConnect
	OpNetworkDisconnect
	OpNetworkDelete
	OpNetworkPrune

	OpPluginList
	OpPluginPrivileges
	OpPluginInstall
	OpPluginInspect
	OpPluginDelete
	OpPluginEnable
	OpPluginDisable
	OpPluginUpgrade
	OpPluginCreate
	OpPluginPush
	OpPluginSet

	OpSwarmInspect
	OpSwarmInit
	OpSwarmJoin
	OpSwarmLeave
	OpSwarmUpdate
	OpSwarmUnlockKey
	OpSwarmUnlock

	OpServiceList
	OpServiceCreate
	OpServiceInspect
	OpServiceUpdate
	OpServiceDelete
	OpServiceLogs

	OpNodeList
	OpNodeInspect
	OpNodeUpdate
	OpNodeDelete

	OpTaskList
	OpTaskInspect
	OpTaskLogs

	OpSecretList
	OpSecretCreate
	OpSecretInspect
	OpSecretUpdate
	OpSecretDelete

	OpConfigList
	OpConfigCreate
	OpConfigInspect
	OpConfigUpdate
	OpConfigDelete

	OpDistributionInspect

	OpSessionStart
	OpGRPCServe

	OpDebugVars
	OpDebugPprof

	numOperations // not an operation: the count
)

// BodyKind says what dockerd reads from a request body for an operation.
type BodyKind uint8

const (
	// BodyNone: dockerd does not read a request body (container.start even
	// refuses one longer than 7 bytes). The streams of an upgraded
	// connection (container.attach) flow after the response and are not a
	// request body.
	BodyNone BodyKind = iota
	// BodyJSON: dockerd decodes one JSON document with encoding/json; an
	// empty body reads as the zero value except for container.create.
	BodyJSON
	// BodyRaw: the body is a byte stream dockerd consumes as is (a tar
	// archive, an image, a build context) or the connection is handed to
	// another protocol.
	BodyRaw
)

// String returns "none", "json" or "raw".
func (k BodyKind) String() string {
	switch k {
	case BodyJSON:
		return "json"
	case BodyRaw:
		return "raw"
	}
	return "none"
}

// opInfo describes one operation for users (docs/OPERATIONS.md) and for the
// gateway (Body).
type opInfo struct {
	name    string
	summary string
	target  string // where the object it acts on is named: "path: container", "query: names"
	body    BodyKind
}

var operations = [numOperations]opInfo{
	OpUnknownRoute: {"unknown_route", "a method and path dockerd has no route for (or answers 404 to); never allowed", "", BodyNone},

	OpSystemPing:    {"system.ping", "ping the daemon", "", BodyNone},
	OpSystemVersion: {"system.version", "daemon and API versions", "", BodyNone},
	OpSystemInfo:    {"system.info", "system-wide information", "", BodyNone},
	OpSystemEvents:  {"system.events", "stream daemon events", "query: filters", BodyNone},
	OpSystemDF:      {"system.df", "disk usage", "", BodyNone},
	OpSystemAuth:    {"system.auth", "check registry credentials (the body holds a password)", "", BodyJSON},
	OpSystemOptions: {"system.options", "CORS preflight: any OPTIONS request", "", BodyNone},

	OpContainerList:        {"container.list", "list containers", "query: filters", BodyNone},
	OpContainerCreate:      {"container.create", "create a container", "body", BodyJSON},
	OpContainerInspect:     {"container.inspect", "inspect a container", "path: container", BodyNone},
	OpContainerTop:         {"container.top", "list a container's processes", "path: container", BodyNone},
	OpContainerLogs:        {"container.logs", "read a container's logs", "path: container", BodyNone},
	OpContainerChanges:     {"container.changes", "filesystem changes of a container", "path: container", BodyNone},
	OpContainerExport:      {"container.export", "export a container's filesystem", "path: container", BodyNone},
	OpContainerStats:       {"container.stats", "resource usage statistics", "path: container", BodyNone},
	OpContainerResize:      {"container.resize", "resize a container's TTY", "path: container", BodyNone},
	OpContainerStart:       {"container.start", "start a container", "path: container", BodyNone},
	OpContainerStop:        {"container.stop", "stop a container", "path: container", BodyNone},
	OpContainerRestart:     {"container.restart", "restart a container", "path: container", BodyNone},
	OpContainerKill:        {"container.kill", "send a signal to a container", "path: container", BodyNone},
	OpContainerUpdate:      {"container.update", "change a container's resources and restart policy", "path: container", BodyJSON},
	OpContainerRename:      {"container.rename", "rename a container", "path: container", BodyNone},
	OpContainerPause:       {"container.pause", "pause a container", "path: container", BodyNone},
	OpContainerUnpause:     {"container.unpause", "unpause a container", "path: container", BodyNone},
	OpContainerAttach:      {"container.attach", "attach to a container's streams (hijacked connection)", "path: container", BodyNone},
	OpContainerAttachWS:    {"container.attach.ws", "attach to a container's streams over a websocket", "path: container", BodyNone},
	OpContainerWait:        {"container.wait", "wait for a container", "path: container", BodyNone},
	OpContainerDelete:      {"container.delete", "remove a container", "path: container", BodyNone},
	OpContainerArchiveHead: {"container.archive.head", "stat a path in a container", "path: container", BodyNone},
	OpContainerArchiveGet:  {"container.archive.get", "copy files out of a container", "path: container", BodyNone},
	OpContainerArchivePut:  {"container.archive.put", "copy files into a container", "path: container", BodyRaw},
	OpContainerExec:        {"container.exec", "create an exec instance in a container", "path: container", BodyJSON},
	OpContainerCommit:      {"container.commit", "create an image from a container", "query: container", BodyJSON},
	OpContainerPrune:       {"container.prune", "remove stopped containers", "query: filters", BodyNone},

	OpExecStart:   {"exec.start", "start an exec instance (hijacked connection)", "path: exec", BodyJSON},
	OpExecResize:  {"exec.resize", "resize an exec instance's TTY", "path: exec", BodyNone},
	OpExecInspect: {"exec.inspect", "inspect an exec instance", "path: exec", BodyNone},

	OpCheckpointList:   {"checkpoint.list", "list a container's checkpoints (experimental)", "path: container", BodyNone},
	OpCheckpointCreate: {"checkpoint.create", "checkpoint a container (experimental)", "path: container", BodyJSON},
	OpCheckpointDelete: {"checkpoint.delete", "delete a checkpoint (experimental)", "path: container, checkpoint", BodyNone},

	OpImageList:         {"image.list", "list images", "query: filters", BodyNone},
	OpImageBuild:        {"image.build", "build an image (POST /build)", "body: build context", BodyRaw},
	OpImagePull:         {"image.pull", "pull an image (POST /images/create with fromImage)", "query: fromImage", BodyNone},
	OpImageImport:       {"image.import", "import an image from a URL or the body (POST /images/create without fromImage)", "query: fromSrc, repo", BodyRaw},
	OpImageInspect:      {"image.inspect", "inspect an image", "path: image", BodyNone},
	OpImageAttestations: {"image.attestations", "an image's attestations", "path: image", BodyNone},
	OpImageHistory:      {"image.history", "an image's history", "path: image", BodyNone},
	OpImagePush:         {"image.push", "push an image", "path: image", BodyNone},
	OpImageTag:          {"image.tag", "tag an image", "path: image; query: repo, tag", BodyNone},
	OpImageDelete:       {"image.delete", "remove an image", "path: image", BodyNone},
	OpImageSearch:       {"image.search", "search a registry", "", BodyNone},
	OpImageSave:         {"image.save", "export images as a tarball", "path: image, or query: names", BodyNone},
	OpImageLoad:         {"image.load", "load images from a tarball", "body", BodyRaw},
	OpImagePrune:        {"image.prune", "remove unused images", "query: filters", BodyNone},

	OpBuildPrune:  {"build.prune", "remove build cache", "query: filters", BodyNone},
	OpBuildCancel: {"build.cancel", "cancel a build", "query: id", BodyNone},

	OpVolumeList:    {"volume.list", "list volumes", "query: filters", BodyNone},
	OpVolumeCreate:  {"volume.create", "create a volume", "body", BodyJSON},
	OpVolumeInspect: {"volume.inspect", "inspect a volume", "path: volume", BodyNone},
	OpVolumeUpdate:  {"volume.update", "update a cluster volume", "path: volume", BodyJSON},
	OpVolumeDelete:  {"volume.delete", "remove a volume", "path: volume", BodyNone},
	OpVolumePrune:   {"volume.prune", "remove unused volumes", "query: filters", BodyNone},

	OpNetworkList:       {"network.list", "list networks", "query: filters", BodyNone},
	OpNetworkInspect:    {"network.inspect", "inspect a network", "path: network", BodyNone},
	OpNetworkCreate:     {"network.create", "create a network", "body", BodyJSON},
	OpNetworkConnect:    {"network.connect", "connect a container to a network", "path: network; body: Container", BodyJSON},
	OpNetworkDisconnect: {"network.disconnect", "disconnect a container from a network", "path: network; body: Container", BodyJSON},
	OpNetworkDelete:     {"network.delete", "remove a network", "path: network", BodyNone},
	OpNetworkPrune:      {"network.prune", "remove unused networks", "query: filters", BodyNone},

	OpPluginList:       {"plugin.list", "list plugins", "", BodyNone},
	OpPluginPrivileges: {"plugin.privileges", "privileges a plugin asks for", "query: remote", BodyNone},
	OpPluginInstall:    {"plugin.install", "install a plugin (POST /plugins/pull)", "query: remote, name", BodyJSON},
	OpPluginInspect:    {"plugin.inspect", "inspect a plugin", "path: plugin", BodyNone},
	OpPluginDelete:     {"plugin.delete", "remove a plugin", "path: plugin", BodyNone},
	OpPluginEnable:     {"plugin.enable", "enable a plugin", "path: plugin", BodyNone},
	OpPluginDisable:    {"plugin.disable", "disable a plugin", "path: plugin", BodyNone},
	OpPluginUpgrade:    {"plugin.upgrade", "upgrade a plugin", "path: plugin; query: remote", BodyJSON},
	OpPluginCreate:     {"plugin.create", "create a plugin from a tarball", "query: name", BodyRaw},
	OpPluginPush:       {"plugin.push", "push a plugin", "path: plugin", BodyNone},
	OpPluginSet:        {"plugin.set", "configure a plugin", "path: plugin", BodyJSON},

	OpSwarmInspect:   {"swarm.inspect", "inspect the swarm", "", BodyNone},
	OpSwarmInit:      {"swarm.init", "initialise a swarm", "", BodyJSON},
	OpSwarmJoin:      {"swarm.join", "join a swarm", "", BodyJSON},
	OpSwarmLeave:     {"swarm.leave", "leave the swarm", "", BodyNone},
	OpSwarmUpdate:    {"swarm.update", "update the swarm", "", BodyJSON},
	OpSwarmUnlockKey: {"swarm.unlockkey", "read the swarm unlock key", "", BodyNone},
	OpSwarmUnlock:    {"swarm.unlock", "unlock a locked manager", "", BodyJSON},

	OpServiceList:    {"service.list", "list services", "query: filters", BodyNone},
	OpServiceCreate:  {"service.create", "create a service", "body", BodyJSON},
	OpServiceInspect: {"service.inspect", "inspect a service", "path: service", BodyNone},
	OpServiceUpdate:  {"service.update", "update a service", "path: service", BodyJSON},
	OpServiceDelete:  {"service.delete", "remove a service", "path: service", BodyNone},
	OpServiceLogs:    {"service.logs", "read a service's logs", "path: service", BodyNone},

	OpNodeList:    {"node.list", "list nodes", "query: filters", BodyNone},
	OpNodeInspect: {"node.inspect", "inspect a node", "path: node", BodyNone},
	OpNodeUpdate:  {"node.update", "update a node", "path: node", BodyJSON},
	OpNodeDelete:  {"node.delete", "remove a node", "path: node", BodyNone},

	OpTaskList:    {"task.list", "list tasks", "query: filters", BodyNone},
	OpTaskInspect: {"task.inspect", "inspect a task", "path: task", BodyNone},
	OpTaskLogs:    {"task.logs", "read a task's logs", "path: task", BodyNone},

	OpSecretList:    {"secret.list", "list secrets", "query: filters", BodyNone},
	OpSecretCreate:  {"secret.create", "create a secret", "body", BodyJSON},
	OpSecretInspect: {"secret.inspect", "inspect a secret", "path: secret", BodyNone},
	OpSecretUpdate:  {"secret.update", "update a secret", "path: secret", BodyJSON},
	OpSecretDelete:  {"secret.delete", "remove a secret", "path: secret", BodyNone},

	OpConfigList:    {"config.list", "list configs", "query: filters", BodyNone},
	OpConfigCreate:  {"config.create", "create a config", "body", BodyJSON},
	OpConfigInspect: {"config.inspect", "inspect a config", "path: config", BodyNone},
	OpConfigUpdate:  {"config.update", "update a config", "path: config", BodyJSON},
	OpConfigDelete:  {"config.delete", "remove a config", "path: config", BodyNone},

	OpDistributionInspect: {"distribution.inspect", "read an image's manifest from its registry", "path: image", BodyNone},

	OpSessionStart: {"session.start", "BuildKit session (hijacked connection; deprecated endpoint)", "", BodyRaw},
	OpGRPCServe:    {"grpc.serve", "BuildKit gRPC API (hijacked connection; deprecated endpoint)", "", BodyRaw},

	OpDebugVars:  {"debug.vars", "expvar variables of the daemon", "", BodyNone},
	OpDebugPprof: {"debug.pprof", "pprof profiles of the daemon", "path: profile", BodyNone},
}

// opByName maps operation names back to operations; built once.
var opByName = func() map[string]Operation {
	m := make(map[string]Operation, numOperations)
	for op := range numOperations {
		m[operations[op].name] = op
	}
	return m
}()

// String returns the operation's name, such as "container.create".
func (op Operation) String() string {
	if op >= numOperations {
		return operations[OpUnknownRoute].name
	}
	return operations[op].name
}

// Object returns the part of the name before the first dot: the kind of
// object the operation acts on ("container", "image", ...). It is
// "unknown_route" for OpUnknownRoute.
func (op Operation) Object() string {
	name := op.String()
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// Body says what dockerd reads from the request body for the operation.
func (op Operation) Body() BodyKind {
	if op >= numOperations {
		return BodyNone
	}
	return operations[op].body
}

// Summary is a one-line description of the operation.
func (op Operation) Summary() string {
	if op >= numOperations {
		return ""
	}
	return operations[op].summary
}

// Target says where a request names the object the operation acts on, for
// example "path: container" or "query: names"; empty when it acts on none.
func (op Operation) Target() string {
	if op >= numOperations {
		return ""
	}
	return operations[op].target
}

// ParseOperation returns the operation with the given name.
func ParseOperation(name string) (Operation, bool) {
	op, ok := opByName[name]
	return op, ok
}

// Operations returns every operation except OpUnknownRoute, in table order.
func Operations() []Operation {
	ops := make([]Operation, 0, numOperations-1)
	for op := OpUnknownRoute + 1; op < numOperations; op++ {
		ops = append(ops, op)
	}
	return ops
}
