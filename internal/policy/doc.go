// Package policy owns dockgate's authorization: the roles and client rules
// of the serve config compiled into an immutable Policy, and Evaluate,
// which answers for one request whether it may reach the Docker daemon,
// why, and exactly what to forward. The policy does no I/O of its own:
// what it needs from the daemon's host (inspect an object, create an owned
// volume, resolve a host path) comes in through the Host interface, so
// every decision runs the same in the gateway, in `policy explain` (a dry
// run) and in unit tests (a fake).
//
// # Roles
//
// A role allows operations (dockerapi.Operation) by glob, compiled once
// into a bitset, so that a decision on an operation whose path says
// everything costs one map lookup and a few bit tests, without allocating.
// The built-in roles admin, read-only, operator and deployer exist
// without being declared and cannot be redefined (builtin.go).
// A role may instead start from a preset (preset.go): the operations one
// tool that talks to the Docker socket calls (Traefik, Watchtower, GitLab
// Runner, ...), each listed with the file of the tool's source that calls
// it, which docs/PRESETS.md is generated from. A preset only allows
// operations; the role's guardrail settings apply as they would without it.
//
// # Guardrails
//
// Being allowed an operation is not enough when its body or query can make
// a container root on the host: a privileged container, a bind mount of
// "/", the host's PID namespace. For those operations Evaluate inspects the
// body dockerapi decoded (the same moby types dockerd decodes) and the
// parsed query, and denies anything that escapes the container unless the
// role's containers: or builds: section allows exactly that. A denial
// names the field and the setting that would allow it:
//
//	dockgate: denied container.create for ci-7 (role ci): HostConfig.Privileged
//	is not allowed; allow it with roles.ci.containers.privileged: true
//
// The checks err towards denying: a security option, mount type or
// namespace mode they do not recognise as harmless is denied.
//
// # Images and builds
//
// A role's images.allow admits the images its creates, services, pulls
// and builds name, by reference normalized as dockerd normalizes it
// (images.go). Writing a tag is image.tag's capability wherever a request
// names one: commit, build, import, load (tagwrite.go). A classic build's
// Dockerfile is read from the context tar in its body, with BuildKit's
// parser, for the images it names and what ADD fetches from the host's
// network (buildctx.go, dockerfile.go); the Verdict's Stream is then the
// body to forward, cut if a later tar entry would replace the Dockerfile.
//
// # BuildKit
//
// BuildKit's gRPC API (grpc.serve) is one hijacked connection on which a
// build is started by a Solve call. Evaluate allows the connection and
// sets Verdict.InspectBuildKit; the gateway then decodes each Solve
// request and JudgeSolve decides it with the role's builds: settings
// (entitlements, network mode, cache backends) as the classic builder's
// query is decided. The Dockerfile of such a build comes through the
// client's BuildKit session (session.start): for a role without
// builds.remote_sources Evaluate sets Verdict.InspectSession, and
// JudgeSessionDockerfile decides each file the daemon's Dockerfile
// frontend fetches as a classic build's Dockerfile is decided.
//
// # Owner isolation
//
// A role with owner_isolation sees only what its clients created.
// Evaluate stamps the owner label on creates, filters lists and events,
// and looks up every container, exec, volume or network the request names
// (Host.Inspect): an object that is missing or not the caller's is
// answered with Docker's own "not found", so that its existence is not
// leaked. The forwarded request names each checked object by the full ID
// the lookup found, so that dockerd acts on the object that was checked.
//
// # What a request reaches
//
// For every role but admin, Evaluate also looks up the existing
// containers, execs and volumes a request names and judges them
// (reach.go). The gateway's own objects (Object.Gateway, set by the Host;
// a container labelled SelfLabel) and any container that mounts a Docker
// socket are out of reach. What a request borrows from another object (an
// exec, archive or attach into a container, VolumesFrom, a shared
// namespace, a bind volume's host path) must be what the role could create
// itself: an existing container's HostConfig goes through the same
// guardrails as a create body.
//
// # Modes
//
// A role in audit mode is decided as in enforce mode, but a denial comes
// back as WouldDeny: the gateway forwards the request and records
// would_deny in the audit log.
//
// # One request through the gateway
//
// The gateway takes one Policy per request (the one in force when the
// request started), calls Evaluate once with the request as sent and its
// Host, and applies the Verdict: a denial is answered with Status and
// Message; otherwise Path, RawQuery and Body (or the client's streamed
// body, for raw bodies, or Stream when Evaluate read part of it) are
// forwarded, and the daemon's answer has the environment values Redact
// names replaced (answer.go: inspect answers carry every container's
// Config.Env, where secrets live). The Verdict also fills the audit
// record.
package policy
