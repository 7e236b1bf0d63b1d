package policy

import (
	"fmt"
	"net/url"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// NewRequest reads a request the way dockerd will, for Decide: the route
// (dockerapi.Classify on the escaped path, as sent), the query
// (dockerapi.ParseQuery, then dockerapi.Refine) and, for an operation
// with a JSON body, the body checked and decoded (dockerapi.DecodeBody,
// at most maxBody bytes; dockerapi.DefaultMaxBody when maxBody <= 0).
//
// body is only read for JSON operations; pass nil for others, whose body
// the gateway streams (BodyRaw) or refuses (BodyNone). A non-empty body
// for an operation that takes none is an error, so that nothing dockerd
// might read reaches it uninspected.
//
// Errors wrap dockerapi's: a *dockerapi.PathError, dockerapi.ErrQuery or
// dockerapi.ErrBody (dockerapi.ErrBodyTooLarge for 413); answer them 400.
func NewRequest(method, escapedPath, rawQuery string, body []byte, maxBody int) (Request, error) {
	route, err := dockerapi.Classify(method, escapedPath)
	if err != nil {
		return Request{}, err
	}
	var q url.Values
	if rawQuery != "" {
		if q, err = dockerapi.ParseQuery(rawQuery); err != nil {
			return Request{}, err
		}
	}
	req := Request{Route: dockerapi.Refine(route, q), Query: q}
	switch req.Route.Op.Body() {
	case dockerapi.BodyJSON:
		if req.Body, err = dockerapi.DecodeBody(req.Route.Op, body, maxBody); err != nil {
			return Request{}, err
		}
	case dockerapi.BodyNone:
		if len(body) > 0 {
			return Request{}, fmt.Errorf("%w: %s takes no request body", dockerapi.ErrBody, req.Route.Op)
		}
	}
	return req, nil
}
