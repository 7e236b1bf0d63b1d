// Package dockerapi owns dockgate's model of the Docker Engine API: how
// dockerd's router reads a request path, which operation each route is, and
// how dockerd decodes request bodies. It is pure: no I/O, no clocks.
//
// # Operations
//
// Every route dockerd registers maps to an Operation named
// "<object>.<action>": the object is the API resource in the singular
// (system, container, exec, checkpoint, image, build, volume, network,
// plugin, swarm, service, node, task, secret, config, distribution, session,
// grpc, debug) and the action is what the route does to it (list, inspect,
// create, update, delete, prune, logs, ...). A few actions have a qualifier
// after a second dot (container.attach.ws, container.archive.get). Routes
// that act on a container's exec instances by container are container.*
// (container.exec creates an exec), routes addressed by exec ID are exec.*.
// POST /build is image.build; POST /plugins/pull is plugin.install; POST
// /images/create is image.pull or, without "fromImage", image.import (see
// Refine). A request dockerd has no route for is OpUnknownRoute,
// "unknown_route", which no glob matches. docs/OPERATIONS.md lists every
// operation with its routes; TestOperationsDoc keeps it current.
//
// Policies name operations with globs ("container.*", "*.list") and compile
// them into an OpSet once (CompileGlobs); testing a request is then one bit.
//
// # Reading paths as dockerd does
//
// dockerd serves the API with gorilla/mux, registering each route twice,
// as "/v{version:[0-9.]+}" + path and as the bare path, in a fixed router
// order; the first route whose method and path match wins. The router
// matches the decoded r.URL.Path and first answers 301 to any path that
// path.Clean would change ("//", "/./", "/../"). Classify mirrors this over
// the same route table and refuses, with a *PathError, whatever dockerd
// would redirect or whatever a less careful reader could take for another
// path: encoded slashes, double encoding, control characters, backslashes,
// trailing slashes, '/' in names that cannot hold one, malformed versions
// and versions below 1.24. It does not allocate for a path without
// percent-escapes.
//
// # Bodies
//
// dockerd decodes JSON bodies with encoding/json into moby's API types,
// which matches object keys to struct fields case-insensitively and keeps
// the last of duplicate keys. CheckJSON refuses any body where that could
// matter (duplicate and case-variant keys at any depth, keys that Go
// releases fold differently) before the Decode functions decode it into the
// same moby types. The gateway forwards Encode of the decoded value, so the
// daemon acts on exactly what the policy inspected, including changes such
// as an owner label. Query strings are parsed once with ParseQuery, which
// refuses the spellings net/url silently drops.
package dockerapi
