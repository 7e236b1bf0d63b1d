package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The policy tests send requests through `dockgate serve` with the roles of
// policyConfig to the real test daemon. For every bypass attempt they
// check both what the client got (a refusal, with its status and message)
// and, asking the daemon directly, that the daemon never acted on it.

// exchange is one bypass attempt: bytes written on one connection and
// what must come back.
type exchange struct {
	name   string
	client string // ciClient unless set
	// request returns the bytes to write; marker names everything the
	// attempt would create (container name, label value, volume name).
	request func(marker string) string
	// want are the responses, in order; after them the gateway must say
	// nothing more on the connection (or close it).
	want []wantResponse
	// audit are the decisions of the audit lines the attempt must add,
	// one per request the gateway read (requests net/http refuses before
	// the gateway sees them have none).
	audit []string
	// check, when set, checks the daemon state the attempt aimed at.
	check func(t *testing.T)
}

// wantResponse is a status and a part of the message that must be in the
// answer.
type wantResponse struct {
	status int
	msg    string
}

// runExchanges runs the attempts one after another, each on its own
// connection, checking the answers, the audit log and the daemon.
func (p *policyEnv) runExchanges(t *testing.T, attempts []exchange) {
	t.Helper()
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			client := a.client
			if client == "" {
				client = ciClient
			}
			marker := newMarker()
			before := p.waitQuietAudit(t)
			t0 := time.Now()
			conn := p.dialRaw(t, client)
			conn.write(a.request(marker))
			got := conn.readN(len(a.want), 250*time.Millisecond)
			for i, w := range a.want {
				if i >= len(got) {
					t.Errorf("response %d: none (the gateway closed or said nothing), want %d %q", i+1, w.status, w.msg)
					continue
				}
				if got[i].Status != w.status || !got[i].says(w.msg) {
					t.Errorf("response %d: got %s\nwant %d with %q", i+1, got[i], w.status, w.msg)
				}
			}
			for _, extra := range got[min(len(got), len(a.want)):] {
				t.Errorf("unexpected further response: %s", extra)
			}
			lines := p.auditSince(t, before, len(a.audit))
			if len(lines) != len(a.audit) {
				t.Errorf("audit: %d new lines, want %d:\n%s", len(lines), len(a.audit), joinLines(lines))
			}
			for i := range min(len(lines), len(a.audit)) {
				if lines[i].Decision != a.audit[i] || lines[i].CN != client {
					t.Errorf("audit line %d: %s, want decision %s for %s", i+1, lines[i], a.audit[i], client)
				}
				if i < len(got) && lines[i].Status != got[i].Status {
					t.Errorf("audit line %d: status %d, the client got %d", i+1, lines[i].Status, got[i].Status)
				}
			}
			p.daemon.assertNeverActed(t, marker, t0)
			if a.check != nil {
				a.check(t)
			}
		})
	}
}

func joinLines(lines []auditLine) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + l.String() + "\n")
	}
	return b.String()
}

// Common answers.
var (
	deniedPrivileged = wantResponse{http.StatusForbidden,
		"dockgate: denied container.create for ci-7 (role ci): HostConfig.Privileged is not allowed; allow it with roles.ci.containers.privileged: true"}
	deny = []string{"deny"}
)

// post is a POST with a JSON body and a Content-Length.
func post(target, body string) string {
	return httpRequest(http.MethodPost, target, body, jsonType)
}

// privileged is the HostConfig member of a privileged create.
const privileged = `,"HostConfig":{"Privileged":true}`

// createAt is a privileged container create (named and labelled with the
// marker) sent to target, which ends with the path (the query is added).
func createAt(image, path string) func(string) string {
	return func(m string) string {
		return post(path+"?name="+m, createBody(image, m, privileged))
	}
}

