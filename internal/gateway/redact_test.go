package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
)

var (
	containerRedaction = policy.Redaction{Paths: [][]string{{"Config", "Env"}}}
	serviceRedaction   = policy.Redaction{List: true, Paths: [][]string{
		{"Spec", "TaskTemplate", "ContainerSpec", "Env"},
		{"Spec", "TaskTemplate", "PluginSpec", "Env"},
		{"PreviousSpec", "TaskTemplate", "ContainerSpec", "Env"},
	}}
)

const m = policy.EnvMarker

func TestRedactEnv(t *testing.T) {
	tests := []struct {
		name   string
		r      policy.Redaction
		answer string
		want   string
	}{
		{"values replaced, everything else byte for byte", containerRedaction,
			`{"Id":"c1","Zebra":{"New":[1,2.50,"x"]},"Config":{"Env":["DB_PASSWORD=hunter2","PATH=/usr/bin"],"Image":"alpine","Future":null},"Name":"/web"}`,
			`{"Id":"c1","Zebra":{"New":[1,2.50,"x"]},"Config":{"Env":["DB_PASSWORD=` + m + `","PATH=` + m + `"],"Image":"alpine","Future":null},"Name":"/web"}`},
		{"an entry without '=' is kept", containerRedaction,
			`{"Config":{"Env":["ONLY_NAME","A=b=c","EMPTY="]}}`,
			`{"Config":{"Env":["ONLY_NAME","A=` + m + `","EMPTY=` + m + `"]}}`},
		{"names only: nothing to change", containerRedaction,
			`{"Config":{"Env":["A", "B"]}}`, `{"Config":{"Env":["A", "B"]}}`},
		{"no Config", containerRedaction, `{"Id":"c1"}`, `{"Id":"c1"}`},
		{"Config null", containerRedaction, `{"Config":null}`, `{"Config":null}`},
		{"Env null", containerRedaction, `{"Config":{"Env":null}}`, `{"Config":{"Env":null}}`},
		{"Env empty", containerRedaction, `{"Config":{"Env":[]}}`, `{"Config":{"Env":[]}}`},
		{"keys match without regard to case, as encoding/json matches them", containerRedaction,
			`{"config":{"ENV":["A=1"]}}`, `{"config":{"ENV":["A=` + m + `"]}}`},
		{"escaped keys", containerRedaction,
			`{"\u0043onfig":{"En\u0076":["A=1"]}}`, `{"\u0043onfig":{"En\u0076":["A=` + m + `"]}}`},
		{"a key given twice is redacted twice", containerRedaction,
			`{"Config":{"Env":["A=1"],"Env":["B=2"]},"Config":{"Env":["C=3"]}}`,
			`{"Config":{"Env":["A=` + m + `"],"Env":["B=` + m + `"]},"Config":{"Env":["C=` + m + `"]}}`},
		{"indented answer keeps its layout", containerRedaction,
			"{\n  \"Config\": {\n    \"Env\": [\n      \"A=1\"\n    ]\n  }\n}\n",
			"{\n  \"Config\": {\n    \"Env\": [\"A=" + m + "\"]\n  }\n}\n"},
		{"escapes in values", containerRedaction,
			`{"Config":{"Env":["Q=\"x\"\u003c","N\u0041ME=1"]}}`, `{"Config":{"Env":["Q=` + m + `","NAME=` + m + `"]}}`},
		{"an Env elsewhere is not touched", containerRedaction,
			`{"HostConfig":{"Env":["A=1"]},"Config":{"Labels":{"Env":"A=1"}}}`,
			`{"HostConfig":{"Env":["A=1"]},"Config":{"Labels":{"Env":"A=1"}}}`},
		{"services: current and previous spec, container and plugin", serviceRedaction,
			`[{"ID":"s1","Spec":{"TaskTemplate":{"ContainerSpec":{"Image":"x","Env":["T=1"]}}},"PreviousSpec":{"TaskTemplate":{"ContainerSpec":{"Env":["T=0"]}}}},` +
				`{"ID":"s2","Spec":{"TaskTemplate":{"PluginSpec":{"name":"p","env":["K=v"]}}}},null,{"ID":"s3"}]`,
			`[{"ID":"s1","Spec":{"TaskTemplate":{"ContainerSpec":{"Image":"x","Env":["T=` + m + `"]}}},"PreviousSpec":{"TaskTemplate":{"ContainerSpec":{"Env":["T=` + m + `"]}}}},` +
				`{"ID":"s2","Spec":{"TaskTemplate":{"PluginSpec":{"name":"p","env":["K=` + m + `"]}}}},null,{"ID":"s3"}]`},
		{"an empty list", serviceRedaction, `[]`, `[]`},
		{"a null list", serviceRedaction, `null`, `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := redactEnv([]byte(tt.answer), &tt.r)
			if err != nil {
				t.Fatalf("redactEnv() error = %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("redactEnv() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// An answer the rewrite cannot read is an error (the gateway answers 502),
// never passed on as it is.
func TestRedactEnvRefusesWhatItCannotRead(t *testing.T) {
	tests := []struct {
		name   string
		r      policy.Redaction
		answer string
	}{
		{"not JSON", containerRedaction, `<html>`},
		{"empty", containerRedaction, ``},
		{"two values", containerRedaction, `{"Config":{}} {"Config":{"Env":["A=1"]}}`},
		{"an env list of numbers", containerRedaction, `{"Config":{"Env":[1]}}`},
		{"an env object", containerRedaction, `{"Config":{"Env":{"A":"1"}}}`},
		{"an env string", containerRedaction, `{"Config":{"Env":"A=1"}}`},
		{"truncated", containerRedaction, `{"Config":{"Env":["A=1"]`},
		{"a list answer that is an object", serviceRedaction, `{"Spec":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := redactEnv([]byte(tt.answer), &tt.r); err == nil {
				t.Errorf("redactEnv(%s) = %s, want an error", tt.answer, got)
			}
		})
	}
}

// The redacted answer decodes into moby's types as the docker CLI decodes
// it: the names kept, no value left.
func TestRedactedAnswerDecodesIntoMobyTypes(t *testing.T) {
	in := container.InspectResponse{
		ID:     "c1",
		Config: &container.Config{Image: "alpine", Env: []string{"DB_PASSWORD=hunter2", "TERM"}},
	}
	answer, _ := json.Marshal(in)
	got, err := redactEnv(answer, &containerRedaction)
	if err != nil {
		t.Fatal(err)
	}
	var out container.InspectResponse
	if err := json.Unmarshal(got, &out); err != nil {
		t.Fatal(err)
	}
	if want := []string{"DB_PASSWORD=" + m, "TERM"}; strings.Join(out.Config.Env, " ") != strings.Join(want, " ") {
		t.Errorf("Config.Env = %q, want %q", out.Config.Env, want)
	}
	if out.ID != "c1" || out.Config.Image != "alpine" {
		t.Errorf("other fields changed: %+v", out)
	}

	svc := []swarm.Service{{ID: "s1", Spec: swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{
		ContainerSpec: &swarm.ContainerSpec{Env: []string{"TOKEN=abc"}},
	}}}}
	answer, _ = json.Marshal(svc)
	if got, err = redactEnv(answer, &serviceRedaction); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "abc") || !strings.Contains(string(got), `"TOKEN=`+m+`"`) {
		t.Errorf("service answer = %s", got)
	}
}

