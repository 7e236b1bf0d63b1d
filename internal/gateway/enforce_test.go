package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

// daemonLog records what reaches the fake daemon on the routes a test
// adds, so that a test judges the daemon's side, not only the answer.
type daemonLog struct {
	mu     sync.Mutex
	seen   []string // "METHOD path"
	bodies []string
}

func (l *daemonLog) handler(status int, answer string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		l.mu.Lock()
		l.seen = append(l.seen, r.Method+" "+r.URL.EscapedPath())
		l.bodies = append(l.bodies, string(body))
		l.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}
}

// take returns what was received since the last take, and the bodies
// joined.
func (l *daemonLog) take() ([]string, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen, bodies := l.seen, strings.Join(l.bodies, "\n")
	l.seen, l.bodies = nil, nil
	return seen, bodies
}

const (
	ownedWeb   = `{"Id":"f00dcafe01","Config":{"Labels":{"dockgate.owner":"t1"}}}`
	foreignWeb = `{"Id":"beef02","Config":{"Labels":{"dockgate.owner":"t2"}}}`
	// socketMounter is a container that mounts the daemon's socket.
	socketMounter = `{"Id":"50c","HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}`
)

// TestEnforcement covers each branch of the gateway's request path
// against a fake daemon, judged by what the daemon received.
func TestEnforcement(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		c.Roles = map[string]config.RoleSpec{
			"ci":      {Allow: []string{"container.*"}},
			"tenant":  {Allow: []string{"container.*"}, OwnerIsolation: true},
			"watcher": {Allow: []string{"container.list"}, Mode: config.ModeAudit},
		}
		c.Clients = []config.ClientRule{
			{CN: "ci-*", Role: "ci"},
			{Group: "tenants", Role: "tenant"},
			{Group: "watchers", Role: "watcher"},
		}
	})
	var log daemonLog
	tg.fake.mux.HandleFunc("GET /containers/web/json", log.handler(200, ownedWeb))
	tg.fake.mux.HandleFunc("GET /containers/other/json", log.handler(200, foreignWeb))
	tg.fake.mux.HandleFunc("GET /containers/sock/json", log.handler(200, socketMounter))
	tg.fake.mux.HandleFunc("POST /v1.41/containers/{id}/stop", log.handler(204, ""))
	tg.fake.mux.HandleFunc("DELETE /v1.41/containers/other", log.handler(204, ""))
	tg.fake.mux.HandleFunc("POST /v1.41/containers/create", log.handler(201, `{"Id":"new"}`))

	ci := tg.pki.client("ci-7")
	t1 := tg.pki.client("t1", "tenants")
	w1 := tg.pki.client("w1", "watchers")
	nobody := tg.pki.client("eve")
	cases := []struct {
		name        string
		cert        int // index into clients
		method      string
		path, ctype string
		body        string
		status      int
		answerHas   string
		daemon      []string // exactly the requests the daemon received
		daemonBody  []string // what their bodies contain
	}{
		{"allowed: looked up, forwarded pinned to its ID", 0, "POST", "/v1.41/containers/web/stop", "", "", 204, "",
			[]string{"GET /containers/web/json", "POST /v1.41/containers/f00dcafe01/stop"}, nil},
		{"self-protection: a container that mounts the Docker socket", 0, "POST", "/v1.41/containers/sock/stop", "", "", 403,
			"mounts the Docker socket", []string{"GET /containers/sock/json"}, nil},
		{"guardrail: privileged create never reaches the daemon", 0, "POST", "/v1.41/containers/create", "application/json",
			`{"Image":"x","HostConfig":{"Privileged":true}}`, 403, "HostConfig.Privileged is not allowed", nil, nil},
		{"a body on a route without one", 0, "POST", "/v1.41/containers/web/stop", "application/json", `{}`, 400, "takes no request body", nil, nil},
		{"form-encoded body", 0, "POST", "/v1.41/containers/create", "application/x-www-form-urlencoded", "Image=x", 400, "form-encoded", nil, nil},
		{"the checked body is what is forwarded", 0, "POST", "/v1.41/containers/create", "application/json",
			`{"Image":"x",   "Cmd":["true"]}`, 201, "", []string{"POST /v1.41/containers/create"}, []string{`"Cmd":["true"],"Image":"x"`}},
		{"owner isolation: own container pinned to its ID", 1, "POST", "/v1.41/containers/web/stop", "", "", 204, "",
			[]string{"GET /containers/web/json", "POST /v1.41/containers/f00dcafe01/stop"}, nil},
		{"owner isolation: a foreign container is not found", 1, "DELETE", "/v1.41/containers/other", "", "", 404, "No such container: other",
			[]string{"GET /containers/other/json"}, nil},
		{"owner isolation: the owner label is the caller's", 1, "POST", "/v1.41/containers/create", "application/json",
			`{"Image":"x","Labels":{"dockgate.owner":"t2"}}`, 201, "",
			[]string{"POST /v1.41/containers/create"}, []string{`"Labels":{"dockgate.owner":"t1"}`}},
		{"audit mode forwards what it would deny", 2, "POST", "/v1.41/containers/web/stop", "", "", 204, "",
			[]string{"POST /v1.41/containers/web/stop"}, nil},
		{"no client rule", 3, "POST", "/v1.41/containers/web/stop", "", "", 403, "no clients: entry matches", nil, nil},
	}
	clients := []*http.Client{tg.httpClient(ci), tg.httpClient(t1), tg.httpClient(w1), tg.httpClient(nobody)}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
			}
			req, _ := http.NewRequest(tc.method, tg.url(tc.path), body)
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			resp, err := clients[tc.cert].Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(answer), tc.answerHas) {
				t.Errorf("answer = %d %s, want %d containing %q", resp.StatusCode, answer, tc.status, tc.answerHas)
			}
			got, bodies := log.take()
			if strings.Join(got, "\n") != strings.Join(tc.daemon, "\n") {
				t.Errorf("the daemon received %q, want %q", got, tc.daemon)
			}
			for _, want := range tc.daemonBody {
				if !strings.Contains(bodies, want) {
					t.Errorf("the daemon received the body %s, want it to contain %s", bodies, want)
				}
			}
		})
	}
}