// TestPolicyRefusesBypasses sends, as the ci role, requests that try to
// get a privileged (or otherwise escaping) container past the policy by
// the way the path, the body or the framing is written.
func TestPolicyRefusesBypasses(t *testing.T) {
	p := startPolicyEnv(t)
	img := p.d.Image()
	create := func(extra string) func(string) string {
		return func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, extra))
		}
	}
	badPath := func(reason string) wantResponse {
		return wantResponse{http.StatusBadRequest, "dockgate: path refused: " + reason}
	}
	noRoute := wantResponse{http.StatusForbidden, "dockgate: denied unknown_route for ci-7 (role ci): dockerd has no route for"}
	noRouteBody := wantResponse{http.StatusBadRequest, "dockgate: unknown_route takes no request body"}

	t.Run("paths", func(t *testing.T) {
		p.runExchanges(t, []exchange{
			{name: "version prefix v1.41", request: createAt(img, "/v1.41/containers/create"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "no version prefix", request: createAt(img, "/containers/create"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "version prefix v1.24", request: createAt(img, "/v1.24/containers/create"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "version prefix v1", request: createAt(img, "/v1/containers/create"), want: []wantResponse{badPath("API version below 1.24")}, audit: deny},
			{name: "version prefix v1.23", request: createAt(img, "/v1.23/containers/create"), want: []wantResponse{badPath("API version below 1.24")}, audit: deny},
			{name: "version prefix v01.41", request: createAt(img, "/v01.41/containers/create"), want: []wantResponse{badPath("malformed API version")}, audit: deny},
			{name: "encoded version prefix", request: createAt(img, "/v%31.41/containers/create"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "encoded letters", request: createAt(img, "/v1.41/%63ontainers/%63reate"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "encoded slash", request: createAt(img, "/v1.41/containers%2Fcreate"), want: []wantResponse{badPath("encoded slash")}, audit: deny},
			{name: "encoded slash lower case", request: createAt(img, "/v1.41%2fcontainers/create"), want: []wantResponse{badPath("encoded slash")}, audit: deny},
			{name: "encoded percent", request: createAt(img, "/v1.41/containers/%2563reate"), want: []wantResponse{badPath("encoded '%'")}, audit: deny},
			{name: "leading double slash", request: createAt(img, "//containers/create"), want: []wantResponse{badPath("empty path segment")}, audit: deny},
			{name: "double slash after version", request: createAt(img, "/v1.41//containers/create"), want: []wantResponse{badPath("empty path segment")}, audit: deny},
			{name: "double slash inside", request: createAt(img, "/v1.41/containers//create"), want: []wantResponse{badPath("empty path segment")}, audit: deny},
			{name: "dot segment", request: createAt(img, "/v1.41/./containers/create"), want: []wantResponse{badPath("'.' or '..' segment")}, audit: deny},
			{name: "dot-dot segment", request: createAt(img, "/v1.41/images/../containers/create"), want: []wantResponse{badPath("'.' or '..' segment")}, audit: deny},
			{name: "encoded dot-dot segment", request: createAt(img, "/v1.41/images/%2e%2e/containers/create"), want: []wantResponse{badPath("'.' or '..' segment")}, audit: deny},
			{name: "trailing dot segment", request: createAt(img, "/v1.41/containers/create/."), want: []wantResponse{badPath("'.' or '..' segment")}, audit: deny},
			{name: "trailing slash", request: createAt(img, "/v1.41/containers/create/"), want: []wantResponse{badPath("trailing slash")}, audit: deny},
			{name: "backslash", request: createAt(img, `/v1.41\containers/create`), want: []wantResponse{badPath("backslash")}, audit: deny},
			{name: "encoded NUL", request: createAt(img, "/v1.41/containers/create%00"), want: []wantResponse{badPath("control character")}, audit: deny},
			{name: "encoded question mark", request: createAt(img, "/v1.41/containers/create%3Fx"), want: []wantResponse{badPath("'?' or '#'")}, audit: deny},
			{name: "upper-case version", request: createAt(img, "/V1.41/containers/create"), want: []wantResponse{noRouteBody}, audit: deny},
			{name: "upper-case path", request: createAt(img, "/v1.41/Containers/create"), want: []wantResponse{noRouteBody}, audit: deny},
			{name: "upper-case path without a body", request: func(m string) string {
				return httpRequest(http.MethodGet, "/v1.41/Containers/json", "")
			}, want: []wantResponse{noRoute}, audit: deny},
			{name: "absolute-form target", request: createAt(img, "http://docker/v1.41/containers/create"), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "lower-case method", request: func(m string) string {
				return httpRequest("post", "/v1.41/containers/create?name="+m, createBody(img, m, privileged), jsonType)
			}, want: []wantResponse{noRouteBody}, audit: deny},
			{name: "semicolon in the query", request: func(m string) string {
				return post("/v1.41/containers/create?x=1;name="+m, createBody(img, m, privileged))
			}, want: []wantResponse{{http.StatusBadRequest, "';' in the query"}}, audit: deny},
		})
	})

	dupKey := wantResponse{http.StatusBadRequest, "dockgate: body refused: duplicate key"}
	ambiguous := wantResponse{http.StatusBadRequest, "dockgate: body refused: key with a character some Go versions fold to ASCII"}
	legacy := func(field string) wantResponse {
		return wantResponse{http.StatusForbidden, "dockgate: denied container.create for ci-7 (role ci): " + field + " is not allowed"}
	}
	t.Run("bodies", func(t *testing.T) {
		p.runExchanges(t, []exchange{
			{name: "duplicate key", request: create(`,"HostConfig":{"Privileged":false,"Privileged":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "case-variant duplicate key", request: create(`,"HostConfig":{"Privileged":false,"privileged":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "case-variant key alone", request: create(`,"HostConfig":{"privileged":true}`), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "upper-case key alone", request: create(`,"HostConfig":{"PRIVILEGED":true}`), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "case-variant HostConfig key", request: create(`,"hostconfig":{"Privileged":true}`), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "two HostConfig objects", request: create(`,"HostConfig":{},"HostConfig":{"Privileged":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "two case-variant HostConfig objects", request: create(`,"HostConfig":{},"hostConfig":{"Privileged":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "unicode-escaped key", request: create(`,"HostConfig":{"Privil\u0065ged":true}`), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "unicode-escaped duplicate key", request: create(`,"HostConfig":{"Privileged":false,"Privil\u0065ged":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "unicode-escaped upper-case duplicate key", request: create(`,"HostConfig":{"Privileged":false,"\u0050RIVILEGED":true}`), want: []wantResponse{dupKey}, audit: deny},
			{name: "unicode-escaped HostConfig key", request: create(`,"Host\u0043onfig":{"Privileged":true}`), want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "long s in a key (escaped)", request: create(`,"HostConfig":{"Bind\u017f":["/:/host"]}`), want: []wantResponse{ambiguous}, audit: deny},
			{name: "long s in a key (UTF-8)", request: create(`,"HostConfig":{"ſecurityOpt":["seccomp=unconfined"]}`), want: []wantResponse{ambiguous}, audit: deny},
			{name: "Kelvin sign in a key", request: create(`,"HostConfig":{"Lin\u212As":["x:y"],"Privileged":true}`), want: []wantResponse{ambiguous}, audit: deny},
			{name: "second JSON value after the body", request: func(m string) string {
				return post("/v1.41/containers/create?name="+m, createBody(img, m, "")+`{"HostConfig":{"Privileged":true}}`)
			}, want: []wantResponse{{http.StatusBadRequest, "content after the JSON value"}}, audit: deny},
			{name: "array body", request: func(m string) string {
				return post("/v1.41/containers/create?name="+m, "["+createBody(img, m, privileged)+"]")
			}, want: []wantResponse{{http.StatusBadRequest, "want a JSON object"}}, audit: deny},
			{name: "byte order mark", request: func(m string) string {
				return post("/v1.41/containers/create?name="+m, "\ufeff"+createBody(img, m, privileged))
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: body refused"}}, audit: deny},
			{name: "privileged as a string", request: create(`,"HostConfig":{"Privileged":"true"}`), want: []wantResponse{{http.StatusBadRequest, "not a valid Engine API body"}}, audit: deny},
			{name: "legacy top-level Privileged", request: create(`,"Privileged":true`), want: []wantResponse{legacy("Privileged")}, audit: deny},
			{name: "legacy top-level privileged (lower case)", request: create(`,"privileged":true`), want: []wantResponse{legacy("Privileged")}, audit: deny},
			{name: "legacy top-level Privileged beside HostConfig", request: create(`,"HostConfig":{},"Privileged":true`), want: []wantResponse{legacy("Privileged")}, audit: deny},
			{name: "legacy top-level Binds", request: create(`,"Binds":["/:/host"]`), want: []wantResponse{{http.StatusForbidden, `Binds[0] mounts host path "/", which is outside the allowed bind paths`}}, audit: deny},
			{name: "legacy top-level Binds beside HostConfig", request: create(`,"HostConfig":{"Binds":[]},"Binds":["/:/host"]`), want: []wantResponse{{http.StatusForbidden, `Binds[0] mounts host path "/"`}}, audit: deny},
			{name: "legacy top-level CapAdd", request: create(`,"CapAdd":["SYS_ADMIN"]`), want: []wantResponse{{http.StatusForbidden, `CapAdd adds "SYS_ADMIN" (CAP_SYS_ADMIN), which is not allowed`}}, audit: deny},
			{name: "legacy top-level PidMode", request: create(`,"PidMode":"host"`), want: []wantResponse{{http.StatusForbidden, "PidMode is host (the host's pid namespace), which is not allowed"}}, audit: deny},
			{name: "legacy top-level Privileged with a null HostConfig", request: create(`,"HostConfig":null,"Privileged":true`), want: []wantResponse{legacy("Privileged")}, audit: deny},
			{name: "form-encoded create", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "Image="+img+"&HostConfig.Privileged=true",
					"Content-Type: application/x-www-form-urlencoded")
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: form-encoded request bodies are refused; send JSON"}}, audit: deny},
			{name: "multipart create", request: func(m string) string {
				body := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + m + "\r\n--b--\r\n"
				return httpRequest(http.MethodPost, "/v1.41/containers/create", body, "Content-Type: multipart/form-data; boundary=b")
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: form-encoded request bodies are refused"}}, audit: deny},
			{name: "form-encoded build parameters", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?t="+m, "networkmode=host&remote=http://127.0.0.1:1/"+m,
					"Content-Type: Application/X-WWW-Form-Urlencoded; charset=utf-8")
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: form-encoded request bodies are refused"}}, audit: deny},
			{name: "JSON body as text/plain", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, privileged), "Content-Type: text/plain")
			}, want: []wantResponse{{http.StatusBadRequest, `Content-Type "text/plain", want application/json`}}, audit: deny},
			{name: "oversized body", request: func(m string) string {
				pad := `,"Env":["PAD=` + strings.Repeat("A", 4<<20) + `"]` + privileged
				return post("/v1.41/containers/create?name="+m, createBody(img, m, pad))
			}, want: []wantResponse{{http.StatusRequestEntityTooLarge, "dockgate: body refused: too large"}}, audit: deny},
			{name: "oversized chunked body", request: func(m string) string {
				pad := `,"Env":["PAD=` + strings.Repeat("A", 4<<20) + `"]` + privileged
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, pad), 64<<10),
					jsonType, "Transfer-Encoding: chunked")
			}, want: []wantResponse{{http.StatusRequestEntityTooLarge, "dockgate: body refused: too large"}}, audit: deny},
		})
	})

	goBadRequest := wantResponse{http.StatusBadRequest, "400 Bad Request"}
	bodyRequired := wantResponse{http.StatusBadRequest, "dockgate: body refused: empty: a container create body is required"}
	privReq := func(m string) string { return createAt(img, "/v1.41/containers/create")(m) }
	t.Run("framing", func(t *testing.T) {
		p.runExchanges(t, []exchange{
			{name: "chunked", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, privileged), 16),
					jsonType, "Transfer-Encoding: chunked")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "chunked with extensions and a trailer", request: func(m string) string {
				body := createBody(img, m, privileged)
				framed := fmt.Sprintf("%x;a=b\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n", len(body), body)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, framed, jsonType, "Transfer-Encoding: chunked", "Trailer: X-Trailer")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "chunked spelt Chunked", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, privileged), 7),
					jsonType, "Transfer-Encoding: Chunked")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "Content-Length 0 then a JSON body", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "", jsonType, "Content-Length: 0") +
					createBody(img, m, privileged) + "\r\n\r\n"
			}, want: []wantResponse{bodyRequired, goBadRequest}, audit: deny},
			{name: "Content-Length 0 then a whole request", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "", jsonType, "Content-Length: 0") + privReq(m)
			}, want: []wantResponse{bodyRequired, deniedPrivileged}, audit: []string{"deny", "deny"}},
			{name: "Content-Length shorter than the body", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "", jsonType, "Content-Length: 2") +
					`{}` + strings.TrimPrefix(createBody(img, m, privileged), "{") + "\r\n\r\n"
			}, want: []wantResponse{{http.StatusBadRequest, "no container configuration"}, goBadRequest}, audit: deny},
			{name: "Content-Length and chunked: chunked wins", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, privileged), 32),
					jsonType, "Content-Length: 2", "Transfer-Encoding: chunked")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			// RFC 9112 6.1: the connection closes after the answer, so the
			// bytes after the chunks never become a next request.
			{name: "Content-Length and chunked: the connection closes after the answer", request: func(m string) string {
				rest := "0\r\n\r\n" + privReq(m)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, rest,
					jsonType, fmt.Sprintf("Content-Length: %d", len(rest)), "Transfer-Encoding: chunked")
			}, want: []wantResponse{bodyRequired}, audit: deny},
			{name: "Transfer-Encoding identity", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, privileged),
					jsonType, "Transfer-Encoding: identity")
			}, want: []wantResponse{{http.StatusNotImplemented, "Unsupported transfer encoding"}}},
			{name: "Transfer-Encoding gzip, chunked", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, privileged), 32),
					jsonType, "Transfer-Encoding: gzip, chunked")
			}, want: []wantResponse{{http.StatusNotImplemented, "Unsupported transfer encoding"}}},
			{name: "two Transfer-Encoding headers", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, chunked(createBody(img, m, privileged), 32),
					jsonType, "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")
			}, want: []wantResponse{{http.StatusNotImplemented, "Unsupported transfer encoding"}}},
			{name: "two different Content-Lengths", request: func(m string) string {
				body := createBody(img, m, privileged)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, body,
					jsonType, "Content-Length: 2", fmt.Sprintf("Content-Length: %d", len(body)))
			}, want: []wantResponse{goBadRequest}},
			{name: "signed Content-Length", request: func(m string) string {
				body := createBody(img, m, privileged)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, body, jsonType, fmt.Sprintf("Content-Length: +%d", len(body)))
			}, want: []wantResponse{goBadRequest}},
			{name: "Expect 100-continue", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, privileged), jsonType, "Expect: 100-continue")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "HTTP/1.0", request: func(m string) string {
				return strings.Replace(privReq(m), " HTTP/1.1\r\n", " HTTP/1.0\r\n", 1)
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "Upgrade header on a create", request: func(m string) string {
				body := createBody(img, m, privileged)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, body, jsonType, "Connection: Upgrade", "Upgrade: tcp")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "HTTP/1.0 ignores chunked: the chunks are not a body", request: func(m string) string {
				return "POST /v1.41/containers/create?name=" + m + " HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
					chunked(createBody(img, m, privileged), 10)
			}, want: []wantResponse{bodyRequired}, audit: deny},
			{name: "bare LF line ends", request: func(m string) string {
				return strings.ReplaceAll(privReq(m), "\r\n", "\n")
			}, want: []wantResponse{deniedPrivileged}, audit: deny},
			{name: "obsolete line folding in Content-Length", request: func(m string) string {
				return "POST /v1.41/containers/create?name=" + m + " HTTP/1.1\r\nHost: x\r\n" + jsonType + "\r\nContent-Length: 2\r\n 0\r\n\r\n" +
					createBody(img, m, privileged)
			}, want: []wantResponse{goBadRequest}},
			{name: "space before the colon of Transfer-Encoding", request: func(m string) string {
				return "POST /v1.41/containers/create?name=" + m + " HTTP/1.1\r\nHost: x\r\n" + jsonType + "\r\nTransfer-Encoding : chunked\r\nContent-Length: 2\r\n\r\n{}" +
					chunked(createBody(img, m, privileged), 10)
			}, want: []wantResponse{goBadRequest}},
			{name: "absolute-form target with a dot-dot segment", request: createAt(img, "http://docker/v1.41/images/../containers/create"),
				want: []wantResponse{{http.StatusBadRequest, "dockgate: path refused: '.' or '..' segment"}}, audit: deny},
			{name: "CONNECT", request: func(m string) string { return "CONNECT docker:2375 HTTP/1.1\r\nHost: docker:2375\r\n\r\n" },
				want: []wantResponse{{http.StatusBadRequest, "dockgate: path refused: it does not start with '/'"}}, audit: deny},
			{name: "HTTP/2 preface", request: func(m string) string { return "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" },
				want: []wantResponse{{http.StatusBadRequest, "dockgate: path refused: it does not start with '/'"}}, audit: deny},
			{name: "pipelined: allowed list, then privileged create", request: func(m string) string {
				return httpRequest(http.MethodGet, "/v1.41/containers/json", "") + privReq(m)
			}, want: []wantResponse{{http.StatusOK, "["}, deniedPrivileged}, audit: []string{"allow", "deny"}},
			{name: "pipelined: forwarded create, then privileged create", request: func(m string) string {
				missing := createBody("no-such-image-"+m, m, "")
				return post("/v1.41/containers/create?name="+m, missing) + privReq(m)
			}, want: []wantResponse{{http.StatusNotFound, "No such image"}, deniedPrivileged}, audit: []string{"allow", "deny"}},
			{name: "pipelined: three requests, privileged in the middle", request: func(m string) string {
				return httpRequest(http.MethodGet, "/v1.41/_ping", "") + privReq(m) + httpRequest(http.MethodGet, "/v1.41/version", "")
			}, want: []wantResponse{{http.StatusOK, "OK"}, deniedPrivileged, {http.StatusOK, "ApiVersion"}}, audit: []string{"allow", "deny", "allow"}},
			{name: "pipelined after a stream request the daemon refused", request: func(m string) string {
				start := httpRequest(http.MethodPost, "/v1.41/exec/"+m+"/start", `{"Detach":false,"Tty":false}`, jsonType,
					"Connection: Upgrade", "Upgrade: tcp")
				return start + privReq(m)
			}, want: []wantResponse{{http.StatusNotFound, "No such exec instance"}, deniedPrivileged}, audit: []string{"allow", "deny"}},
			// The body of a refused request is skipped, never read as the
			// next request, whatever it holds.
			{name: "a refused build whose body is a request", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?networkmode=host&t="+m, privReq(m), "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "query networkmode=host"}}, audit: deny},
			{name: "a refused chunked build whose body is a request", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?networkmode=host&t="+m, chunked(privReq(m), 100),
					"Content-Type: application/x-tar", "Transfer-Encoding: chunked")
			}, want: []wantResponse{{http.StatusForbidden, "query networkmode=host"}}, audit: deny},
			{name: "a refused build expecting 100-continue whose body is a request", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?networkmode=host&t="+m, privReq(m), "Content-Type: application/x-tar", "Expect: 100-continue")
			}, want: []wantResponse{{http.StatusForbidden, "query networkmode=host"}}, audit: deny},
			{name: "a start with a body that is a request", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/"+m+"/start", privReq(m), jsonType)
			}, want: []wantResponse{{http.StatusBadRequest, "container.start takes no request body"}}, audit: deny},
			{name: "a list with a body that is a request", request: func(m string) string {
				return httpRequest(http.MethodGet, "/v1.41/containers/json", privReq(m))
			}, want: []wantResponse{{http.StatusBadRequest, "container.list takes no request body"}}, audit: deny},
			{name: "a refused create whose unread rest is a request", request: func(m string) string {
				body := createBody(img, m, privileged)
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, body+strings.Repeat(" ", 10)+privReq(m),
					jsonType, fmt.Sprintf("Content-Length: %d", len(body)+10+len(privReq(m))))
			}, want: []wantResponse{{http.StatusBadRequest, "content after the JSON value"}}, audit: deny},
			{name: "gzip-encoded body", request: func(m string) string {
				var buf bytes.Buffer
				zw := gzip.NewWriter(&buf)
				zw.Write([]byte(createBody(img, m, privileged)))
				zw.Close()
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, buf.String(), jsonType, "Content-Encoding: gzip")
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: body refused: wrong top-level JSON value"}}, audit: deny},
		})
	})

	deniedField := func(field, fix string) wantResponse {
		return wantResponse{http.StatusForbidden, "dockgate: denied container.create for ci-7 (role ci): " + field + " is not allowed; allow it with roles.ci." + fix}
	}
	bind := func(i int, src, why string) wantResponse {
		return wantResponse{http.StatusForbidden, fmt.Sprintf(`HostConfig.Binds[%d] mounts host path %q, which %s`, i, src, why)}
	}
	hostNS := func(field, ns string) wantResponse {
		return wantResponse{http.StatusForbidden, fmt.Sprintf("HostConfig.%s is host (the host's %s namespace), which is not allowed; allow it by adding %s to roles.ci.containers.host_namespaces", field, ns, ns)}
	}
	otherNS := func(field, mode string) wantResponse {
		return wantResponse{http.StatusForbidden, fmt.Sprintf(`HostConfig.%s joins another container's namespace (%q), which is not allowed; allow it with roles.ci.containers.container_namespaces: true`, field, mode)}
	}
	capAdd := func(spelling, canon string) wantResponse {
		if spelling == canon {
			return wantResponse{http.StatusForbidden, fmt.Sprintf(`HostConfig.CapAdd adds %q, which is not allowed`, spelling)}
		}
		return wantResponse{http.StatusForbidden, fmt.Sprintf(`HostConfig.CapAdd adds %q (%s), which is not allowed`, spelling, canon)}
	}
	secOpt := func(opt string) wantResponse {
		return wantResponse{http.StatusForbidden, fmt.Sprintf(`HostConfig.SecurityOpt has %q, which weakens confinement; allow it with roles.ci.containers.unconfined: true`, opt)}
	}
	localOpt := "is a local-driver mount option (it can mount any host path or device), which is not allowed; allow it with roles.ci.containers.volume_driver_options: true"
	// Links a client could plant under the allowed path, for instance
	// from a container that bind-mounts it.
	escape := filepath.Join(p.bindDir, "escape")
	dangling := filepath.Join(p.bindDir, "dangling")
	for link, target := range map[string]string{escape: "/etc", dangling: filepath.Join(p.bindDir, "not-yet")} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("guardrails", func(t *testing.T) {
		p.runExchanges(t, []exchange{
			{name: "bind through a symbolic link to /etc", request: create(`,"HostConfig":{"Binds":["` + escape + `:/x"]}`),
				want: []wantResponse{bind(0, escape, `resolves through a symbolic link to "/etc", outside the allowed bind paths; allow it by adding "/etc" to roles.ci.containers.bind_mounts`)}, audit: deny},
			{name: "bind below a symbolic link, not there yet", request: create(`,"HostConfig":{"Binds":["` + p.bindDir + `:/ok","` + escape + `/dockgate-new:/x"]}`),
				want: []wantResponse{{http.StatusForbidden, `", which resolves through a symbolic link to "/etc/dockgate-new", outside the allowed bind paths`}}, audit: deny},
			{name: "mount of type bind through a symbolic link", request: create(`,"HostConfig":{"Mounts":[{"Type":"bind","Source":"` + escape + `","Target":"/host"}]}`),
				want: []wantResponse{{http.StatusForbidden, `HostConfig.Mounts[0].Source mounts host path "` + escape + `", which resolves through a symbolic link to "/etc"`}}, audit: deny},
			{name: "legacy bind through a symbolic link", request: create(`,"Binds":["` + escape + `:/x"]`),
				want: []wantResponse{{http.StatusForbidden, `Binds[0] mounts host path "` + escape + `", which resolves through a symbolic link to "/etc"`}}, audit: deny},
			{name: "bind of a dangling symbolic link", request: create(`,"HostConfig":{"Binds":["` + dangling + `:/x"]}`),
				want: []wantResponse{{http.StatusForbidden, `HostConfig.Binds[0] mounts host path "` + dangling + `", whose symbolic links cannot be resolved (` + dangling + " is a dangling symbolic link)"}}, audit: deny},
			{name: "bind of /", request: create(`,"HostConfig":{"Binds":["/:/host"]}`), want: []wantResponse{bind(0, "/", "is outside the allowed bind paths")}, audit: deny},
			{name: "bind of /etc read-only", request: create(`,"HostConfig":{"Binds":["/etc:/x:ro"]}`), want: []wantResponse{bind(0, "/etc", "is outside the allowed bind paths")}, audit: deny},
			{name: "bind with a double slash", request: create(`,"HostConfig":{"Binds":["//etc:/x"]}`), want: []wantResponse{bind(0, "//etc", "is outside the allowed bind paths")}, audit: deny},
			{name: "bind escaping the allowed path with ..", request: create(`,"HostConfig":{"Binds":["` + p.bindDir + `/../../../etc:/x"]}`),
				want: []wantResponse{{http.StatusForbidden, "which has a '..' segment; write the host path as an absolute path without '..'"}}, audit: deny},
			{name: "bind of a sibling sharing the prefix", request: create(`,"HostConfig":{"Binds":["` + p.bindDir + `-other:/x"]}`),
				want: []wantResponse{bind(0, p.bindDir+"-other", "is outside the allowed bind paths")}, audit: deny},
			{name: "second bind outside", request: create(`,"HostConfig":{"Binds":["` + p.bindDir + `:/ok","/:/host"]}`), want: []wantResponse{bind(1, "/", "is outside")}, audit: deny},
			{name: "mount of type bind", request: create(`,"HostConfig":{"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]}`),
				want: []wantResponse{{http.StatusForbidden, `HostConfig.Mounts[0].Source mounts host path "/", which is outside the allowed bind paths`}}, audit: deny},
			{name: "mount of type bind, lower-case keys", request: create(`,"HostConfig":{"mounts":[{"type":"bind","source":"/etc","target":"/host"}]}`),
				want: []wantResponse{{http.StatusForbidden, `HostConfig.Mounts[0].Source mounts host path "/etc"`}}, audit: deny},
			{name: "mount of an unknown type", request: create(`,"HostConfig":{"Mounts":[{"Type":"Bind","Source":"/","Target":"/host"}]}`),
				want: []wantResponse{{http.StatusBadRequest, `HostConfig.Mounts[0].Type "Bind" is not a mount type dockgate knows`}}, audit: deny},
			{name: "volume mount with local bind options", request: create(`,"HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/host",` +
				`"VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]}`),
				want: []wantResponse{{http.StatusForbidden, "HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.device " + localOpt}}, audit: deny},
			{name: "volume mount with a device option, default driver", request: create(`,"HostConfig":{"Mounts":[{"Type":"volume","Target":"/host",` +
				`"VolumeOptions":{"DriverConfig":{"Options":{"DEVICE":"/dev/sda1"}}}}]}`),
				want: []wantResponse{{http.StatusForbidden, "Options.DEVICE " + localOpt}}, audit: deny},
			{name: "volume create with local bind options", request: func(m string) string {
				return post("/v1.41/volumes/create", `{"Name":"`+m+`","Driver":"local","DriverOpts":{"type":"none","o":"bind","device":"/"},"Labels":{"`+markerLabel+`":"`+m+`"}}`)
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied volume.create for ci-7 (role ci): DriverOpts.device " + localOpt}}, audit: deny},
			{name: "volume create with bind options, driver LOCAL", request: func(m string) string {
				return post("/v1.41/volumes/create", `{"Name":"`+m+`","Driver":"LOCAL","DriverOpts":{"o":"bind"},"Labels":{"`+markerLabel+`":"`+m+`"}}`)
			}, want: []wantResponse{{http.StatusForbidden, "DriverOpts.o " + localOpt}}, audit: deny},
			{name: "volume create with bind options, lower-case keys", request: func(m string) string {
				return post("/v1.41/volumes/create", `{"name":"`+m+`","driverOpts":{"Type":"tmpfs","Device":"/"},"labels":{"`+markerLabel+`":"`+m+`"}}`)
			}, want: []wantResponse{{http.StatusForbidden, "DriverOpts.Device " + localOpt}}, audit: deny},
			{name: "VolumesFrom", request: create(`,"HostConfig":{"VolumesFrom":["someone:ro"]}`), want: []wantResponse{deniedField("HostConfig.VolumesFrom", "containers.volumes_from: true")}, audit: deny},
			{name: "network host", request: create(`,"HostConfig":{"NetworkMode":"host"}`), want: []wantResponse{hostNS("NetworkMode", "network")}, audit: deny},
			{name: "pid host", request: create(`,"HostConfig":{"PidMode":"host"}`), want: []wantResponse{hostNS("PidMode", "pid")}, audit: deny},
			{name: "ipc host", request: create(`,"HostConfig":{"IpcMode":"host"}`), want: []wantResponse{hostNS("IpcMode", "ipc")}, audit: deny},
			{name: "uts host", request: create(`,"HostConfig":{"UTSMode":"host"}`), want: []wantResponse{hostNS("UTSMode", "uts")}, audit: deny},
			{name: "userns host", request: create(`,"HostConfig":{"UsernsMode":"host"}`), want: []wantResponse{hostNS("UsernsMode", "userns")}, audit: deny},
			{name: "cgroupns host", request: create(`,"HostConfig":{"CgroupnsMode":"host"}`), want: []wantResponse{hostNS("CgroupnsMode", "cgroupns")}, audit: deny},
			{name: "pid of another container", request: create(`,"HostConfig":{"PidMode":"container:someone"}`), want: []wantResponse{otherNS("PidMode", "container:someone")}, audit: deny},
			{name: "network of another container", request: create(`,"HostConfig":{"NetworkMode":"container:someone"}`), want: []wantResponse{otherNS("NetworkMode", "container:someone")}, audit: deny},
			{name: "ipc of another container", request: create(`,"HostConfig":{"IpcMode":"container:someone"}`), want: []wantResponse{otherNS("IpcMode", "container:someone")}, audit: deny},
			{name: "endpoint in the host network", request: create(`,"NetworkingConfig":{"EndpointsConfig":{"host":{}}}`),
				want: []wantResponse{{http.StatusForbidden, `NetworkingConfig.EndpointsConfig["host"] is host (the host's network namespace), which is not allowed`}}, audit: deny},
			{name: "endpoint in another container's network", request: create(`,"NetworkingConfig":{"EndpointsConfig":{"container:someone":{}}}`),
				want: []wantResponse{{http.StatusForbidden, `NetworkingConfig.EndpointsConfig["container:someone"] joins another container's namespace`}}, audit: deny},
			{name: "cap SYS_ADMIN", request: create(`,"HostConfig":{"CapAdd":["SYS_ADMIN"]}`), want: []wantResponse{capAdd("SYS_ADMIN", "CAP_SYS_ADMIN")}, audit: deny},
			{name: "cap CAP_SYS_ADMIN", request: create(`,"HostConfig":{"CapAdd":["CAP_SYS_ADMIN"]}`), want: []wantResponse{capAdd("CAP_SYS_ADMIN", "CAP_SYS_ADMIN")}, audit: deny},
			{name: "cap sys_admin", request: create(`,"HostConfig":{"CapAdd":["sys_admin"]}`), want: []wantResponse{capAdd("sys_admin", "CAP_SYS_ADMIN")}, audit: deny},
			{name: "cap Cap_Sys_Admin", request: create(`,"HostConfig":{"CapAdd":["Cap_Sys_Admin"]}`), want: []wantResponse{capAdd("Cap_Sys_Admin", "CAP_SYS_ADMIN")}, audit: deny},
			{name: "cap ALL", request: create(`,"HostConfig":{"CapAdd":["ALL"]}`), want: []wantResponse{capAdd("ALL", "ALL")}, audit: deny},
			{name: "cap all", request: create(`,"HostConfig":{"CapAdd":["all"]}`), want: []wantResponse{capAdd("all", "ALL")}, audit: deny},
			{name: "cap allowed then denied", request: create(`,"HostConfig":{"CapAdd":["NET_BIND_SERVICE","SYS_PTRACE"]}`), want: []wantResponse{capAdd("SYS_PTRACE", "CAP_SYS_PTRACE")}, audit: deny},
			{name: "seccomp=unconfined", request: create(`,"HostConfig":{"SecurityOpt":["seccomp=unconfined"]}`), want: []wantResponse{secOpt("seccomp=unconfined")}, audit: deny},
			{name: "seccomp:unconfined", request: create(`,"HostConfig":{"SecurityOpt":["seccomp:unconfined"]}`), want: []wantResponse{secOpt("seccomp:unconfined")}, audit: deny},
			{name: "seccomp profile", request: create(`,"HostConfig":{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}`), want: []wantResponse{secOpt(`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`)}, audit: deny},
			{name: "apparmor=unconfined", request: create(`,"HostConfig":{"SecurityOpt":["apparmor=unconfined"]}`), want: []wantResponse{secOpt("apparmor=unconfined")}, audit: deny},
			{name: "apparmor:unconfined", request: create(`,"HostConfig":{"SecurityOpt":["apparmor:unconfined"]}`), want: []wantResponse{secOpt("apparmor:unconfined")}, audit: deny},
			{name: "label=disable", request: create(`,"HostConfig":{"SecurityOpt":["label=disable"]}`), want: []wantResponse{secOpt("label=disable")}, audit: deny},
			{name: "label:disable", request: create(`,"HostConfig":{"SecurityOpt":["label:disable"]}`), want: []wantResponse{secOpt("label:disable")}, audit: deny},
			{name: "bare disable", request: create(`,"HostConfig":{"SecurityOpt":["disable"]}`), want: []wantResponse{secOpt("disable")}, audit: deny},
			{name: "systempaths=unconfined", request: create(`,"HostConfig":{"SecurityOpt":["systempaths=unconfined"]}`), want: []wantResponse{secOpt("systempaths=unconfined")}, audit: deny},
			{name: "no-new-privileges:false", request: create(`,"HostConfig":{"SecurityOpt":["no-new-privileges:false"]}`), want: []wantResponse{secOpt("no-new-privileges:false")}, audit: deny},
			{name: "allowed option then seccomp", request: create(`,"HostConfig":{"SecurityOpt":["no-new-privileges","seccomp=unconfined"]}`), want: []wantResponse{secOpt("seccomp=unconfined")}, audit: deny},
			{name: "empty MaskedPaths", request: create(`,"HostConfig":{"MaskedPaths":[]}`), want: []wantResponse{{http.StatusForbidden, "HostConfig.MaskedPaths replaces the paths dockerd masks in /proc and /sys"}}, audit: deny},
			{name: "empty ReadonlyPaths", request: create(`,"HostConfig":{"ReadonlyPaths":[]}`), want: []wantResponse{{http.StatusForbidden, "HostConfig.ReadonlyPaths replaces the paths dockerd makes read-only"}}, audit: deny},
			{name: "devices", request: create(`,"HostConfig":{"Devices":[{"PathOnHost":"/dev/mem","PathInContainer":"/dev/mem","CgroupPermissions":"rwm"}]}`),
				want: []wantResponse{deniedField("HostConfig.Devices", "containers.devices: true")}, audit: deny},
			{name: "device cgroup rules", request: create(`,"HostConfig":{"DeviceCgroupRules":["a *:* rwm"]}`), want: []wantResponse{deniedField("HostConfig.DeviceCgroupRules", "containers.devices: true")}, audit: deny},
			{name: "device requests", request: create(`,"HostConfig":{"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]}`), want: []wantResponse{deniedField("HostConfig.DeviceRequests", "containers.device_requests: true")}, audit: deny},
			{name: "sysctls", request: create(`,"HostConfig":{"Sysctls":{"kernel.shm_rmid_forced":"1"}}`), want: []wantResponse{{http.StatusForbidden, `HostConfig.Sysctls sets "kernel.shm_rmid_forced", which is not allowed`}}, audit: deny},
			{name: "runtime", request: create(`,"HostConfig":{"Runtime":"io.containerd.runc.v2"}`), want: []wantResponse{{http.StatusForbidden, `HostConfig.Runtime is "io.containerd.runc.v2", not runc`}}, audit: deny},
			{name: "cgroup parent", request: create(`,"HostConfig":{"CgroupParent":"/"}`), want: []wantResponse{deniedField("HostConfig.CgroupParent", "containers.cgroup_parent: true")}, audit: deny},
			{name: "build in the host network", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?networkmode=host&t="+m, "", "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied image.build for ci-7 (role ci): query networkmode=host (RUN steps in the host's network) is not allowed"}}, audit: deny},
			{name: "build in the host network, escaped query", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?network%6Dode=ho%73t&t="+m, "", "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "query networkmode=host"}}, audit: deny},
			{name: "build in the host network, second value ignored by dockerd first", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?networkmode=host&networkmode=default&t="+m, "", "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "query networkmode=host"}}, audit: deny},
			{name: "build from a remote context", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/build?remote=http://127.0.0.1:9/ctx.tar&t="+m, "", "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "query remote (a build context dockerd fetches itself) is not allowed"}}, audit: deny},
			{name: "image import from the body", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/images/create?fromSrc=-&repo="+m, strings.Repeat("\x00", 1024), "Content-Type: application/x-tar")
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied image.import for ci-7 (role ci): image.import is not allowed"}}, audit: deny},
			{name: "image import with an empty fromImage first", request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/images/create?fromImage=&fromImage="+m+"&fromSrc=http://127.0.0.1:9/x.tar", "")
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied image.import for ci-7 (role ci)"}}, audit: deny},
			{name: "swarm init", request: func(m string) string {
				return post("/v1.41/swarm/init", `{"ListenAddr":"127.0.0.1:2377"}`)
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied swarm.init for ci-7 (role ci): swarm.init is not allowed"}}, audit: deny,
				check: func(t *testing.T) { p.assertSwarmInactive(t) }},
			{name: "plugin install", request: func(m string) string {
				return post("/v1.41/plugins/pull?remote=vieux/sshfs&name="+m, `[]`)
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied plugin.install for ci-7 (role ci)"}}, audit: deny},
		})
	})

	t.Run("own containers", func(t *testing.T) {
		running := p.startContainer(t, ciClient, newMarker())
		created := p.createContainer(t, ciClient, newMarker())
		runningPID := p.daemon.mustContainer(t, running).State.Pid
		noExec := func(t *testing.T) {
			if c := p.daemon.mustContainer(t, running); len(c.ExecIDs) > 0 || c.State.Pid != runningPID {
				t.Errorf("THE DAEMON ACTED: container has execs %v, pid %d (was %d)", c.ExecIDs, c.State.Pid, runningPID)
			}
		}
		notStarted := func(t *testing.T) {
			if c := p.daemon.mustContainer(t, created); c.State.Status != "created" {
				t.Errorf("THE DAEMON ACTED: container is %s, want created", c.State.Status)
			}
		}
		unchanged := func(t *testing.T) {
			var c struct {
				HostConfig struct {
					Devices           []any
					DeviceCgroupRules []string
				}
			}
			p.daemon.getJSON(t, "/containers/"+running+"/json", &c)
			if len(c.HostConfig.Devices) > 0 || len(c.HostConfig.DeviceCgroupRules) > 0 {
				t.Errorf("THE DAEMON ACTED: container has devices %v, rules %v", c.HostConfig.Devices, c.HostConfig.DeviceCgroupRules)
			}
			noExec(t)
		}
		execAt := "/v1.41/containers/" + running + "/exec"
		execDenied := wantResponse{http.StatusForbidden, "dockgate: denied container.exec for ci-7 (role ci): Privileged is not allowed; allow it with roles.ci.containers.privileged: true"}
		startBody := wantResponse{http.StatusBadRequest, "dockgate: container.start takes no request body"}
		p.runExchanges(t, []exchange{
			{name: "exec Privileged", request: func(string) string { return post(execAt, `{"Cmd":["id"],"Privileged":true}`) },
				want: []wantResponse{execDenied}, audit: deny, check: noExec},
			{name: "exec privileged (lower case)", request: func(string) string { return post(execAt, `{"Cmd":["id"],"privileged":true}`) },
				want: []wantResponse{execDenied}, audit: deny, check: noExec},
			{name: "exec unicode-escaped Privileged", request: func(string) string { return post(execAt, `{"Cmd":["id"],"Privil\u0065ged":true}`) },
				want: []wantResponse{execDenied}, audit: deny, check: noExec},
			{name: "exec duplicate Privileged", request: func(string) string { return post(execAt, `{"Cmd":["id"],"Privileged":false,"PRIVILEGED":true}`) },
				want: []wantResponse{dupKey}, audit: deny, check: noExec},
			{name: "exec Privileged, chunked", request: func(string) string {
				return httpRequest(http.MethodPost, execAt, chunked(`{"Cmd":["id"],"Privileged":true}`, 5), jsonType, "Transfer-Encoding: chunked")
			}, want: []wantResponse{execDenied}, audit: deny, check: noExec},
			{name: "exec Privileged, pipelined after an allowed inspect", request: func(string) string {
				return httpRequest(http.MethodGet, "/v1.41/containers/"+running+"/json", "") + post(execAt, `{"Cmd":["id"],"Privileged":true}`)
			}, want: []wantResponse{{http.StatusOK, running}, execDenied}, audit: []string{"allow", "deny"}, check: noExec},
			{name: "start with a HostConfig body", request: func(string) string {
				return post("/v1.41/containers/"+created+"/start", `{"Privileged":true,"Binds":["/:/host"]}`)
			}, want: []wantResponse{startBody}, audit: deny, check: notStarted},
			{name: "start with a chunked HostConfig body", request: func(string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/"+created+"/start", chunked(`{"Privileged":true}`, 4), jsonType, "Transfer-Encoding: chunked")
			}, want: []wantResponse{startBody}, audit: deny, check: notStarted},
			{name: "start with a HostConfig body, API 1.23", request: func(string) string {
				return post("/v1.23/containers/"+created+"/start", `{"Privileged":true}`)
			}, want: []wantResponse{badPath("API version below 1.24")}, audit: deny, check: notStarted},
			{name: "start with a HostConfig body, no version", request: func(string) string {
				return post("/containers/"+created+"/start", `{"Privileged":true}`)
			}, want: []wantResponse{startBody}, audit: deny, check: notStarted},
			{name: "update with devices", request: func(string) string {
				return post("/v1.41/containers/"+running+"/update", `{"Devices":[{"PathOnHost":"/dev/mem","PathInContainer":"/dev/mem","CgroupPermissions":"rwm"}]}`)
			}, want: []wantResponse{{http.StatusForbidden, "dockgate: denied container.update for ci-7 (role ci): Devices is not allowed; allow it with roles.ci.containers.devices: true"}}, audit: deny, check: unchanged},
			{name: "update with device cgroup rules", request: func(string) string {
				return post("/v1.41/containers/"+running+"/update", `{"deviceCgroupRules":["a *:* rwm"]}`)
			}, want: []wantResponse{{http.StatusForbidden, "DeviceCgroupRules is not allowed"}}, audit: deny, check: unchanged},
		})
	})
}

// TestPolicyOwnerIsolation runs two clients of the tenant role (owner
// isolation) side by side: B tries to reach A's container, exec and
// volume by every way a request can name them, and must get dockerd's own
// "not found" while A's objects stay as they were; lists and events show
// each tenant only its own objects.
func TestPolicyOwnerIsolation(t *testing.T) {
	p := startPolicyEnv(t)
	img := p.d.Image()
	t0 := time.Now()
	aName, aIdleName, aVol := "ta-"+newMarker(), "ta-"+newMarker(), "ta-"+newMarker()
	aID := p.startContainer(t, tenantA, aName)
	aIdle := p.createContainer(t, tenantA, aIdleName)
	p.mustDockerAs(t, tenantA, "volume", "create", aVol)
	t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+aVol+"?force=1", nil) })
	execResp := p.call(t, tenantA, http.MethodPost, "/v1.41/containers/"+aID+"/exec", `{"Cmd":["true"]}`)
	var aExec struct {
		ID string `json:"Id"`
	}
	if execResp.Status != http.StatusCreated || json.Unmarshal([]byte(execResp.Body), &aExec) != nil || aExec.ID == "" {
		t.Fatalf("tenant A's exec create: %s", execResp)
	}
	bName := "tb-" + newMarker()
	bID := p.startContainer(t, tenantB, bName)

	t.Run("creates are labelled with the owner", func(t *testing.T) {
		for id, owner := range map[string]string{aID: tenantA, aIdle: tenantA, bID: tenantB} {
			if got := p.daemon.mustContainer(t, id).Config.Labels[ownerLabelKey]; got != owner {
				t.Errorf("container %.12s: owner label %q, want %q", id, got, owner)
			}
		}
		var vol struct{ Labels map[string]string }
		p.daemon.getJSON(t, "/volumes/"+aVol, &vol)
		if vol.Labels[ownerLabelKey] != tenantA {
			t.Errorf("volume %s: owner label %q, want %q", aVol, vol.Labels[ownerLabelKey], tenantA)
		}
	})

	before := p.daemon.mustContainer(t, aID)
	aUnchanged := func(t *testing.T) {
		t.Helper()
		c := p.daemon.mustContainer(t, aID)
		if c.Name != before.Name || !c.State.Running || c.State.Pid != before.State.Pid || len(c.ExecIDs) != len(before.ExecIDs) {
			t.Errorf("THE DAEMON ACTED on A's container: name %s (was %s), %s pid %d (was %d), execs %v (were %v)",
				c.Name, before.Name, c.State.Status, c.State.Pid, before.State.Pid, c.ExecIDs, before.ExecIDs)
		}
		if idle := p.daemon.mustContainer(t, aIdle); idle.State.Status != "created" || idle.Name != "/"+aIdleName {
			t.Errorf("THE DAEMON ACTED on A's idle container: %s %s", idle.Name, idle.State.Status)
		}
		var e struct {
			Running  bool
			ExitCode *int
		}
		p.daemon.getJSON(t, "/exec/"+aExec.ID+"/json", &e)
		if e.Running || e.ExitCode != nil {
			t.Errorf("THE DAEMON ACTED: A's exec ran (running %v, exit code %v)", e.Running, e.ExitCode)
		}
		if status, _ := p.daemon.do(t, http.MethodGet, "/volumes/"+aVol, nil); status != http.StatusOK {
			t.Errorf("THE DAEMON ACTED: A's volume is gone (%d)", status)
		}
	}
	noSuch := func(ref string) []wantResponse {
		return []wantResponse{{http.StatusNotFound, "No such container: " + ref}}
	}
	// A create that names another's object gets 400, as dockerd answers a
	// missing one there.
	createNoSuch := func(ref string) []wantResponse {
		return []wantResponse{{http.StatusBadRequest, "No such container: " + ref}}
	}
	createNoVolume := []wantResponse{{http.StatusBadRequest, "get " + aVol + ": no such volume"}}
	asB := func(name string, req func(string) string, want []wantResponse) exchange {
		return exchange{name: name, client: tenantB, request: req, want: want, audit: deny, check: aUnchanged}
	}
	var attempts []exchange
	refs := map[string]string{"ID": aID, "ID prefix": aID[:12], "short ID prefix": aID[:5], "name": aName}
	for _, kind := range []string{"ID", "ID prefix", "short ID prefix", "name"} {
		ref := refs[kind]
		attempts = append(attempts,
			asB("inspect by "+kind, func(string) string { return httpRequest(http.MethodGet, "/v1.41/containers/"+ref+"/json", "") }, noSuch(ref)),
			asB("kill by "+kind, func(string) string { return post("/v1.41/containers/"+ref+"/kill?signal=KILL", "") }, noSuch(ref)),
			asB("exec by "+kind, func(string) string { return post("/v1.41/containers/"+ref+"/exec", `{"Cmd":["id"]}`) }, noSuch(ref)),
			asB("remove by "+kind, func(string) string { return httpRequest(http.MethodDelete, "/v1.41/containers/"+ref+"?force=1", "") }, noSuch(ref)),
		)
	}
	for _, op := range []struct{ name, method, path, body string }{
		{"stop", http.MethodPost, "/stop?t=0", ""},
		{"restart", http.MethodPost, "/restart?t=0", ""},
		{"pause", http.MethodPost, "/pause", ""},
		{"rename", http.MethodPost, "/rename?name=stolen-" + aName, ""},
		{"update", http.MethodPost, "/update", `{"RestartPolicy":{"Name":"always"}}`},
		{"logs", http.MethodGet, "/logs?stdout=1&stderr=1", ""},
		{"top", http.MethodGet, "/top", ""},
		{"changes", http.MethodGet, "/changes", ""},
		{"stats", http.MethodGet, "/stats?stream=0", ""},
		{"export", http.MethodGet, "/export", ""},
		{"archive get", http.MethodGet, "/archive?path=/etc/hostname", ""},
		{"wait", http.MethodPost, "/wait", ""},
		{"resize", http.MethodPost, "/resize?h=10&w=10", ""},
	} {
		attempts = append(attempts, asB(op.name+" by name", func(string) string {
			headers := []string{}
			if op.body != "" {
				headers = append(headers, jsonType)
			}
			return httpRequest(op.method, "/v1.41/containers/"+aName+op.path, op.body, headers...)
		}, noSuch(aName)))
	}
	attempts = append(attempts,
		asB("inspect by a percent-escaped name", func(string) string {
			return httpRequest(http.MethodGet, "/v1.41/containers/"+fmt.Sprintf("%%%02X", aName[0])+aName[1:]+"/json", "")
		}, noSuch(aName)),
		asB("start A's idle container", func(string) string { return post("/v1.41/containers/"+aIdleName+"/start", "") }, noSuch(aIdleName)),
		asB("archive put", func(string) string {
			return httpRequest(http.MethodPut, "/v1.41/containers/"+aName+"/archive?path=/tmp", strings.Repeat("\x00", 1024), "Content-Type: application/x-tar")
		}, noSuch(aName)),
		asB("attach (stream)", func(string) string {
			return httpRequest(http.MethodPost, "/v1.41/containers/"+aName+"/attach?stream=1&stdout=1", "", "Connection: Upgrade", "Upgrade: tcp")
		}, noSuch(aName)),
		asB("commit", func(m string) string { return post("/v1.41/commit?container="+aName+"&repo="+m, "") }, noSuch(aName)),
		asB("exec inspect", func(string) string { return httpRequest(http.MethodGet, "/v1.41/exec/"+aExec.ID+"/json", "") },
			[]wantResponse{{http.StatusNotFound, "No such exec instance: " + aExec.ID}}),
		asB("exec start", func(string) string { return post("/v1.41/exec/"+aExec.ID+"/start", `{"Detach":true}`) },
			[]wantResponse{{http.StatusNotFound, "No such exec instance: " + aExec.ID}}),
		asB("exec start (stream)", func(string) string {
			return httpRequest(http.MethodPost, "/v1.41/exec/"+aExec.ID+"/start", `{"Detach":false}`, jsonType, "Connection: Upgrade", "Upgrade: tcp")
		}, []wantResponse{{http.StatusNotFound, "No such exec instance: " + aExec.ID}}),
		asB("exec resize", func(string) string { return post("/v1.41/exec/"+aExec.ID+"/resize?h=10&w=10", "") },
			[]wantResponse{{http.StatusNotFound, "No such exec instance: " + aExec.ID}}),
		asB("volume inspect", func(string) string { return httpRequest(http.MethodGet, "/v1.41/volumes/"+aVol, "") },
			[]wantResponse{{http.StatusNotFound, "get " + aVol + ": no such volume"}}),
		asB("volume remove", func(string) string { return httpRequest(http.MethodDelete, "/v1.41/volumes/"+aVol+"?force=1", "") },
			[]wantResponse{{http.StatusNotFound, "get " + aVol + ": no such volume"}}),
		asB("create with A's volume in Binds", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"Binds":["`+aVol+`:/data"]}`))
		}, createNoVolume),
		asB("create with A's volume in Mounts", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"Mounts":[{"Type":"volume","Source":"`+aVol+`","Target":"/data"}]}`))
		}, createNoVolume),
		asB("create with pid container:A", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"PidMode":"container:`+aName+`"}`))
		}, createNoSuch(aName)),
		asB("create with network container:A (ID)", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"NetworkMode":"container:`+aID+`"}`))
		}, createNoSuch(aID)),
		asB("create with ipc container:A (ID prefix)", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"IpcMode":"container:`+aID[:12]+`"}`))
		}, createNoSuch(aID[:12])),
		asB("create with legacy top-level pid container:A", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"PidMode":"container:`+aName+`"`))
		}, createNoSuch(aName)),
		asB("create with VolumesFrom A", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"VolumesFrom":["`+aName+`:ro"]}`))
		}, []wantResponse{{http.StatusForbidden, "HostConfig.VolumesFrom is not allowed; allow it with roles.tenant.containers.volumes_from: true"}}),
		asB("create with a link to A", func(m string) string {
			return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"Links":["/`+aName+`:a"]}`))
		}, createNoSuch(aName)),
		asB("list since A", func(string) string { return httpRequest(http.MethodGet, "/v1.41/containers/json?all=1&since="+aID, "") }, noSuch(aID)),
		asB("list with a filter before A", func(string) string {
			return httpRequest(http.MethodGet, "/v1.41/containers/json?all=1&filters="+url.QueryEscape(`{"before":{"`+aName+`":true}}`), "")
		}, noSuch(aName)),
		asB("owner label spelt twice", func(m string) string {
			return post("/v1.41/containers/create?name="+m, `{"Image":"`+img+`","Labels":{"`+markerLabel+`":"`+m+`","dockgate.owner":"tenant-a","Dockgate.Owner":"tenant-a"}}`)
		}, []wantResponse{{http.StatusBadRequest, "dockgate: body refused: duplicate key"}}),
	)
	t.Run("escapes", func(t *testing.T) { p.runExchanges(t, attempts) })

	t.Run("pid container:A with the docker CLI", func(t *testing.T) {
		_, errOut, err := p.dockerAsClient(tenantB, "create", "--pid", "container:"+aName, "--network", "none", img, "true")
		if err == nil || !strings.Contains(errOut, "No such container: "+aName) {
			t.Errorf("docker create --pid container:%s as B: %v\n%s", aName, err, errOut)
		}
		_, errOut, err = p.dockerAsClient(tenantB, "container", "inspect", aName)
		if err == nil || !strings.Contains(errOut, "No such container: "+aName) {
			t.Errorf("docker container inspect %s as B: %v\n%s", aName, err, errOut)
		}
		aUnchanged(t)
	})

	// An ID prefix that several of A's containers share is ambiguous to
	// dockerd. To B it must look like a prefix nobody has: the same 404,
	// not an error that says other containers exist.
	t.Run("an ambiguous ID prefix tells nothing", func(t *testing.T) {
		prefix := p.sharedPrefix(t, tenantA, []string{aID, aIdle})
		p.runExchanges(t, []exchange{
			asB("inspect by a prefix A's containers share", func(string) string {
				return httpRequest(http.MethodGet, "/v1.41/containers/"+prefix+"/json", "")
			}, noSuch(prefix)),
			asB("kill by a prefix A's containers share", func(string) string {
				return post("/v1.41/containers/"+prefix+"/kill?signal=KILL", "")
			}, noSuch(prefix)),
		})
	})

	t.Run("label spoofing", func(t *testing.T) {
		for _, labels := range []string{
			`"Labels":{"dockgate.owner":"tenant-a","` + markerLabel + `":"M"}`,
			`"labels":{"dockgate.owner":"tenant-a","` + markerLabel + `":"M"}`,
			`"Labels":{"dockgate.\u006fwner":"tenant-a","` + markerLabel + `":"M"}`,
		} {
			m := newMarker()
			resp := p.call(t, tenantB, http.MethodPost, "/v1.41/containers/create?name="+m,
				`{"Image":"`+img+`",`+strings.ReplaceAll(labels, `"M"`, `"`+m+`"`)+`}`)
			if resp.Status != http.StatusCreated {
				t.Fatalf("create as B with %s: %s", labels, resp)
			}
			t.Cleanup(func() { p.daemon.removeContainer(t, m) })
			if got := p.daemon.mustContainer(t, m).Config.Labels[ownerLabelKey]; got != tenantB {
				t.Errorf("%s: the daemon has owner %q, want %q", labels, got, tenantB)
			}
			if r := p.call(t, tenantA, http.MethodGet, "/v1.41/containers/"+m+"/json", ""); r.Status != http.StatusNotFound {
				t.Errorf("%s: A inspects B's container: %s, want 404", labels, r)
			}
		}
		m := newMarker()
		resp := p.call(t, tenantB, http.MethodPost, "/v1.41/volumes/create", `{"Name":"`+m+`","Labels":{"dockgate.owner":"tenant-a"}}`)
		if resp.Status != http.StatusCreated {
			t.Fatalf("volume create as B: %s", resp)
		}
		t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+m, nil) })
		var vol struct{ Labels map[string]string }
		p.daemon.getJSON(t, "/volumes/"+m, &vol)
		if vol.Labels[ownerLabelKey] != tenantB {
			t.Errorf("volume: the daemon has owner %q, want %q", vol.Labels[ownerLabelKey], tenantB)
		}
	})

	t.Run("lists and events show only the caller's objects", func(t *testing.T) {
		for _, q := range []string{
			"all=1",
			"all=1&filters=" + url.QueryEscape(`{"label":{"dockgate.owner=tenant-a":true}}`),
			"all=1&filters=" + url.QueryEscape(`{"label":["dockgate.owner=tenant-a"]}`),
			"all=1&filters=" + url.QueryEscape(`{"id":{"`+aID+`":true}}`),
			"all=1&filters=" + url.QueryEscape(`{"name":{"`+aName+`":true}}`),
			"all=1&filters=" + url.QueryEscape(`{"name":{"ta-":true}}`) + "&filters=" + url.QueryEscape(`{}`),
		} {
			resp := p.call(t, tenantB, http.MethodGet, "/v1.41/containers/json?"+q, "")
			if resp.Status != http.StatusOK {
				t.Fatalf("list as B ?%s: %s", q, resp)
			}
			if strings.Contains(resp.Body, aID) || strings.Contains(resp.Body, aIdle) {
				t.Errorf("list as B ?%s shows A's containers:\n%s", q, resp.Body)
			}
		}
		if resp := p.call(t, tenantB, http.MethodGet, "/v1.41/containers/json?all=1", ""); !strings.Contains(resp.Body, bID) {
			t.Errorf("list as B lacks B's own container %s:\n%s", bID, resp.Body)
		}
		if out := p.mustDockerAs(t, tenantB, "ps", "-a", "--format", "{{.Names}}"); out != bName {
			t.Errorf("docker ps -a as B: %q, want only %q", out, bName)
		}
		gotA := strings.Fields(p.mustDockerAs(t, tenantA, "ps", "-a", "--format", "{{.Names}}"))
		if len(gotA) != 2 || !slices.Contains(gotA, aName) || !slices.Contains(gotA, aIdleName) {
			t.Errorf("docker ps -a as A: %q, want %s and %s", gotA, aName, aIdleName)
		}
		if out := p.mustDockerAs(t, tenantB, "volume", "ls", "--format", "{{.Name}}"); strings.Contains(out, aVol) {
			t.Errorf("docker volume ls as B shows A's volume:\n%s", out)
		}
		events := func(client, filters string) string {
			q := url.Values{"since": {unixNano(t0)}, "until": {unixNano(time.Now())}}
			if filters != "" {
				q.Set("filters", filters)
			}
			resp := p.call(t, client, http.MethodGet, "/v1.41/events?"+q.Encode(), "")
			if resp.Status != http.StatusOK {
				t.Fatalf("events as %s: %s", client, resp)
			}
			return resp.Body
		}
		if got := events(tenantB, ""); strings.Contains(got, aID) || !strings.Contains(got, bID) {
			t.Errorf("events as B: want B's container %s and none of A's %s:\n%s", bID, aID, got)
		}
		if got := events(tenantB, `{"container":{"`+aID+`":true}}`); strings.Contains(got, aID) {
			t.Errorf("events as B filtered on A's container show it:\n%s", got)
		}
		if got := events(tenantA, ""); !strings.Contains(got, aID) || strings.Contains(got, bID) {
			t.Errorf("events as A: want A's container %s and none of B's %s:\n%s", aID, bID, got)
		}
	})

	t.Run("prunes leave other tenants' objects", func(t *testing.T) {
		for _, path := range []string{"/v1.41/containers/prune", "/v1.41/volumes/prune"} {
			if resp := p.call(t, tenantB, http.MethodPost, path, ""); resp.Status != http.StatusOK {
				t.Errorf("POST %s as B: %s", path, resp)
			}
		}
		aUnchanged(t)
	})

	t.Run("a tenant does its own work", func(t *testing.T) {
		name := "ta-" + newMarker()
		id := p.mustDockerAs(t, tenantA, "create", "--network", "none", "--name", name, "--pid", "container:"+aName, img, "sleep", "300")
		t.Cleanup(func() { p.daemon.removeContainer(t, id) })
		p.mustDockerAs(t, tenantA, "start", name)
		resp := p.call(t, tenantA, http.MethodPost, "/v1.41/containers/"+name+"/exec", `{"Cmd":["true"]}`)
		var exec struct {
			ID string `json:"Id"`
		}
		if resp.Status != http.StatusCreated || json.Unmarshal([]byte(resp.Body), &exec) != nil {
			t.Fatalf("exec create as A: %s", resp)
		}
		if r := p.call(t, tenantA, http.MethodGet, "/v1.41/exec/"+exec.ID+"/json", ""); r.Status != http.StatusOK {
			t.Errorf("A inspects its own exec %s: %s, want 200", exec.ID, r)
		}
		if r := p.call(t, tenantA, http.MethodPost, "/v1.41/exec/"+exec.ID+"/start", `{"Detach":true}`); r.Status != http.StatusOK {
			t.Errorf("A starts its own exec %s: %s, want 200", exec.ID, r)
		}
		if out, errOut, err := p.dockerAsClient(tenantA, "exec", name, "echo", "own-exec"); err != nil || strings.TrimSpace(out) != "own-exec" {
			t.Errorf("docker exec as A: %v, printed %q\n%s", err, out, errOut)
		}
		if c := p.daemon.mustContainer(t, id); !c.State.Running || c.HostConfig.PidMode != "container:"+aID {
			t.Errorf("A's new container: running %v, pid mode %q", c.State.Running, c.HostConfig.PidMode)
		}
		p.mustDockerAs(t, tenantA, "rm", "-f", name)
		if _, ok := p.daemon.container(t, id); ok {
			t.Errorf("docker rm -f as A left container %s", id)
		}
	})
}

