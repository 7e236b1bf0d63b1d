package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/policy"
)

// lookupLimit bounds an ownership lookup's answer: an inspect of a
// container is a few KiB; 4 MiB leaves room for huge label sets.
const lookupLimit = 4 << 20

// authorize reads the request the way dockerd will, decides on it, runs
// the ownership checks and applies the rewrites. It returns the route and
// true when the request may be forwarded (r is then ready to forward);
// otherwise it has answered the client.
func (g *Gateway) authorize(w http.ResponseWriter, r *http.Request, id *Identity, role string, pol *policy.Policy, rec *audit.Record) (dockerapi.Route, bool) {
	deny := func(status int, msg, reason string) (dockerapi.Route, bool) {
		rec.Decision, rec.Reason = policy.Deny.String(), reason
		writeError(w, status, msg)
		return dockerapi.Route{}, false
	}
	if dockerapi.IsFormContentType(r.Header.Get("Content-Type")) {
		return deny(http.StatusBadRequest, "dockgate: form-encoded request bodies are refused; send JSON", "form-encoded body")
	}
	req, err := policy.ParseRequest(r.Method, r.URL.EscapedPath(), r.URL.RawQuery)
	if errors.Is(err, dockerapi.ErrSlashInName) {
		// No container, exec, volume or network has '/' in its name, so
		// dockerd would answer 404; the docker CLI's inspect relies on
		// that 404 to go on to images ("docker inspect repo/name:tag").
		return deny(http.StatusNotFound, "No such object: "+r.URL.Path, err.Error())
	}
	if err != nil {
		return deny(http.StatusBadRequest, "dockgate: "+err.Error(), err.Error())
	}
	rec.Path, rec.Operation, rec.Target = req.Route.Path, req.Route.Op.String(), req.Route.Target
	if status, err := g.readBody(r, &req, rec); err != nil {
		return deny(status, "dockgate: "+err.Error(), err.Error())
	}
	d := pol.Decide(policy.Identity{CN: id.CN, Groups: id.Groups}, role, req)
	if g.resolveLinks {
		// The daemon is on this host: follow the links in the host paths
		// a create bind-mounts, as the kernel will.
		d.CheckHostPaths(resolveHostPath)
	}
	rec.Decision, rec.Rule, rec.Reason = d.Effect.String(), d.Rule, d.Reason
	if !d.Forward() {
		writeError(w, d.Status, d.Message())
		return req.Route, false
	}
	if status, err := g.checkOwnership(r, &d, &req, id.CN); err != nil {
		rec.Decision, rec.Reason = policy.Deny.String(), err.Error()
		writeError(w, status, err.Error())
		return req.Route, false
	}
	rec.Decision, rec.Rule, rec.Reason = d.Effect.String(), d.Rule, d.Reason
	if !d.Forward() {
		writeError(w, d.Status, d.Message())
		return req.Route, false
	}
	if err := applyRewrites(r, &d, &req); err != nil {
		return deny(http.StatusBadRequest, "dockgate: "+err.Error(), err.Error())
	}
	if d.Effect == policy.WouldDeny {
		g.log.Warn("audit mode: forwarding a request the role would deny", "cn", id.CN, "role", role, "op", req.Route.Op.String(), "reason", d.Reason)
	}
	return req.Route, true
}

