package policy

import (
	"github.com/dockgate/dockgate/internal/dockerapi"
)

// A preset is the operations one tool that talks to the Docker socket
// needs, read from the tool's own source (docs/PRESETS.md, which is
// generated from this table), so that nobody has to write its role from
// the whole operation table. A role names it with preset: and may add to
// it with allow:. A preset changes no guardrail: the role's own settings
// (and their secure defaults) apply to what the tool sends.
type preset struct {
	name string
	// tool and source say where calls were read: the repository, the
	// version (`git describe`) and commit.
	tool, source string
	calls        []presetCall
	// leftOut is what the tool can do that the preset does not allow,
	// and how to allow it.
	leftOut []string
}

// presetCall is one Docker API call of a tool, and the file and function
// it is made in.
type presetCall struct {
	call string // "GET /containers/json"
	from string // "pkg/provider/docker/pdocker.go: listContainers"
	op   dockerapi.Operation
}

// presets are the presets, in config.Presets order.
var presets = []preset{
	{
		name: "traefik", tool: "Traefik's Docker provider",
		source: "traefik/traefik v3.7.9-28-gfd5a576df2 (fd5a576df2e8aeb0bfc8a96b6ef6e60a61f7ec0a)",
		calls: []presetCall{
			{"HEAD /_ping", "pkg/provider/docker/shared.go: createClient (client.New of moby/moby/client v0.4.0, whose API version negotiation pings first; every role's discovery allows it too)", dockerapi.OpSystemPing},
			{"GET /version", "pkg/provider/docker/pdocker.go: Provide (ServerVersion)", dockerapi.OpSystemVersion},
			{"GET /containers/json", "pkg/provider/docker/pdocker.go: listContainers (ContainerList)", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "pkg/provider/docker/shared.go: inspectContainers; config.go: network_mode container:NAME (ContainerInspect)", dockerapi.OpContainerInspect},
			{"GET /events?filters={\"type\":[\"container\"]}", "pkg/provider/docker/pdocker.go: Provide with watch (Events)", dockerapi.OpSystemEvents},
		},
		leftOut: []string{
			"Traefik's Swarm provider (`providers.swarm`, pkg/provider/docker/pswarm.go) lists services, networks and tasks and inspects nodes: add `allow: [service.list, network.list, task.list, node.inspect]`.",
		},
	},
	{
		name: "watchtower", tool: "Watchtower",
		source: "containrrr/watchtower v1.7.1-18-gca0e86e (ca0e86e824ec05389ab972ea97d04d4bf0476e90)",
		calls: []presetCall{
			{"GET /containers/json", "pkg/container/client.go: ListContainers", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "pkg/container/client.go: GetContainer, waitForStopOrTimeout", dockerapi.OpContainerInspect},
			{"GET /images/{name}/json", "pkg/container/client.go: GetContainer, HasNewImage (ImageInspectWithRaw)", dockerapi.OpImageInspect},
			{"POST /images/create?fromImage={name}", "pkg/container/client.go: PullImage", dockerapi.OpImagePull},
			{"POST /containers/{id}/kill", "pkg/container/client.go: StopContainer", dockerapi.OpContainerKill},
			{"DELETE /containers/{id}?force=1", "pkg/container/client.go: StopContainer (ContainerRemove)", dockerapi.OpContainerDelete},
			{"POST /containers/create", "pkg/container/client.go: StartContainer", dockerapi.OpContainerCreate},
			{"POST /networks/{id}/disconnect", "pkg/container/client.go: StartContainer", dockerapi.OpNetworkDisconnect},
			{"POST /networks/{id}/connect", "pkg/container/client.go: StartContainer", dockerapi.OpNetworkConnect},
			{"POST /containers/{id}/start", "pkg/container/client.go: StartContainer", dockerapi.OpContainerStart},
			{"POST /containers/{id}/rename", "pkg/container/client.go: RenameContainer (updating itself)", dockerapi.OpContainerRename},
			{"DELETE /images/{id}", "pkg/container/client.go: RemoveImageByID (--cleanup)", dockerapi.OpImageDelete},
		},
		leftOut: []string{
			"Lifecycle hooks (`--enable-lifecycle-hooks`, pkg/container/client.go: ExecuteCommand) run commands in the containers: add `allow: [container.exec, exec.start, exec.inspect]`.",
			"Watchtower recreates a container with the configuration it had, so the guardrails apply to it: a watched container with bind mounts, added capabilities or a host network needs the role's `containers:` settings for them, or its update is refused (and the old container is already gone: watch only containers the role may create).",
		},
	},
	{
		name: "dozzle", tool: "Dozzle",
		source: "amir20/dozzle v10.7.3-5-gca4cab8c (ca4cab8cb8935c4eb1f83e3cae3fc5df194cb789)",
		calls: []presetCall{
			{"GET /_ping", "internal/docker/client.go: NewLocalClient, Ping (with API version negotiation)", dockerapi.OpSystemPing},
			{"GET /version", "internal/docker/client.go: detectRuntime (ServerVersion)", dockerapi.OpSystemVersion},
			{"GET /info", "internal/docker/client.go: NewClient (Info)", dockerapi.OpSystemInfo},
			{"GET /containers/json", "internal/docker/client.go: ListContainers", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "internal/docker/client.go: FindContainer, ContainerInspect", dockerapi.OpContainerInspect},
			{"GET /containers/{id}/logs", "internal/docker/client.go: ContainerLogs, ContainerLogsBetweenDates", dockerapi.OpContainerLogs},
			{"GET /containers/{id}/stats?stream=1", "internal/docker/client.go: ContainerStats", dockerapi.OpContainerStats},
			{"GET /events", "internal/docker/client.go: ContainerEvents", dockerapi.OpSystemEvents},
		},
		leftOut: []string{
			"Container actions (`--enable-actions`, internal/docker/client.go: ContainerActions): add `allow: [container.start, container.stop, container.restart, container.delete]`.",
			"The shell (`--enable-shell`, internal/docker/client.go: ContainerAttach, ContainerExec) runs commands in any container: add `allow: [container.attach, container.exec, exec.start, exec.resize]` only if its users may.",
			"Updating containers (internal/docker/client.go: ImagePull, ContainerCreate, ServiceUpdate) is a deployer's job: give it another role.",
			"Logs are what Dozzle is for, and they are not redacted: a container that prints a secret shows it to every Dozzle user.",
		},
	},
	{
		name: "homepage", tool: "Homepage (dockerode)",
		source: "gethomepage/homepage v1.12.3-43-gb2a52ff2a (b2a52ff2a9df1b7e7bc612178f66539606311b84)",
		calls: []presetCall{
			{"GET /containers/json", "src/utils/config/service-helpers.js: servicesFromDocker (listContainers); src/pages/api/docker/status/[...service].js, stats/[...service].js", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "src/pages/api/docker/status/[...service].js (container.inspect)", dockerapi.OpContainerInspect},
			{"GET /containers/{id}/stats?stream=false", "src/pages/api/docker/stats/[...service].js (container.stats)", dockerapi.OpContainerStats},
		},
		leftOut: []string{
			"Swarm services (`swarm: true` in docker.yaml: listServices, getService().inspect, listTasks): add `allow: [service.list, service.inspect, task.list]`.",
		},
	},
	{
		name: "uptime-kuma", tool: "Uptime Kuma's Docker container monitor",
		source: "louislam/uptime-kuma 2.5.3-2-g6398a9581 (6398a9581d1c3c427a7536559f47ccf45dac08b4)",
		calls: []presetCall{
			{"GET /containers/json?all=true", "server/docker.js: testDockerHost", dockerapi.OpContainerList},
			{"GET /containers/{name}/json", "server/model/monitor.js: beat, type docker", dockerapi.OpContainerInspect},
		},
	},
	{
		name: "autoheal", tool: "docker-autoheal",
		source: "willfarrell/docker-autoheal 1.2.0-40-gafb2c8b (afb2c8bb36d8c6edb982e1d08275a460149ad6f0)",
		calls: []presetCall{
			{"GET /containers/json?filters={\"health\":[\"unhealthy\"]}", "docker-entrypoint: get_container_info", dockerapi.OpContainerList},
			{"POST /containers/{id}/restart", "docker-entrypoint: restart_container", dockerapi.OpContainerRestart},
		},
	},
	{
		name: "gitlab-runner", tool: "GitLab Runner's docker executor",
		source: "gitlabhq/gitlab-runner, the GitHub mirror of gitlab-org/gitlab-runner, at 13e64afbcf721243b79266f4bb314df095e225fd (helpers/docker/client.go: the Client interface, every call the docker executor makes)",
		calls: []presetCall{
			{"GET /_ping", "helpers/docker/official_docker_client.go: newOfficialDockerClient (WithAPIVersionNegotiation)", dockerapi.OpSystemPing},
			{"GET /info", "helpers/docker/client.go: Info (executors/docker: the daemon's OS and features)", dockerapi.OpSystemInfo},
			{"GET /images/{name}/json", "helpers/docker/client.go: ImageInspectWithRaw", dockerapi.OpImageInspect},
			{"POST /images/create?fromImage={name}", "helpers/docker/client.go: ImagePullBlocking", dockerapi.OpImagePull},
			{"POST /images/create?fromSrc=-", "helpers/docker/client.go: ImageImportBlocking (the helper image from the runner's own archive)", dockerapi.OpImageImport},
			{"GET /containers/json", "helpers/docker/client.go: ContainerList", dockerapi.OpContainerList},
			{"POST /containers/create", "helpers/docker/client.go: ContainerCreate", dockerapi.OpContainerCreate},
			{"POST /containers/{id}/start", "helpers/docker/client.go: ContainerStart", dockerapi.OpContainerStart},
			{"POST /containers/{id}/kill", "helpers/docker/client.go: ContainerKill", dockerapi.OpContainerKill},
			{"POST /containers/{id}/stop", "helpers/docker/client.go: ContainerStop", dockerapi.OpContainerStop},
			{"GET /containers/{id}/json", "helpers/docker/client.go: ContainerInspect", dockerapi.OpContainerInspect},
			{"POST /containers/{id}/attach", "helpers/docker/client.go: ContainerAttach", dockerapi.OpContainerAttach},
			{"POST /containers/{id}/wait", "helpers/docker/client.go: ContainerWait", dockerapi.OpContainerWait},
			{"GET /containers/{id}/logs", "helpers/docker/client.go: ContainerLogs (service containers' logs)", dockerapi.OpContainerLogs},
			{"DELETE /containers/{id}", "helpers/docker/client.go: ContainerRemove", dockerapi.OpContainerDelete},
			{"POST /containers/{id}/exec", "helpers/docker/client.go: ContainerExecCreate", dockerapi.OpContainerExec},
			{"POST /exec/{id}/start", "helpers/docker/client.go: ContainerExecAttach", dockerapi.OpExecStart},
			{"POST /networks/create", "helpers/docker/client.go: NetworkCreate (FF_NETWORK_PER_BUILD)", dockerapi.OpNetworkCreate},
			{"GET /networks", "helpers/docker/client.go: NetworkList", dockerapi.OpNetworkList},
			{"GET /networks/{id}", "helpers/docker/client.go: NetworkInspect", dockerapi.OpNetworkInspect},
			{"POST /networks/{id}/disconnect", "helpers/docker/client.go: NetworkDisconnect", dockerapi.OpNetworkDisconnect},
			{"DELETE /networks/{id}", "helpers/docker/client.go: NetworkRemove", dockerapi.OpNetworkDelete},
			{"POST /volumes/create", "helpers/docker/client.go: VolumeCreate (cache volumes)", dockerapi.OpVolumeCreate},
			{"GET /volumes/{name}", "helpers/docker/client.go: VolumeInspect", dockerapi.OpVolumeInspect},
			{"DELETE /volumes/{name}", "helpers/docker/client.go: VolumeRemove", dockerapi.OpVolumeDelete},
		},
		leftOut: []string{
			"`privileged = true` (Docker-in-Docker), `cap_add`, `devices` and host `volumes` in config.toml are refused until the role allows them with its `containers:` settings.",
			"Give the role `owner_isolation: true` when anything else uses the daemon: the jobs then see only the runner's containers, volumes and networks.",
		},
	},
	{
		name: "github-actions-runner", tool: "GitHub Actions runner (container jobs, services and container actions, through the docker CLI)",
		source: "actions/runner v2.316.1-395-g258d6c857 (258d6c857db3519913f7deb6004b60172f8043ae)",
		calls: []presetCall{
			{"HEAD /_ping", "src/Runner.Worker/Container/DockerCommandManager.cs: every docker command (API version negotiation)", dockerapi.OpSystemPing},
			{"GET /version", "DockerCommandManager.cs: DockerVersion (docker version)", dockerapi.OpSystemVersion},
			{"POST /auth", "DockerCommandManager.cs: DockerLogin (docker login, for private job and service images)", dockerapi.OpSystemAuth},
			{"POST /images/create?fromImage={name}", "DockerCommandManager.cs: DockerPull (docker pull)", dockerapi.OpImagePull},
			{"POST /build", "DockerCommandManager.cs: DockerBuild (docker build, Dockerfile actions)", dockerapi.OpImageBuild},
			{"POST /containers/create", "DockerCommandManager.cs: DockerCreate, DockerRun (docker create, docker run)", dockerapi.OpContainerCreate},
			{"POST /containers/{id}/attach", "DockerCommandManager.cs: DockerRun (docker run)", dockerapi.OpContainerAttach},
			{"POST /containers/{id}/start", "DockerCommandManager.cs: DockerStart, DockerRun (docker start, docker run)", dockerapi.OpContainerStart},
			{"POST /containers/{id}/wait", "DockerCommandManager.cs: DockerRun (docker run)", dockerapi.OpContainerWait},
			{"DELETE /containers/{id}?force=1", "DockerCommandManager.cs: DockerRemove (docker rm --force)", dockerapi.OpContainerDelete},
			{"GET /containers/{id}/logs", "DockerCommandManager.cs: DockerLogs (docker logs --details)", dockerapi.OpContainerLogs},
			{"GET /containers/json", "DockerCommandManager.cs: DockerPS (docker ps)", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "DockerCommandManager.cs: DockerInspect, DockerPort, DockerLogs (docker inspect, docker port, docker logs)", dockerapi.OpContainerInspect},
			{"POST /networks/create", "DockerCommandManager.cs: DockerNetworkCreate (docker network create)", dockerapi.OpNetworkCreate},
			{"GET /networks/{id}", "DockerCommandManager.cs: DockerNetworkRemove (docker network rm inspects the network first; docker CLI 28.2)", dockerapi.OpNetworkInspect},
			{"DELETE /networks/{id}", "DockerCommandManager.cs: DockerNetworkRemove (docker network rm)", dockerapi.OpNetworkDelete},
			{"POST /networks/prune", "DockerCommandManager.cs: DockerNetworkPrune (docker network prune --filter label=...)", dockerapi.OpNetworkPrune},
			{"POST /containers/{id}/exec", "DockerCommandManager.cs: DockerExec (docker exec)", dockerapi.OpContainerExec},
			{"POST /exec/{id}/start", "DockerCommandManager.cs: DockerExec (docker exec)", dockerapi.OpExecStart},
			{"GET /exec/{id}/json", "DockerCommandManager.cs: DockerExec (docker exec reads the exit code)", dockerapi.OpExecInspect},
		},
		leftOut: []string{
			"`docker build` of a current docker CLI goes through BuildKit's gRPC API: add `allow: [grpc.serve, session.start]` with `builds: {buildkit_grpc: true}`, or run the runner with `DOCKER_BUILDKIT=0`.",
			"The runner bind-mounts its work directory, externals and the tool cache into job containers (`-v /home/runner/_work:/__w` and so on): allow those host paths with `containers.bind_mounts`, or every container job is refused.",
			"Give the role `owner_isolation: true` when anything else uses the daemon.",
		},
	},
	{
		name: "docker-compose", tool: "Docker Compose (docker compose up, down, ps, logs, exec, run, build, pull and the rest of a project's lifecycle)",
		source: "docker/compose v5.5.0-71-gf72979427 (f72979427042620a94dd52ce78b39c68cb02c085)",
		calls: []presetCall{
			{"HEAD /_ping", "the docker CLI's client, before any command (API version negotiation)", dockerapi.OpSystemPing},
			{"GET /version", "the docker CLI's client (docker compose version)", dockerapi.OpSystemVersion},
			{"GET /info", "pkg/compose/compose.go: Info", dockerapi.OpSystemInfo},
			{"GET /events", "pkg/compose/events.go, monitor.go: Events", dockerapi.OpSystemEvents},
			{"GET /containers/json", "pkg/compose (every command finds the project's containers by label): ContainerList", dockerapi.OpContainerList},
			{"GET /containers/{id}/json", "pkg/compose/convergence.go, pre_start.go and others: ContainerInspect", dockerapi.OpContainerInspect},
			{"POST /containers/create", "pkg/compose/convergence.go, pre_start.go: ContainerCreate", dockerapi.OpContainerCreate},
			{"POST /containers/{id}/start", "pkg/compose/convergence.go, executor_ops.go, pre_start.go: ContainerStart", dockerapi.OpContainerStart},
			{"POST /containers/{id}/stop", "pkg/compose/down.go, executor_ops.go: ContainerStop", dockerapi.OpContainerStop},
			{"POST /containers/{id}/restart", "pkg/compose/restart.go: ContainerRestart", dockerapi.OpContainerRestart},
			{"POST /containers/{id}/kill", "pkg/compose/kill.go: ContainerKill", dockerapi.OpContainerKill},
			{"POST /containers/{id}/pause", "pkg/compose/pause.go: ContainerPause", dockerapi.OpContainerPause},
			{"POST /containers/{id}/unpause", "pkg/compose/pause.go: ContainerUnpause", dockerapi.OpContainerUnpause},
			{"POST /containers/{id}/rename", "pkg/compose/executor_ops.go: ContainerRename (recreate)", dockerapi.OpContainerRename},
			{"POST /containers/{id}/wait", "pkg/compose/pre_start.go: ContainerWait; run.go (RunStart)", dockerapi.OpContainerWait},
			{"POST /containers/{id}/attach", "pkg/compose/attach.go: ContainerAttach; attach_service.go (RunAttach), run.go (RunStart)", dockerapi.OpContainerAttach},
			{"POST /containers/{id}/resize", "pkg/compose/attach_service.go (RunAttach), run.go (RunStart): the TTY's size", dockerapi.OpContainerResize},
			{"GET /containers/{id}/logs", "pkg/compose/logs.go, attach.go, pre_start.go: ContainerLogs", dockerapi.OpContainerLogs},
			{"GET /containers/{id}/top", "pkg/compose/top.go: ContainerTop", dockerapi.OpContainerTop},
			{"GET /containers/{id}/stats", "cmd/compose/stats.go (RunStats)", dockerapi.OpContainerStats},
			{"DELETE /containers/{id}", "pkg/compose/remove.go, down.go, convergence.go, executor_ops.go: ContainerRemove", dockerapi.OpContainerDelete},
			{"HEAD /containers/{id}/archive", "pkg/compose/cp.go: ContainerStatPath", dockerapi.OpContainerArchiveHead},
			{"GET /containers/{id}/archive", "pkg/compose/cp.go: CopyFromContainer", dockerapi.OpContainerArchiveGet},
			{"PUT /containers/{id}/archive", "pkg/compose/cp.go, secrets.go, watch.go: CopyToContainer", dockerapi.OpContainerArchivePut},
			{"POST /containers/{id}/exec", "pkg/compose/exec.go, watch.go (RunExec); hook.go: ExecCreate", dockerapi.OpContainerExec},
			{"POST /exec/{id}/start", "pkg/compose/exec.go, watch.go (RunExec); hook.go: ExecCreate", dockerapi.OpExecStart},
			{"POST /exec/{id}/resize", "pkg/compose/exec.go (RunExec with a TTY)", dockerapi.OpExecResize},
			{"GET /exec/{id}/json", "pkg/compose/hook.go, watch.go: ExecInspect; exec.go (RunExec)", dockerapi.OpExecInspect},
			{"GET /images/json", "pkg/compose/image_pruner.go, watch.go: ImageList", dockerapi.OpImageList},
			{"GET /images/{name}/json", "pkg/compose/create.go, image_pruner.go, images.go: ImageInspect", dockerapi.OpImageInspect},
			{"POST /images/create?fromImage={name}", "pkg/compose/pull.go: ImagePull", dockerapi.OpImagePull},
			{"POST /build", "pkg/compose/build_classic.go: ImageBuild", dockerapi.OpImageBuild},
			{"DELETE /images/{name}", "pkg/compose/down.go (--rmi), watch.go: ImageRemove", dockerapi.OpImageDelete},
			{"GET /networks", "pkg/compose/compose.go, create.go, down.go, observed_state.go: NetworkList", dockerapi.OpNetworkList},
			{"GET /networks/{id}", "pkg/compose/create.go, down.go, observed_state.go: NetworkInspect", dockerapi.OpNetworkInspect},
			{"POST /networks/create", "pkg/compose/create.go: NetworkCreate", dockerapi.OpNetworkCreate},
			{"POST /networks/{id}/connect", "pkg/compose/convergence.go, executor_ops.go, pre_start.go: NetworkConnect", dockerapi.OpNetworkConnect},
			{"POST /networks/{id}/disconnect", "pkg/compose/executor_ops.go: NetworkDisconnect", dockerapi.OpNetworkDisconnect},
			{"DELETE /networks/{id}", "pkg/compose/down.go, executor_ops.go: NetworkRemove", dockerapi.OpNetworkDelete},
			{"GET /volumes", "pkg/compose/compose.go, observed_state.go, volumes.go: VolumeList", dockerapi.OpVolumeList},
			{"GET /volumes/{name}", "pkg/compose/create.go, down.go, observed_state.go: VolumeInspect", dockerapi.OpVolumeInspect},
			{"POST /volumes/create", "pkg/compose/create.go: VolumeCreate", dockerapi.OpVolumeCreate},
			{"DELETE /volumes/{name}", "pkg/compose/down.go (-v), executor_ops.go: VolumeRemove", dockerapi.OpVolumeDelete},
		},
		leftOut: []string{
			"`docker compose push` and `publish` (pkg/compose/push.go, publish.go: ImagePush, DistributionInspect with registry credentials): add `allow: [image.push, distribution.inspect]`.",
			"`docker compose commit` and `export` (ContainerCommit, ContainerExport): add `allow: [container.commit, container.export]`.",
			"`docker compose build` through Bake or buildx uses BuildKit's gRPC API: add `allow: [grpc.serve, session.start]` with `builds: {buildkit_grpc: true}`, or build with `DOCKER_BUILDKIT=0`.",
			"A project's bind mounts, `privileged`, `cap_add`, `network_mode: host` and so on need the role's `containers:` settings.",
		},
	},
}

// findPreset returns the preset called name.
func findPreset(name string) (*preset, bool) {
	for i := range presets {
		if presets[i].name == name {
			return &presets[i], true
		}
	}
	return nil, false
}

// set is the operations the preset allows.
func (p *preset) set() dockerapi.OpSet {
	var set dockerapi.OpSet
	for _, c := range p.calls {
		set.Add(c.op)
	}
	return set
}
