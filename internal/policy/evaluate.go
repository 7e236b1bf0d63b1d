package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// Host is what Evaluate needs from the daemon's host: the gateway
// implements it over its daemon client and the filesystem it shares with
// the daemon, `policy explain` with a dry run. Evaluate calls it only for
// what the request itself names (and the named volumes of a container it
// reaches into), in order, at most once per object, and stops at the
// first answer that decides.
type Host interface {
	// Inspect looks up the object ref names the way dockerd resolves it
	// for the request (an ID, a unique ID prefix or a name), and marks
	// the gateway's own (Object.Gateway). It returns ErrNotFound when
	// dockerd knows no such object, or several.
	Inspect(ctx context.Context, kind ObjectKind, ref string) (Object, error)
	// CreateVolume creates the named volume with the given labels and
	// returns the volume dockerd answers with: an existing one of that
	// name, whoever created it, is returned as it is.
	CreateVolume(ctx context.Context, name string, labels map[string]string) (Object, error)
	// ResolvePath resolves the symbolic links of an absolute, clean host
	// path as the kernel will follow them when dockerd mounts it. A host
	// that does not see the daemon's filesystem returns the path as is.
	ResolvePath(path string) (string, error)
}

// ErrNotFound is Host.Inspect's answer for an object dockerd would not
// find (or find several of).
var ErrNotFound = errors.New("no such object")

// Object is what an inspect answer says about ownership.
type Object struct {
	// ID is the object's full ID (a volume's name).
	ID string
	// Name is the object's name as dockerd shows it ("/web" for a
	// container); empty when the host did not say.
	Name string
	// Labels are the object's labels (nil for an exec).
	Labels map[string]string
	// ContainerID is an exec's container.
	ContainerID string
	// Gateway: the host knows the object as the gateway's own: the
	// container it runs in, or a volume a gateway container mounts (its
	// state). No role but admin may reach it.
	Gateway bool
	// HostConfig is a container's host configuration as dockerd's inspect
	// answers it: the privileges it runs with and what it mounts. Nil for
	// the other kinds.
	HostConfig *container.HostConfig
	// Driver and Options are a volume's driver and driver options.
	Driver  string
	Options map[string]string
	// Privileged: an exec runs privileged.
	Privileged bool
}

// Input is one request as the client sent it, after the TLS handshake
// said who sent it.
type Input struct {
	Identity identity.Identity
	Method   string
	// Path is the escaped path as sent (URL.EscapedPath()); RawQuery the
	// query as sent.
	Path, RawQuery string
	ContentType    string
	// Body is the request body. Evaluate reads a JSON body whole
	// (bounded by the policy's limit) and one byte of a body the route
	// takes none of; a raw body is left for the gateway to stream, but for
	// a build's context, which it reads up to the Dockerfile and hands
	// back whole as Verdict.Stream.
	Body io.Reader
}

// Verdict is Evaluate's answer: everything the gateway needs to answer or
// forward the request, and everything the audit record says about it.
type Verdict struct {
	// Effect: Deny (answer Status with Message), Allow or WouldDeny
	// (forward Path, RawQuery and Body).
	Effect Effect
	// Route is the request as dockerd routes it; Op is OpUnknownRoute
	// when the path could not be read.
	Route dockerapi.Route
	// Role is the role the client rules gave the identity; Matched is
	// false when none did.
	Role    string
	Matched bool
	// Rule, Reason, Field and Fix say why, as decision does.
	Rule, Reason, Field, Fix string
	// Status and Message are the answer to a denied request (Docker's
	// error shape). Message says "would deny" for WouldDeny.
	Status  int
	Message string
	// Path and RawQuery are what to send the daemon: the path pinned to
	// the IDs the ownership checks found, the query with owner filters.
	Path, RawQuery string
	// Body is the JSON body to send (the decoded body encoded again, with
	// its rewrites); empty for a route without a body. A raw body
	// (Route.Op.Body() == dockerapi.BodyRaw) is not read: the gateway
	// streams the client's.
	Body []byte
	// BytesIn counts the body bytes Evaluate read.
	BytesIn int64
	// Stream, when set, is the raw body to forward in place of the
	// client's: the BytesIn bytes Evaluate read of it, then the rest,
	// checked as it passes (a build context whose Dockerfile was read). A
	// read error from it means the rest must not reach the daemon: cut the
	// request.
	Stream io.Reader
	// Owner is what owner isolation did: labels, filters and checks.
	Owner OwnerPlan
	// Redact is what the gateway removes from the daemon's answer before
	// relaying it: the values of the environment variables an inspect
	// answer carries, for a role with containers.redact_env. Zero for a
	// denied request.
	Redact Redaction
	// InspectBuildKit: the request is grpc.serve, BuildKit's gRPC API, and
	// the gateway must read each Solve call on the stream and have
	// JudgeSolve decide it (false for admin and for a role with
	// builds.buildkit_grpc, whose calls pass uninspected).
	InspectBuildKit bool
	// InspectSession: the request is session.start, a client's BuildKit
	// session, and the gateway must read each Dockerfile the daemon's
	// Dockerfile frontend fetches through it and have
	// JudgeSessionDockerfile decide it (a role that reads BuildKit calls
	// and lacks builds.remote_sources).
	InspectSession bool
	// Err is the host failure behind a 502 (for the log; the client gets
	// a fixed sentence).
	Err error
}

