// Package policy owns dockgate's authorization: the roles of the serve
// config compiled into an immutable Policy, and Decide, which answers for
// one request whether it may reach the Docker daemon, why, and what the
// gateway must do to it on the way. It is pure: no I/O, no clocks.
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
// "/", the host's PID namespace. For those operations Decide inspects the
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
// # Owner isolation
//
// A role with owner_isolation sees only what its clients created. The
// policy cannot look objects up, so a Decision says what the gateway must
// do: stamp the owner label on creates and filter lists and events (both
// pure rewrites, see Decision.Rewrite), and check that every container,
// exec, volume or network the request names belongs to the caller
// (Decision.Owner.Checks), answering an unowned object with Docker's own
// "not found" so that its existence is not leaked.
//
// # Modes
//
// A role in audit mode is decided as in enforce mode, but a denial comes
// back as WouldDeny: the gateway forwards the request and records
// would_deny in the audit log.
//
// # One request through the gateway
//
//  1. ParseRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery): 400 on
//     error. Refuse form-encoded bodies (dockerapi.IsFormContentType).
//  2. By req.Route.Op.Body(): for BodyJSON read the whole body, bounded
//     (413 above the limit), check dockerapi.CheckJSONContentType and call
//     req.SetBody (400 on error); for BodyNone refuse any body byte; for
//     BodyRaw stream the body as is.
//  3. d := p.Decide(identity, role, req). Deny: answer d.Status with
//     d.Message().
//  4. For each of d.Owner.Checks in order, look the object up; when it is
//     missing or not the caller's, d.DenyOwnership(c) and, unless
//     d.Forward(), answer d.Status with d.Message() (dockerd's own 404).
//     After a check with Pin, forward PinnedPath(req.Route, lookup.ID).
//  5. d.Rewrite(&req); forward req.Query.Encode() if the query changed and
//     dockerapi.Encode(req.Body) as the JSON body.
//  6. Write the audit record with d.Effect, d.Rule and d.Reason.
package policy