// TestRedactedInspectThroughTheGateway: a read-only client's inspect
// answer has the values replaced and a correct Content-Length, whether
// the daemon framed it by length or chunked it; admin's is as the daemon
// sent it; an error answer passes as it is; an answer over the limit is
// refused; the daemon connection is reused after a redacted answer.
func TestRedactedInspectThroughTheGateway(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		show := false
		c.Roles = map[string]config.RoleSpec{
			"viewer": {Allow: []string{"container.inspect"}},
			"debug":  {Allow: []string{"container.inspect"}, Containers: config.ContainerKnob{RedactEnv: &show}},
		}
		c.Clients = []config.ClientRule{
			{Group: "admins", Role: config.RoleAdmin},
			{Group: "readers", Role: config.RoleReadOnly},
			{Group: "viewers", Role: "viewer"},
			{Group: "debuggers", Role: "debug"},
		}
	})
	const answer = `{"Id":"c1","Config":{"Env":["DB_PASSWORD=hunter2","TERM"],"Image":"alpine"}}`
	tg.fake.mux.HandleFunc("GET /v1.41/containers/small/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		io.WriteString(w, answer)
	})
	tg.fake.mux.HandleFunc("GET /v1.41/containers/chunked/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer[:20])
		w.(http.Flusher).Flush() // chunked from here on
		io.WriteString(w, answer[20:])
	})
	tg.fake.mux.HandleFunc("GET /v1.41/containers/missing/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"message":"No such container: missing"}`)
	})
	tg.fake.mux.HandleFunc("GET /v1.41/containers/huge/json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"Config":{"Env":["A=hunter2"]},"Pad":"%s"}`, strings.Repeat("x", maxRedactedAnswer))
	})

	redacted := `{"Id":"c1","Config":{"Env":["DB_PASSWORD=` + m + `","TERM"],"Image":"alpine"}}`
	cases := []struct {
		group, path string
		status      int
		want        string // the whole answer, or what it contains for 502
	}{
		{"readers", "/v1.41/containers/small/json", 200, redacted},
		{"readers", "/v1.41/containers/chunked/json", 200, redacted},
		{"viewers", "/v1.41/containers/small/json", 200, redacted},
		{"admins", "/v1.41/containers/small/json", 200, answer},
		{"debuggers", "/v1.41/containers/chunked/json", 200, answer},
		{"readers", "/v1.41/containers/missing/json", 404, `{"message":"No such container: missing"}`},
		{"readers", "/v1.41/containers/huge/json", 502, "larger than 32 MiB"},
		{"readers", "/v1.41/containers/small/json", 200, redacted}, // after a refused answer
	}
	clients := map[string]*http.Client{}
	for _, c := range cases {
		if clients[c.group] == nil {
			clients[c.group] = tg.httpClient(tg.pki.client("u-"+c.group, c.group))
		}
	}
	for _, c := range cases {
		t.Run(c.group+" "+c.path, func(t *testing.T) {
			resp, err := clients[c.group].Get(tg.url(c.path))
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if c.status == 502 {
				if !strings.Contains(string(body), c.want) || strings.Contains(string(body), "hunter2") {
					t.Errorf("answer %s, want a refusal containing %q", body, c.want)
				}
				return
			}
			if string(body) != c.want {
				t.Errorf("answer\n%s\nwant\n%s", body, c.want)
			}
			if c.want == redacted && resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d, body %d bytes", resp.ContentLength, len(body))
			}
		})
	}
	// The access check at start, then one connection for the answers read
	// whole, and one after the huge answer, which closed the first.
	if n := tg.fake.conns.Load(); n > 3 {
		t.Errorf("the gateway opened %d daemon connections for 8 requests, want at most 3", n)
	}

	// An Upgrade header does not take the answer past the redaction.
	for _, upgrade := range []string{"tcp", "websocket", "h2c"} {
		req, _ := http.NewRequest(http.MethodGet, tg.url("/v1.41/containers/small/json"), nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", upgrade)
		resp, err := clients["readers"].Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != redacted {
			t.Errorf("with Upgrade: %s: %d %s, want the redacted answer", upgrade, resp.StatusCode, body)
		}
	}
}