// Forward reports whether the gateway forwards the request.
func (v *Verdict) Forward() bool { return v.Effect != Deny }

// errLookupFailed answers a request whose ownership lookup failed: the
// daemon could not say who owns an object, so the request is refused.
const errLookupFailed = "dockgate: failed to check who owns the object"

// errReachFailed answers a request whose object lookup failed: the daemon
// could not say what the object the request acts through is.
const errReachFailed = "dockgate: failed to check the object the request acts on"

// Evaluate decides one request of a client: the client rules give its
// role, then the route and query are read as dockerd reads them, a JSON
// body is read (bounded) and decoded, the role's allow list and
// guardrails judge it, the host paths it bind-mounts are resolved, owner
// isolation looks up every object it names, and the rewrites (owner
// label and filter, objects pinned to their IDs) make what is forwarded.
// It never fails: anything it cannot judge is denied, a failed lookup with
// 502.
func (p *Policy) Evaluate(ctx context.Context, in Input, host Host) Verdict {
	v := Verdict{Path: in.Path, RawQuery: in.RawQuery}
	v.Role, v.Matched = p.RoleOf(in.Identity)
	req, err := parseRequest(in.Method, in.Path, in.RawQuery)
	if err == nil {
		v.Route = req.Route
	}
	switch {
	case !v.Matched:
		message, reason := p.unmatched(in.Identity)
		return v.refuse(http.StatusForbidden, message, reason)
	case dockerapi.IsFormContentType(in.ContentType):
		return v.refuse(http.StatusBadRequest, "dockgate: form-encoded request bodies are refused; send JSON", "form-encoded body")
	case errors.Is(err, dockerapi.ErrSlashInName):
		// No container, exec, volume or network has '/' in its name, so
		// dockerd would answer 404; the docker CLI's inspect relies on
		// that 404 to go on to images ("docker inspect repo/name:tag").
		return v.refuse(http.StatusNotFound, "No such object: "+unescape(in.Path), err.Error())
	case err != nil:
		return v.refuse(http.StatusBadRequest, "dockgate: "+err.Error(), err.Error())
	}
	if status, err := p.readBody(in, &req, &v); err != nil {
		return v.refuse(status, "dockgate: "+err.Error(), err.Error())
	}
	p.readBuild(in, &req, &v)
	d := p.decide(in.Identity, v.Role, req)
	d.checkHostPaths(host.ResolvePath)
	refs := d.reachRefs(&req)
	if len(d.Owner.Checks) > 0 || len(refs) > 0 {
		host = &memoHost{Host: host} // both may look up the same objects
	}
	if d.forward() {
		if err := d.checkOwnership(ctx, host, &req); err != nil {
			v.Err = err
			return v.refuse(http.StatusBadGateway, errLookupFailed, "ownership lookup failed: "+err.Error())
		}
	}
	if d.forward() {
		if err := d.checkReach(ctx, host, &req, refs, p.sockets); err != nil {
			v.Err = err
			return v.refuse(http.StatusBadGateway, errReachFailed, "object lookup failed: "+err.Error())
		}
	}
	v.take(&d)
	if !d.forward() {
		return v
	}
	r := p.roles[v.Role]
	v.Redact = r.redaction(v.Route.Op)
	v.InspectBuildKit = v.Route.Op == dockerapi.OpGRPCServe && r.inspectsBuildKit()
	v.InspectSession = v.Route.Op == dockerapi.OpSessionStart && r.inspectsSession()
	if err := d.applyRewrites(&req, &v); err != nil {
		return v.refuse(http.StatusBadRequest, "dockgate: "+err.Error(), err.Error())
	}
	return v
}

// RoleOf returns the role the first matching clients: entry gives id;
// ok is false when none matches. An entry whose hosts: selectors do not
// match this gateway's host is skipped.
func (p *Policy) RoleOf(id identity.Identity) (role string, ok bool) {
	for _, c := range p.clients {
		if c.AppliesOn(p.host) && matches(c, id) {
			return c.Role, true
		}
	}
	return "", false
}

// scopedOut returns the first clients: entry that matches id but applies
// on other hosts only, for the refusal of a client no entry lets in here.
func (p *Policy) scopedOut(id identity.Identity) (int, bool) {
	for i, c := range p.clients {
		if !c.AppliesOn(p.host) && matches(c, id) {
			return i, true
		}
	}
	return -1, false
}

