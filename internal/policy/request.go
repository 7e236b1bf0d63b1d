package policy

import (
	"fmt"
	"net/url"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// ParseRequest reads a request's route and query the way dockerd will:
// dockerapi.Classify on the escaped path as sent, dockerapi.ParseQuery,
// then dockerapi.Refine. The gateway calls it before reading the body, to
// learn from req.Route.Op.Body() whether there is a JSON body to read and
// pass to SetBody.
//
// Errors wrap dockerapi's: a *dockerapi.PathError or dockerapi.ErrQuery;
// answer them 400.
func ParseRequest(method, escapedPath, rawQuery string) (Request, error) {
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
	return Request{Route: dockerapi.Refine(route, q), Query: q}, nil
}

// SetBody checks and decodes the body of an operation that dockerd reads
// a JSON body for (dockerapi.DecodeBody, at most maxBody bytes;
// dockerapi.DefaultMaxBody when maxBody <= 0) into req.Body. Every JSON
// body is decoded, not only those Decide reads (NeedsBody), so that no
// body with ambiguous keys reaches dockerd.
//
// For an operation dockerd reads no body for, a non-empty body is an
// error: nothing dockerd might read may reach it uninspected. For a raw
// body (archives, build contexts, images), SetBody does nothing: the
// gateway streams those.
//
// Errors wrap dockerapi.ErrBody (dockerapi.ErrBodyTooLarge for 413);
// answer the others 400.
func (req *Request) SetBody(body []byte, maxBody int) error {
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

// NewRequest is ParseRequest and SetBody in one call, for a request whose
// whole body is at hand (policy explain, tests).
func NewRequest(method, escapedPath, rawQuery string, body []byte, maxBody int) (Request, error) {
	req, err := ParseRequest(method, escapedPath, rawQuery)
	if err != nil {
		return Request{}, err
	}
	if err := req.SetBody(body, maxBody); err != nil {
		return Request{}, err
	}
	return req, nil
}
