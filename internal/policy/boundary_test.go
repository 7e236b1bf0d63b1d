package policy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/moby/moby/api/types/swarm"
)

// The tests in this file pin the edges of body handling, names and the
// service guard: each fails if its comparison is turned around or moved by
// one (docs/TESTING.md, mutation testing).

// A JSON body is checked for its Content-Type; an empty one needs none.
func TestEvaluateBodyContentTypeEdges(t *testing.T) {
	p := mustPolicy(t, evaluateConfig)
	host := &fakeDaemon{objects: map[string]Object{"container/web": owned("web", "ci-7")}}
	in := Input{Identity: ci7, Method: "POST", Path: "/containers/create", Body: strings.NewReader(`{"Image":"x"}`)}
	if v := p.Evaluate(context.Background(), in, host); v.Forward() || v.Status != http.StatusBadRequest {
		t.Errorf("JSON body without a Content-Type: %v %d, want 400", v.Effect, v.Status)
	}
	in = Input{Identity: ci7, Method: "POST", Path: "/containers/web/update", Body: strings.NewReader("")}
	if v := p.Evaluate(context.Background(), in, host); !v.Forward() {
		t.Errorf("empty body without a Content-Type: %v %d %s, want forwarded", v.Effect, v.Status, v.Message)
	}
}

// A route that takes no body accepts an empty one that is not
// http.NoBody (a client's "Content-Length: 0").
func TestEvaluateEmptyBodyOnBodylessRoute(t *testing.T) {
	p := mustPolicy(t, evaluateConfig)
	host := &fakeDaemon{objects: map[string]Object{"container/web": owned("web", "ci-7")}}
	in := Input{Identity: ci7, Method: "POST", Path: "/containers/web/stop", Body: strings.NewReader("")}
	if v := p.Evaluate(context.Background(), in, host); !v.Forward() {
		t.Errorf("empty body on container.stop: %v %d %s, want forwarded", v.Effect, v.Status, v.Message)
	}
	in.Body = strings.NewReader("\x00")
	if v := p.Evaluate(context.Background(), in, host); v.Forward() || v.Status != http.StatusBadRequest {
		t.Errorf("one byte of body on container.stop: %v %d, want 400", v.Effect, v.Status)
	}
}

// A body of exactly the limit passes; one byte more is too large. A config
// that skipped Default (limit 0) gets the default limit, not zero.
func TestEvaluateBodyLimitEdges(t *testing.T) {
	body := func(n int) string { return `{"Image":"` + strings.Repeat("x", n-12) + `"}` }
	p := mustPolicy(t, evaluateConfig)
	for _, tc := range []struct {
		size int
		ok   bool
	}{{dockerapi.DefaultMaxBody, true}, {dockerapi.DefaultMaxBody + 1, false}} {
		in := Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/json", Body: strings.NewReader(body(tc.size))}
		v := p.Evaluate(context.Background(), in, &fakeDaemon{})
		if v.Forward() != tc.ok || !tc.ok && v.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("body of %d bytes: %v %d %s, want forwarded %v", tc.size, v.Effect, v.Status, v.Message, tc.ok)
		}
	}
	cfg, err := config.Parse(strings.NewReader(evaluateConfig))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Limits.MaxJSONBody = 0
	p, err = Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	in := Input{Identity: ci7, Method: "POST", Path: "/containers/create", ContentType: "application/json", Body: strings.NewReader(body(100))}
	if v := p.Evaluate(context.Background(), in, &fakeDaemon{}); !v.Forward() {
		t.Errorf("limit 0 (no Default): %v %d %s, want the default limit", v.Effect, v.Status, v.Message)
	}
}

// plainName accepts exactly the characters of IDs and volume names, the
// ends of each range included.
func TestPlainNameEdges(t *testing.T) {
	for _, s := range []string{"a", "z", "A", "Z", "0", "9", "_", ".", "-", "aZ0_.-"} {
		if !plainName(s) {
			t.Errorf("plainName(%q) = false, want true", s)
		}
	}
	// The neighbours of each range's ends, and what a path would escape.
	for _, s := range []string{"", "`", "{", "@", "[", "/", ":", "^", "a/b", "a b", "%2F", "\x00", "é"} {
		if plainName(s) {
			t.Errorf("plainName(%q) = true, want false", s)
		}
	}
}

// Each SELinux field of a service's privileges weakens confinement on its
// own; a task runtime other than a container's needs admin operations.
func TestGuardServiceEdges(t *testing.T) {
	for name, c := range map[string]*swarm.SELinuxContext{
		"Disable": {Disable: true}, "User": {User: "u"}, "Role": {Role: "r"}, "Type": {Type: "t"}, "Level": {Level: "s0"},
	} {
		if v := guardPrivileges("", &swarm.Privileges{SELinuxContext: c}); v == nil {
			t.Errorf("SELinuxContext.%s set: no violation", name)
		}
	}
	if v := guardPrivileges("", &swarm.Privileges{SELinuxContext: &swarm.SELinuxContext{}}); v != nil {
		t.Errorf("empty SELinuxContext: %v, want none", v.reason)
	}
	r := &role{name: "r"}
	if v := r.guardService(&swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{Runtime: swarm.RuntimePlugin}}); v == nil || v.knob != knobAdminOperations {
		t.Errorf("plugin runtime without admin operations: %+v, want a violation naming %s", v, knobAdminOperations)
	}
}