// TestPolicyAllowedWork is the control of the bypass suite: the ci role
// still does what it is allowed to (a bind mount under its path, an
// allowed capability, execs, volumes), and what it is not gets the one
// sentence the docker CLI prints, with an audit line for every request.
func TestPolicyAllowedWork(t *testing.T) {
	p := startPolicyEnv(t)
	img := p.d.Image()
	workDir := filepath.Join(p.bindDir, "work")
	if err := os.Mkdir(workDir, 0o777); err != nil {
		t.Fatal(err)
	}
	// A symbolic link that stays inside the allowed path is fine.
	workLink := filepath.Join(p.bindDir, "work-link")
	if err := os.Symlink("work", workLink); err != nil {
		t.Fatal(err)
	}

	t.Run("docker run with a bind mount and an allowed capability", func(t *testing.T) {
		out, errOut, err := p.dockerWithin(t, time.Minute, ciClient, "run", "--rm", "--network", "none",
			"-v", workDir+":/data", "--cap-add", "NET_BIND_SERVICE", img, "sh", "-c", "echo from-ci > /data/out && echo done")
		if err != nil || strings.TrimSpace(out) != "done" {
			t.Fatalf("docker run as ci: %v, printed %q\n%s", err, out, errOut)
		}
		if got := strings.TrimSpace(string(readFile(t, filepath.Join(workDir, "out")))); got != "from-ci" {
			t.Errorf("the bind mount got %q, want from-ci", got)
		}
	})

	t.Run("allowed spellings and mounts", func(t *testing.T) {
		for _, extra := range []string{
			`,"HostConfig":{"CapAdd":["NET_BIND_SERVICE"]}`,
			`,"HostConfig":{"CapAdd":["CAP_NET_BIND_SERVICE"]}`,
			`,"HostConfig":{"CapAdd":["net_bind_service"]}`,
			`,"HostConfig":{"Binds":["` + p.bindDir + `:/data:ro"]}`,
			`,"HostConfig":{"Binds":["` + workDir + `:/data"]}`,
			`,"HostConfig":{"Mounts":[{"Type":"bind","Source":"` + workDir + `","Target":"/data"}]}`,
			`,"HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/scratch"}],"SecurityOpt":["no-new-privileges"]}`,
			`,"Binds":["` + workDir + `:/data"]`,
			`,"HostConfig":{"Binds":["` + workLink + `:/data"]}`,
		} {
			m := newMarker()
			resp := p.call(t, ciClient, http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, extra))
			if resp.Status != http.StatusCreated {
				t.Errorf("create with %s: %s, want 201", extra, resp)
				continue
			}
			t.Cleanup(func() { p.daemon.removeContainer(t, m) })
			if c := p.daemon.mustContainer(t, m); c.HostConfig.Privileged {
				t.Errorf("create with %s: privileged on the daemon", extra)
			}
		}
	})

	t.Run("exec and volumes", func(t *testing.T) {
		id := p.startContainer(t, ciClient, newMarker())
		if out, errOut, err := p.dockerWithin(t, time.Minute, ciClient, "exec", id, "echo", "ci-exec"); err != nil || strings.TrimSpace(out) != "ci-exec" {
			t.Errorf("docker exec as ci: %v, printed %q\n%s", err, out, errOut)
		}
		vol := newMarker()
		p.mustDockerAs(t, ciClient, "volume", "create", vol)
		t.Cleanup(func() { p.daemon.do(t, http.MethodDelete, "/volumes/"+vol, nil) })
		if status, _ := p.daemon.do(t, http.MethodGet, "/volumes/"+vol, nil); status != http.StatusOK {
			t.Errorf("volume %s: the daemon answered %d", vol, status)
		}
	})

	t.Run("the docker CLI prints one sentence for a denial", func(t *testing.T) {
		before := p.waitQuietAudit(t)
		t0 := time.Now()
		_, errOut, err := p.dockerWithin(t, time.Minute, ciClient, "run", "--rm", "--privileged", "--network", "none", img, "true")
		if err == nil {
			t.Fatal("docker run --privileged as ci succeeded")
		}
		want := "dockgate: denied container.create for ci-7 (role ci): HostConfig.Privileged is not allowed; allow it with roles.ci.containers.privileged: true"
		if !slices.Contains(strings.Split(errOut, "\n"), "docker: Error response from daemon: "+want) {
			t.Errorf("docker run --privileged printed:\n%s\nwant the line:\ndocker: Error response from daemon: %s", errOut, want)
		}
		p.daemon.assertNoPrivilegedSince(t, t0)
		lines := p.auditSince(t, before, 2)
		var denied []auditLine
		for _, l := range lines {
			if l.Decision != "allow" {
				denied = append(denied, l)
			}
		}
		wantLine := auditLine{CN: ciClient, Method: "POST", RawPath: "/v1.41/containers/create", Path: "/containers/create",
			Operation: "container.create", Decision: "deny", Role: "ci", Rule: "roles.ci.containers.privileged",
			Reason: "HostConfig.Privileged is not allowed", Status: http.StatusForbidden}
		if len(denied) != 1 || denied[0] != wantLine {
			t.Errorf("audit lines of the run:\n%swant one denial: %s", joinLines(lines), wantLine)
		}
	})

	t.Run("the audit log holds no bodies and no queries", func(t *testing.T) {
		secret := newMarker()
		resp := p.call(t, ciClient, http.MethodPost, "/v1.41/containers/create?name=n"+secret,
			`{"Image":"`+img+`","Env":["TOKEN=`+secret+`"],"HostConfig":{"Privileged":true}}`)
		if resp.Status != http.StatusForbidden {
			t.Fatalf("privileged create as ci: %s", resp)
		}
		p.waitQuietAudit(t)
		if data := readFile(t, p.auditPath); bytes.Contains(data, []byte(secret)) {
			t.Errorf("the audit log holds a value of the request body or query:\n%s", data)
		}
		if info, err := os.Stat(p.auditPath); err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("audit log mode: %v %v, want 0600", info.Mode(), err)
		}
	})
}

