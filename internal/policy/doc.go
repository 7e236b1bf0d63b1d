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
// # BuildKit
//
// BuildKit's gRPC API (grpc.serve) is one hijacked connection on which a
// build is started by a Solve call. Evaluate allows the connection and
// sets Verdict.InspectBuildKit; the gateway then decodes each Solve
// request and JudgeSolve decides it with the role's builds: settings
// (entitlements, network mode, cache backends) as the classic builder's
// query is decided.
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
// body, for raw bodies) are forwarded, and the daemon's answer has the
// environment values Redact names replaced (answer.go: inspect answers
// carry every container's Config.Env, where secrets live). The Verdict
// also fills the audit record.
package policy
