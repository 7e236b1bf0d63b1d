package dockerapi

import "strings"

// MinAPIVersion is the oldest API version dockgate lets through. Before
// 1.24, POST /containers/{id}/start could carry a HostConfig that no
// create-time check would see; dockerd itself refuses versions below 1.24
// (api.MinSupportedAPIVersion), so nothing legitimate is lost.
const MinAPIVersion = "1.24"

// minAPIMajor and minAPIMinor are MinAPIVersion as numbers.
const (
	minAPIMajor = 1
	minAPIMinor = 24
)

// maxVersionDigits bounds each part of a version: dockerd parses the parts
// with strconv.Atoi and reads an overflowing part as 0, so a long part could
// compare differently here and there. Four digits is far beyond any version.
const maxVersionDigits = 4

// Route is how dockerd reads a request: the operation it serves and the
// objects the path names.
type Route struct {
	// Op is the operation; OpUnknownRoute when dockerd has no route for the
	// method and path (it would answer 404).
	Op Operation
	// Version is the API version of the "/v1.xx" prefix, "" without one
	// (dockerd then uses its default, newest version).
	Version string
	// Path is the decoded path without the version prefix, as dockerd's
	// router matches it: "/containers/abc/json".
	Path string
	// Target is the path's first variable: the container, exec, image,
	// volume, network, plugin, service, node, task, secret or config it
	// names, or the pprof profile. Empty when the path names none.
	Target string
	// Checkpoint is the checkpoint name of checkpoint.delete.
	Checkpoint string
}

// PathError is why Classify refuses a path: dockerd would redirect it, read
// it differently from a plain reading, or it is a spelling no client needs.
type PathError struct {
	reason string
}

func (e *PathError) Error() string { return "path refused: " + e.reason }

// The reasons Classify refuses a path. They are values, so returning one
// does not allocate and errors.Is tells them apart.
var (
	ErrNotAbsolute     = &PathError{"it does not start with '/'"}
	ErrBadEscape       = &PathError{"malformed percent-encoding"}
	ErrEncodedSlash    = &PathError{"encoded slash (%2F) in the path"}
	ErrEncodedPercent  = &PathError{"encoded '%' (%25) in the path"}
	ErrControlChar     = &PathError{"control character in the path"}
	ErrBackslash       = &PathError{"backslash in the path"}
	ErrQueryInPath     = &PathError{"'?' or '#' in the path"}
	ErrDoubleSlash     = &PathError{"empty path segment (dockerd would redirect)"}
	ErrDotSegment      = &PathError{"'.' or '..' segment (dockerd would redirect)"}
	ErrTrailingSlash   = &PathError{"trailing slash"}
	ErrSlashInName     = &PathError{"'/' in a container, exec, volume or network name"}
	ErrEmptyName       = &PathError{"empty object name"}
	ErrBadVersion      = &PathError{"malformed API version (want /v<major>.<minor>)"}
	ErrVersionTooOld   = &PathError{"API version below " + MinAPIVersion}
	ErrMethodMalformed = &PathError{"malformed method"}
)

// Classify reads a request the way dockerd's router does and returns its
// route, or a *PathError when dockerd would redirect the path or could read
// it differently from this reading.
//
// escapedPath is the request path as sent, percent-encoding intact: pass
// r.URL.EscapedPath() (or the path part of r.RequestURI), without the query.
// Classify decodes it exactly once, as net/http does for r.URL.Path, which
// is what dockerd's gorilla/mux router matches (moby does not set
// UseEncodedPath or SkipClean). Forward the request with its URL path
// unchanged: dockerd then reads the same decoded path, so it routes to
// Route.Op with Route.Target. "/v%31.41/containers/json" therefore reads as
// version 1.41, as dockerd reads it.
//
// Refused: paths not starting with '/', malformed or "%2F" / "%25" escapes,
// control characters, backslashes, '?' or '#' after decoding, empty, "." or
// ".." segments (gorilla/mux would answer 301 to the cleaned path), trailing
// slashes outside the routes that have one, '/' in container, exec, volume
// and network names, empty names, malformed versions and versions below
// MinAPIVersion. "/v1" is such a version: dockerd reads it as 1.0 and
// refuses it too. Versions newer than dockgate knows are classified; dockerd
// decides whether it speaks them.
//
// A method or path dockerd has no route for gives OpUnknownRoute, not an
// error. Classify does not allocate unless the path has percent-escapes.
func Classify(method, escapedPath string) (Route, error) {
	if method == "" {
		return Route{}, ErrMethodMalformed
	}
	path, err := decodePath(escapedPath)
	if err != nil {
		return Route{}, err
	}
	if err := checkClean(path); err != nil {
		return Route{}, err
	}
	version, rest, err := splitVersion(path)
	if err != nil {
		return Route{}, err
	}
	rt := Route{Version: version, Path: rest}
	r, v1, v2 := lookup(method, rest)
	if r == nil {
		if err := checkTrailingSlash(rest); err != nil {
			return Route{}, err
		}
		return rt, nil
	}
	if err := checkVars(r, rest, v1, v2); err != nil {
		return Route{}, err
	}
	rt.Op = r.op
	if r.op != OpSystemOptions {
		rt.Target, rt.Checkpoint = v1, v2
	}
	return rt, nil
}