// unmatched is the answer to a client no clients: entry lets in: the
// message, and the reason for the audit log.
func (p *Policy) unmatched(id identity.Identity) (message, reason string) {
	i, ok := p.scopedOut(id)
	if !ok {
		return unmatchedMessage(id), "no clients: entry matches"
	}
	r := p.clients[i]
	selectors := strings.Join(r.Hosts, ",")
	r.Hosts = nil // said apart below
	reason = fmt.Sprintf("clients[%d] applies only on hosts %s", i, selectors)
	who := fmt.Sprintf("CN=%q groups=%v (serial %s)", id.CN, id.Groups, id.Serial)
	if id.Peer != nil {
		who = id.Peer.String()
	}
	return fmt.Sprintf("dockgate: access denied for %s on host %q (%s): clients[%d] (%s) applies only on hosts matching %s; use a gateway whose host matches, or widen the entry's hosts: in the gateway config",
		who, p.host.Name, p.host.LabelString(), i, r, selectors), reason
}

func unmatchedMessage(id identity.Identity) string {
	if id.Peer != nil {
		return "dockgate: access denied for " + id.Peer.String() +
			": no clients: entry matches; add one with uid:, user: or unix_group: in the gateway config"
	}
	return fmt.Sprintf("dockgate: access denied for CN=%q groups=%v (serial %s): no clients: entry matches this identity; add one with cn: or group: in the gateway config",
		id.CN, id.Groups, id.Serial)
}

func unescape(p string) string {
	if u, err := url.PathUnescape(p); err == nil {
		return u
	}
	return p
}

// refuse makes v a denial the gateway answers itself.
func (v Verdict) refuse(status int, message, reason string) Verdict {
	v.Effect, v.Status, v.Message, v.Reason = Deny, status, message, reason
	v.Rule, v.Field, v.Fix = "", "", ""
	return v
}

// take copies a decision's outcome into the verdict.
func (v *Verdict) take(d *decision) {
	v.Effect, v.Rule, v.Reason, v.Field, v.Fix = d.Effect, d.Rule, d.Reason, d.Field, d.Fix
	v.Status, v.Message, v.Owner = d.Status, d.message(), d.Owner
}

// readBody gives the policy what dockerd will read of the body: a JSON
// body is read whole (bounded), checked and decoded; a route without a
// body may not have one; a raw body (archives, build contexts) is left
// for the gateway to stream.
func (p *Policy) readBody(in Input, req *request, v *Verdict) (int, error) {
	body := in.Body
	if body == nil {
		body = http.NoBody
	}
	switch req.Route.Op.Body() {
	case dockerapi.BodyJSON:
		data, err := readBounded(body, p.maxJSONBody)
		v.BytesIn = int64(len(data))
		if err != nil {
			return bodyStatus(err), err
		}
		if err := dockerapi.CheckJSONContentType(in.ContentType, len(data) > 0); err != nil {
			return http.StatusBadRequest, err
		}
		if err := req.setBody(data, p.maxJSONBody); err != nil {
			return bodyStatus(err), err
		}
		v.Body = data
	case dockerapi.BodyNone:
		if body == http.NoBody {
			break // net/http's body of a request without one
		}
		var one [1]byte
		if n, _ := io.ReadFull(body, one[:]); n > 0 {
			return http.StatusBadRequest, fmt.Errorf("%s takes no request body", req.Route.Op)
		}
	}
	return 0, nil
}

// readBounded reads all of body up to max bytes; more is ErrBodyTooLarge.
func readBounded(body io.Reader, max int) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(body, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("failed to read the request body: %w", err)
	}
	if len(data) > max {
		return nil, fmt.Errorf("%w (limit %d bytes)", dockerapi.ErrBodyTooLarge, max)
	}
	return data, nil
}

func bodyStatus(err error) int {
	if errors.Is(err, dockerapi.ErrBodyTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// buildInput is what a build's body says: the Dockerfile's facts, or why
// they could not be read.
type buildInput struct {
	facts *dockerfileFacts
	err   error
}

// readBuild reads the Dockerfile of a build whose context is the body,
// for the role's checks on what the build fetches (guardBuildSources).
// The built-in admin is not checked, and a build whose context dockerd
// takes elsewhere (query remote) has nothing to read here.
func (p *Policy) readBuild(in Input, req *request, v *Verdict) {
	r := p.roles[v.Role]
	if req.Route.Op != dockerapi.OpImageBuild || r == nil || r.unrestricted || !r.allow.Has(req.Route.Op) || req.Query.Get("remote") != "" {
		return
	}
	body := in.Body
	if body == nil {
		body = http.NoBody
	}
	var stream io.Reader
	req.Build, stream, v.BytesIn = readBuildInput(body, req.Query, p.maxBuildPrefix)
	v.Stream = stream
}

// readBuildInput reads a build's context from body and its Dockerfile's
// facts; it returns the stream to forward and how much of body it read.
func readBuildInput(body io.Reader, q url.Values, limit int) (*buildInput, io.Reader, int64) {
	ctx, err := readBuildContext(body, q.Get("dockerfile"), limit)
	b := &buildInput{err: err}
	if err == nil {
		b.facts, b.err = analyzeDockerfile(ctx.Dockerfile, q.Get("buildargs"))
	}
	return b, ctx.Stream, int64(ctx.Read)
}
