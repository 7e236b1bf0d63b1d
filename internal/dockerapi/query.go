package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"strings"
)

// ErrQuery is wrapped by every error ParseQuery returns.
var ErrQuery = errors.New("query refused")

// ParseQuery parses a raw query string once, as dockerd's handlers do
// (r.ParseForm, which is url.ParseQuery), but refuses what they would read
// in two ways: net/url skips a pair with a ';' or a bad escape and keeps the
// rest, and a handler that reads r.FormValue without checking the error
// then sees whatever pairs remain. Read values the way dockerd does: Get
// (the first value) for single parameters, the slice for repeated ones
// ("t", "extrahosts", "names", "changes", "platform").
func ParseQuery(rawQuery string) (url.Values, error) {
	if strings.IndexByte(rawQuery, ';') >= 0 {
		return nil, fmt.Errorf("%w: ';' in the query (dockerd's parser drops such pairs)", ErrQuery)
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuery, err)
	}
	return q, nil
}

// QueryBool reads a boolean parameter as dockerd's httputils.BoolValue:
// absent, "", "0", "no", "false" and "none" (any case, spaces trimmed) are
// false; anything else, "off" included, is true.
func QueryBool(q url.Values, key string) bool {
	switch strings.ToLower(strings.TrimSpace(q.Get(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}

// Refine sharpens an operation that depends on the query, not only on the
// path: POST /images/create pulls when "fromImage" is set and otherwise
// imports from the URL in "fromSrc" or from the body ("fromSrc=-"), so it is
// image.pull or image.import. Other routes are returned unchanged.
func Refine(r Route, q url.Values) Route {
	if r.Op == OpImagePull && q.Get("fromImage") == "" {
		r.Op = OpImageImport
	}
	return r
}

// BuildQuery holds the POST /build parameters a policy checks, read as
// dockerd's newImageBuildOptions reads them.
type BuildQuery struct {
	// NetworkMode is "networkmode": "host" runs RUN steps in the host's
	// network namespace.
	NetworkMode string
	// Remote is "remote": a URL or Git repository dockerd fetches itself as
	// the build context.
	Remote string
	// CgroupParent is "cgroupparent".
	CgroupParent string
	// Isolation is "isolation".
	Isolation string
	// ExtraHosts are the "extrahosts" values.
	ExtraHosts []string
	// SecurityOpt are the "securityopt" values (dockerd refuses any on Linux).
	SecurityOpt []string
	// Ulimits is the raw "ulimits" JSON.
	Ulimits string
	// Outputs is the raw "outputs" JSON.
	Outputs string
	// Tags are the "t" values.
	Tags []string
	// Version is "version": "1" for the classic builder, "2" for BuildKit.
	Version string
	// Session is "session", the BuildKit session the build uses.
	Session string
	// Pull is "pull".
	Pull bool
}

// ParseBuildQuery reads the build parameters from a parsed query.
func ParseBuildQuery(q url.Values) BuildQuery {
	return BuildQuery{
		NetworkMode:  q.Get("networkmode"),
		Remote:       q.Get("remote"),
		CgroupParent: q.Get("cgroupparent"),
		Isolation:    q.Get("isolation"),
		ExtraHosts:   q["extrahosts"],
		SecurityOpt:  q["securityopt"],
		Ulimits:      q.Get("ulimits"),
		Outputs:      q.Get("outputs"),
		Tags:         q["t"],
		Version:      q.Get("version"),
		Session:      q.Get("session"),
		Pull:         QueryBool(q, "pull"),
	}
}

// Filters is the "filters" query parameter of lists, events and prunes:
// filter name -> set of values, e.g. {"label": {"dockgate.owner=ci-7": true}}.
type Filters map[string]map[string]bool

// ParseFilters decodes a "filters" value as dockerd's filters.FromJSON
// does: the current {"name": {"value": true}} form, or the legacy
// {"name": ["value"]} form. Duplicate or case-variant keys are refused as in
// request bodies. An empty string is no filters.
func ParseFilters(raw string) (Filters, error) {
	f := Filters{}
	if raw == "" {
		return f, nil
	}
	if err := CheckJSON([]byte(raw), 0, JSONObject); err != nil {
		return nil, fmt.Errorf("filters: %w", err)
	}
	if err := json.Unmarshal([]byte(raw), &f); err == nil {
		return f, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(raw), &legacy); err != nil {
		return nil, fmt.Errorf("%w: invalid filters: %w", ErrQuery, err)
	}
	f = Filters{}
	for name, values := range legacy {
		set := make(map[string]bool, len(values))
		for _, v := range values {
			set[v] = true
		}
		f[name] = set
	}
	return f, nil
}

// Add puts value in the filter called name.
func (f Filters) Add(name, value string) {
	if f[name] == nil {
		f[name] = map[string]bool{}
	}
	f[name][value] = true
}

// Encode returns the filters in the current JSON form, for the "filters"
// query parameter.
func (f Filters) Encode() string {
	b, _ := json.Marshal(map[string]map[string]bool(f)) // maps of strings always marshal
	return string(b)
}

// CheckJSONContentType applies dockerd's httputils.CheckForJSON to a
// request's Content-Type: a request with a body must say application/json
// (parameters allowed); one without a body may say nothing.
func CheckJSONContentType(contentType string, hasBody bool) error {
	if contentType == "" && !hasBody {
		return nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("%w: malformed Content-Type %q", ErrBody, contentType)
	}
	if mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q, want application/json", ErrBody, contentType)
	}
	return nil
}

// IsFormContentType reports whether net/http would parse a body of this
// Content-Type into r.Form: application/x-www-form-urlencoded (r.ParseForm)
// or multipart/form-data (r.FormValue). Body values then override or add to
// query parameters in dockerd's handlers, unseen by a query check, so the
// gateway refuses such bodies on every route. It errs on the side of true
// for spellings net/http might still accept.
func IsFormContentType(contentType string) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && isFormMediaType(mt) {
		return true
	}
	ct := strings.ToLower(strings.TrimSpace(contentType))
	return strings.HasPrefix(ct, "application/x-www-form-urlencoded") ||
		strings.HasPrefix(ct, "multipart/")
}

func isFormMediaType(mt string) bool {
	return mt == "application/x-www-form-urlencoded" || strings.HasPrefix(mt, "multipart/")
}
