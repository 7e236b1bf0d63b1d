package e2e

import (
	"net/http"
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

func TestPolicyDenialMessage(t *testing.T) {
	p := startPolicyEnv(t)
	t0 := time.Now()
	_, errOut, err := p.dockerAsClient(ciClient, "run", "--rm", "--privileged", "--network", "none", p.d.Image(), "true")
	if err == nil {
		t.Fatal("docker run --privileged as ci succeeded")
	}
	want := "dockgate: denied container.create for ci-7 (role ci): HostConfig.Privileged is not allowed; allow it with roles.ci.containers.privileged: true"
	if !strings.Contains(errOut, want+"\n") && !strings.HasSuffix(strings.TrimSpace(errOut), want) {
		t.Errorf("docker run --privileged printed:\n%s\nwant the sentence:\n%s", errOut, want)
	}
	p.daemon.assertNoPrivilegedSince(t, t0)
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
	badPath := func(reason string) wantResponse { return wantResponse{http.StatusBadRequest, "dockgate: path refused: " + reason} }
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
}