// fuzzRedactions are the answer shapes FuzzRedactEnv rewrites.
var fuzzRedactions = []policy.Redaction{containerRedaction, serviceRedaction}

// FuzzRedactEnv: whatever the daemon answers, a rewrite that succeeds is
// JSON, leaves no value where the docker CLI reads an environment, and
// changes nothing more when run again.
func FuzzRedactEnv(f *testing.F) {
	f.Add([]byte(`{"Id":"c1","Config":{"Env":["DB_PASSWORD=hunter2","TERM"]}}`), uint8(0))
	f.Add([]byte(`{"config":{"env":["A=1"],"ENV":["B=2"]},"Config":null}`), uint8(0))
	f.Add([]byte(`{"\u0043onfig": {"Env" : [ "A=1" , "B" ] } }`), uint8(0))
	f.Add([]byte(`[{"Spec":{"TaskTemplate":{"ContainerSpec":{"Env":["T=1"]},"PluginSpec":{"env":["K=v"]}}},"PreviousSpec":{"TaskTemplate":{"ContainerSpec":{"Env":["T=0"]}}}},null]`), uint8(1))
	f.Fuzz(func(t *testing.T, answer []byte, shape uint8) {
		r := fuzzRedactions[int(shape)%len(fuzzRedactions)]
		out, err := redactEnv(answer, &r)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("redactEnv(%q) = %q, not JSON", answer, out)
		}
		again, err := redactEnv(out, &r)
		if err != nil || string(again) != string(out) {
			t.Fatalf("redactEnv is not idempotent on %q: %q, %v", out, again, err)
		}
		for _, env := range envAsDecoded(out, r.List) {
			for _, e := range env {
				if _, value, ok := strings.Cut(e, "="); ok && value != policy.EnvMarker {
					t.Fatalf("redactEnv(%q) = %q: %q keeps its value", answer, out, e)
				}
			}
		}
	})
}

// envAsDecoded returns the environment lists the docker CLI decodes from
// an answer: a container's, or each service's current spec.
func envAsDecoded(answer []byte, list bool) [][]string {
	if !list {
		var c container.InspectResponse
		if json.Unmarshal(answer, &c) != nil || c.Config == nil {
			return nil
		}
		return [][]string{c.Config.Env}
	}
	var services []swarm.Service
	if json.Unmarshal(answer, &services) != nil {
		return nil
	}
	var out [][]string
	for _, s := range services {
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			out = append(out, cs.Env)
		}
		if p := s.PreviousSpec; p != nil && p.TaskTemplate.ContainerSpec != nil {
			out = append(out, p.TaskTemplate.ContainerSpec.Env)
		}
		if ps := s.Spec.TaskTemplate.PluginSpec; ps != nil {
			out = append(out, ps.Env)
		}
	}
	return out
}