// readBody gives the policy what dockerd will read of the body: a JSON
// body is read whole (bounded), checked and decoded, and r then carries
// exactly those bytes; a route without a body may not have one; a raw
// body (archives, build contexts) is streamed as it is, counted.
func (g *Gateway) readBody(r *http.Request, req *policy.Request, rec *audit.Record) (int, error) {
	switch req.Route.Op.Body() {
	case dockerapi.BodyJSON:
		limit := g.material.Load().Config.Limits.MaxJSONBody
		if limit <= 0 {
			limit = dockerapi.DefaultMaxBody // a config that skipped Default
		}
		body, err := readBounded(r.Body, limit)
		rec.BytesIn = int64(len(body))
		if err != nil {
			return bodyStatus(err), err
		}
		if err := dockerapi.CheckJSONContentType(r.Header.Get("Content-Type"), len(body) > 0); err != nil {
			return http.StatusBadRequest, err
		}
		if err := req.SetBody(body, limit); err != nil {
			return bodyStatus(err), err
		}
		setBody(r, body)
	case dockerapi.BodyNone:
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n > 0 {
			return http.StatusBadRequest, fmt.Errorf("%s takes no request body", req.Route.Op)
		}
		setBody(r, nil)
	default:
		r.Body = &countingReader{ReadCloser: r.Body, n: &rec.BytesIn}
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

// setBody makes r carry exactly body, with a Content-Length, whatever
// framing the client used (chunked, Content-Length, both).
func setBody(r *http.Request, body []byte) {
	r.TransferEncoding = nil
	r.Header.Del("Transfer-Encoding")
	r.ContentLength = int64(len(body))
	if len(body) == 0 {
		r.Body = http.NoBody
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
}

// applyRewrites puts the owner filter and label into what is forwarded,
// and re-encodes a JSON body from the value that was inspected.
func applyRewrites(r *http.Request, d *policy.Decision, req *policy.Request) error {
	queryChanged, _, err := d.Rewrite(req)
	if err != nil {
		return err
	}
	if queryChanged {
		r.URL.RawQuery = req.Query.Encode()
	}
	if req.Body == nil || r.ContentLength == 0 && !d.Owner.Label {
		return nil
	}
	body, err := dockerapi.Encode(req.Body)
	if err != nil {
		return err
	}
	setBody(r, body)
	return nil
}

// errLookupFailed answers a failed lookup: the daemon could not
// say who owns an object, so the request is refused (fail closed).
var errLookupFailed = errors.New("dockgate: failed to check who owns the object")

// checkOwnership runs the decision's ownership checks in order. A missing
// or foreign object turns the decision into a denial (Docker's own 404).
// A check with Pin makes r name the object by the ID that was checked; a
// container the body names is recorded for Rewrite to name by its ID.
func (g *Gateway) checkOwnership(r *http.Request, d *policy.Decision, req *policy.Request, cn string) (int, error) {
	for _, c := range d.Owner.Checks {
		id, owner, found, err := g.lookupOwner(r.Context(), c, cn)
		if err != nil {
			g.log.Error("ownership lookup failed", "kind", c.Kind.String(), "ref", c.Ref, "err", err)
			return http.StatusBadGateway, errLookupFailed
		}
		if !found || !owner.Owned(cn) {
			d.DenyOwnership(c)
			if !d.Forward() {
				return 0, nil
			}
			continue
		}
		if c.Pin {
			if p, ok := policy.PinnedPath(req.Route, id); ok {
				r.URL.Path, r.URL.RawPath = p, ""
			}
			continue
		}
		d.Checked(c, id)
	}
	return 0, nil
}

// lookupOwner inspects the object a check names. It returns the object's
// full ID (to pin the request to) and the lookup that says who owns it:
// an exec is owned through its container, and a missing volume a create
// names is created for the caller first.
func (g *Gateway) lookupOwner(ctx context.Context, c policy.OwnerCheck, cn string) (id string, owner policy.Lookup, found bool, err error) {
	l, found, err := g.lookup(ctx, c.Kind, c.LookupPath())
	if err != nil {
		return "", l, false, err
	}
	if !found && c.CreateMissing && c.Kind == policy.KindVolume {
		l, found, err = g.createOwnedVolume(ctx, c.Ref, cn)
		return l.ID, l, found, err
	}
	if found && c.Kind == policy.KindExec {
		container := policy.OwnerCheck{Kind: policy.KindContainer, Ref: l.ContainerID}
		owner, found, err := g.lookup(ctx, policy.KindContainer, container.LookupPath())
		return l.ID, owner, found, err
	}
	return l.ID, l, found, nil
}

// lookup inspects one object. Missing, and an ID prefix that several
// objects share, both count as not found: a client must not learn from
// the answer that objects it may not see exist.
func (g *Gateway) lookup(ctx context.Context, kind policy.ObjectKind, path string) (policy.Lookup, bool, error) {
	status, body, err := g.daemon.call(ctx, http.MethodGet, path, nil)
	switch {
	case err != nil:
		return policy.Lookup{}, false, err
	case status == http.StatusNotFound || isAmbiguousRef(status, body):
		return policy.Lookup{}, false, nil
	case status != http.StatusOK:
		return policy.Lookup{}, false, fmt.Errorf("GET %s: daemon answered %d", path, status)
	}
	l, err := policy.ParseLookup(kind, body)
	return l, err == nil, err
}

// isAmbiguousRef recognises dockerd's answer to an ID prefix that matches
// several objects (500 before Docker 23, 400 after).
func isAmbiguousRef(status int, body []byte) bool {
	return status >= 400 && bytes.Contains(bytes.ToLower(body), []byte("multiple ids found"))
}

func (g *Gateway) createOwnedVolume(ctx context.Context, name, cn string) (policy.Lookup, bool, error) {
	body, err := dockerapi.Encode(policy.NewOwnedVolume(name, cn))
	if err != nil {
		return policy.Lookup{}, false, err
	}
	status, answer, err := g.daemon.call(ctx, http.MethodPost, "/volumes/create", body)
	if err != nil {
		return policy.Lookup{}, false, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return policy.Lookup{}, false, fmt.Errorf("POST /volumes/create: daemon answered %d", status)
	}
	// Another client may have created it first: the answer says whose it is.
	l, err := policy.ParseLookup(policy.KindVolume, answer)
	return l, err == nil, err
}

// countingReader counts the bytes of a streamed request body.
type countingReader struct {
	io.ReadCloser
	n *int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	*c.n += int64(n)
	return n, err
}
