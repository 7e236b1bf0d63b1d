package policy

import (
	"fmt"
	"net/url"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// parseRequest reads a request's route and query the way dockerd will:
// dockerapi.Classify on the escaped path as sent, dockerapi.ParseQuery,
// then dockerapi.Refine. req.Route.Op.Body() then says whether there is a
// JSON body to read and pass to setBody.
//
// Errors wrap dockerapi's: a *dockerapi.PathError or dockerapi.ErrQuery;
// answer them 400.
func parseRequest(method, escapedPath, rawQuery string) (request, error) {
	route, err := dockerapi.Classify(method, escapedPath)
	if err != nil {
		return request{}, err
	}
	var q url.Values
	if rawQuery != "" {
		if q, err = dockerapi.ParseQuery(rawQuery); err != nil {
			return request{}, err
		}
	}
	return request{Route: dockerapi.Refine(route, q), Query: q}, nil
}

// setBody checks and decodes the body of an operation that dockerd reads
// a JSON body for (dockerapi.DecodeBody, at most maxBody bytes;
// dockerapi.DefaultMaxBody when maxBody <= 0) into req.Body. Every JSON
// body is decoded, not only those decide reads (needsBody), so that no
// body with ambiguous keys reaches dockerd.
//
// For an operation dockerd reads no body for, a non-empty body is an
// error: nothing dockerd might read may reach it uninspected. For a raw
// body (archives, build contexts, images), setBody does nothing: the
// gateway streams those.
//
// Errors wrap dockerapi.ErrBody (dockerapi.ErrBodyTooLarge for 413);
// answer the others 400.
func (req *request) setBody(body []byte, maxBody int) error {
	switch op := req.Route.Op; op.Body() {
	case dockerapi.BodyJSON:
		v, err := dockerapi.DecodeBody(op, body, maxBody)
		if err != nil {
			return err
		}
		req.Body = v
	case dockerapi.BodyNone:
		if len(body) > 0 {
			return fmt.Errorf("%w: %s takes no request body", dockerapi.ErrBody, op)
		}
	}
	return nil
}