// lookup returns the first route, in registration order, that serves method
// and path, with its variables.
func lookup(method, path string) (r *route, v1, v2 string) {
	routes := candidates(method, path)
	for i := range routes {
		if a, b, ok := routes[i].match(path); ok {
			return &routes[i], a, b
		}
	}
	return nil, "", ""
}

// checkVars refuses variables dockerd would accept but no client needs and
// that make the name ambiguous to look up: empty names, names with a
// trailing slash, and '/' in names that never have one.
func checkVars(r *route, path, v1, v2 string) error {
	if r.nvars == 0 {
		return nil
	}
	if r.op == OpSystemOptions {
		// The OPTIONS handler only answers CORS preflights; it reads no name.
		return nil
	}
	if v1 == "" {
		return ErrEmptyName
	}
	if strings.HasSuffix(path, "/") {
		return ErrTrailingSlash
	}
	if r.slashFree && (strings.IndexByte(v1, '/') >= 0 || strings.IndexByte(v2, '/') >= 0) {
		return ErrSlashInName
	}
	return nil
}

// checkTrailingSlash gives a clearer reason for an unknown route that is a
// known one plus a slash.
func checkTrailingSlash(path string) error {
	if len(path) > 1 && strings.HasSuffix(path, "/") {
		return ErrTrailingSlash
	}
	return nil
}

// decodePath percent-decodes p the way net/url does for URL.Path, refusing
// what dockerd could read differently from us. It returns p itself when p
// has no escapes.
func decodePath(p string) (string, error) {
	if p == "" || p[0] != '/' {
		return "", ErrNotAbsolute
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "", ErrBadEscape
			}
			switch unhex(p[i+1])<<4 | unhex(p[i+2]) {
			case '/':
				return "", ErrEncodedSlash
			case '%':
				return "", ErrEncodedPercent
			}
			n++
			i += 2
		case c < 0x20 || c == 0x7f || c == ' ':
			// net/http refuses these in a request line already.
			return "", ErrControlChar
		}
	}
	if n == 0 {
		return p, nil
	}
	b := make([]byte, 0, len(p)-2*n)
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			b = append(b, unhex(p[i+1])<<4|unhex(p[i+2]))
			i += 2
			continue
		}
		b = append(b, p[i])
	}
	return string(b), nil
}

// checkClean refuses decoded paths that gorilla/mux would redirect (its
// cleanPath: path.Clean, keeping a trailing slash) and characters no Engine
// API path needs that intermediaries read in different ways.
func checkClean(p string) error {
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c < 0x20 || c == 0x7f:
			return ErrControlChar
		case c == '\\':
			return ErrBackslash
		case c == '?' || c == '#':
			return ErrQueryInPath
		case c == '/':
			// Look at the segment that follows this slash.
			seg := p[i+1:]
			if j := strings.IndexByte(seg, '/'); j >= 0 {
				seg = seg[:j]
				if seg == "" {
					return ErrDoubleSlash
				}
			}
			if seg == "." || seg == ".." {
				return ErrDotSegment
			}
		}
	}
	return nil
}

// splitVersion splits a "/v<version>/" prefix off a clean path, as the
// router's "/v{version:[0-9.]+}" matcher does, and checks the version.
func splitVersion(p string) (version, rest string, err error) {
	if len(p) < 3 || p[1] != 'v' {
		return "", p, nil
	}
	end := 2
	for end < len(p) && (p[end] >= '0' && p[end] <= '9' || p[end] == '.') {
		end++
	}
	if end == 2 || end == len(p) || p[end] != '/' {
		// Not a version prefix ("/version", "/volumes", "/v1.41" alone):
		// the router reads it as an unversioned path.
		return "", p, nil
	}
	version = p[2:end]
	major, minor, ok := parseVersion(version)
	if !ok {
		return "", "", ErrBadVersion
	}
	if major < minAPIMajor || major == minAPIMajor && minor < minAPIMinor {
		return "", "", ErrVersionTooOld
	}
	return version, p[end:], nil
}

// parseVersion accepts only "<major>.<minor>" with canonical decimal numbers
// (no leading zeros, at most maxVersionDigits digits each): the only form
// clients send, and one that dockerd's comparison reads the same way.
func parseVersion(v string) (major, minor int, ok bool) {
	dot := strings.IndexByte(v, '.')
	if dot < 0 {
		// "/v1" reads as version 1 (1.0) in dockerd: well-formed but old.
		major, ok = parseVersionPart(v)
		return major, 0, ok
	}
	major, ok1 := parseVersionPart(v[:dot])
	minor, ok2 := parseVersionPart(v[dot+1:])
	return major, minor, ok1 && ok2
}

func parseVersionPart(s string) (int, bool) {
	if s == "" || len(s) > maxVersionDigits || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