// TestPolicyAuditMode checks a role in audit mode: what enforce mode would
// deny is forwarded and recorded as would_deny, allowed requests as
// allow, and what the gateway cannot read as dockerd would (refused
// paths, ambiguous or form bodies) is still refused in any mode.
func TestPolicyAuditMode(t *testing.T) {
	p := startPolicyEnv(t)
	img := p.d.Image()

	t.Run("a privileged create is forwarded and recorded as would_deny", func(t *testing.T) {
		m := newMarker()
		before := p.waitQuietAudit(t)
		resp := p.call(t, trialClient, http.MethodPost, "/v1.41/containers/create?name="+m, createBody(img, m, privileged))
		if resp.Status != http.StatusCreated {
			t.Fatalf("privileged create in audit mode: %s, want 201 from the daemon", resp)
		}
		t.Cleanup(func() { p.daemon.removeContainer(t, m) })
		if !p.daemon.mustContainer(t, m).HostConfig.Privileged {
			t.Errorf("the daemon's container is not privileged: the body was not forwarded as sent")
		}
		lines := p.auditSince(t, before, 1)
		want := auditLine{CN: trialClient, Method: "POST", RawPath: "/v1.41/containers/create", Path: "/containers/create",
			Operation: "container.create", Decision: "would_deny", Role: "trial", Rule: "roles.trial.containers.privileged",
			Reason: "HostConfig.Privileged is not allowed", Status: http.StatusCreated}
		if len(lines) != 1 || lines[0] != want {
			t.Errorf("audit lines:\n%swant: %s", joinLines(lines), want)
		}
		if !strings.Contains(p.logs.String(), "audit mode: forwarding a request the role would deny") {
			t.Errorf("the gateway log does not warn about the forwarded request")
		}
	})

	t.Run("decisions per request", func(t *testing.T) {
		for _, tc := range []struct {
			method, target string
			status         int
			decision, rule string
		}{
			{http.MethodGet, "/v1.41/containers/json?all=1", http.StatusOK, "allow", "roles.trial.allow[0] container.*"},
			{http.MethodGet, "/v1.41/images/json", http.StatusOK, "would_deny", "roles.trial.allow"},
			{http.MethodGet, "/v1.41/volumes", http.StatusOK, "would_deny", "roles.trial.allow"},
			{http.MethodGet, "/v1.41/_ping", http.StatusOK, "allow", "roles.trial.allow[1] system.ping"},
		} {
			before := p.waitQuietAudit(t)
			if resp := p.call(t, trialClient, tc.method, tc.target, ""); resp.Status != tc.status {
				t.Errorf("%s %s: %s, want %d", tc.method, tc.target, resp, tc.status)
			}
			lines := p.auditSince(t, before, 1)
			if len(lines) != 1 || lines[0].Decision != tc.decision || lines[0].Rule != tc.rule || lines[0].Status != tc.status {
				t.Errorf("%s %s: audit lines:\n%swant %s by %s, status %d", tc.method, tc.target, joinLines(lines), tc.decision, tc.rule, tc.status)
			}
		}
	})

	t.Run("what cannot be read is refused in audit mode too", func(t *testing.T) {
		p.runExchanges(t, []exchange{
			{name: "old API version", client: trialClient, request: createAt(img, "/v1/containers/create"),
				want: []wantResponse{{http.StatusBadRequest, "dockgate: path refused: API version below 1.24"}}, audit: deny},
			{name: "encoded slash", client: trialClient, request: createAt(img, "/v1.41/containers%2Fcreate"),
				want: []wantResponse{{http.StatusBadRequest, "dockgate: path refused: encoded slash"}}, audit: deny},
			{name: "duplicate key", client: trialClient, request: func(m string) string {
				return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"HostConfig":{"Privileged":false,"privileged":true}`))
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: body refused: duplicate key"}}, audit: deny},
			{name: "form body", client: trialClient, request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "Image="+img, "Content-Type: application/x-www-form-urlencoded")
			}, want: []wantResponse{{http.StatusBadRequest, "dockgate: form-encoded request bodies are refused"}}, audit: deny},
			{name: "oversized body", client: trialClient, request: func(m string) string {
				return post("/v1.41/containers/create?name="+m, createBody(img, m, `,"Env":["PAD=`+strings.Repeat("A", 4<<20)+`"]`+privileged))
			}, want: []wantResponse{{http.StatusRequestEntityTooLarge, "dockgate: body refused: too large"}}, audit: deny},
			{name: "Content-Length 0 then a JSON body", client: trialClient, request: func(m string) string {
				return httpRequest(http.MethodPost, "/v1.41/containers/create?name="+m, "", jsonType, "Content-Length: 0") +
					createBody(img, m, privileged) + "\r\n\r\n"
			}, want: []wantResponse{{http.StatusBadRequest, "a container create body is required"}, {http.StatusBadRequest, "400 Bad Request"}}, audit: deny},
		})
	})
}
