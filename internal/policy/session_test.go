package policy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/protobuf/proto"

	"github.com/dockgate/dockgate/internal/identity"
)

const sessionConfig = `
roles:
  builder:
    allow: [image.build, session.start, grpc.serve]
  fetcher:
    allow: [image.build, session.start, grpc.serve]
    builds:
      remote_sources: true
  blind:
    allow: [session.start, grpc.serve]
    builds:
      buildkit_grpc: true
  watched:
    allow: [session.start, grpc.serve]
    mode: audit
clients:
  - cn: "fetch-*"
    role: fetcher
  - cn: "blind-*"
    role: blind
  - cn: "watch-*"
    role: watched
  - cn: "admin-*"
    role: admin
  - cn: "*"
    role: builder
`

func TestInspectSession(t *testing.T) {
	p := mustPolicy(t, sessionConfig)
	for cn, want := range map[string]bool{"ci-1": true, "watch-1": true, "fetch-1": false, "blind-1": false, "admin-1": false} {
		v := p.Evaluate(context.Background(), Input{Identity: identity.Identity{CN: cn}, Method: http.MethodPost, Path: "/v1.47/session"}, &fakeDaemon{})
		if !v.Forward() {
			t.Fatalf("%s: session.start denied: %s", cn, v.Message)
		}
		if v.InspectSession != want {
			t.Errorf("%s: InspectSession = %v, want %v", cn, v.InspectSession, want)
		}
		g := p.Evaluate(context.Background(), Input{Identity: identity.Identity{CN: cn}, Method: http.MethodPost, Path: "/grpc"}, &fakeDaemon{})
		if g.InspectSession {
			t.Errorf("%s: InspectSession set on grpc.serve", cn)
		}
	}
}

func TestJudgeSessionDockerfile(t *testing.T) {
	p := mustPolicy(t, sessionConfig)
	cases := []struct {
		name, cn, path, data string
		ignore               bool
		effect               Effect
		want                 string // in the message
	}{
		{"plain", "ci-1", "Dockerfile", "FROM scratch\nCOPY a /a\n", false, Allow, ""},
		{"add url", "ci-1", "Dockerfile", "FROM scratch\nADD https://x/y /y\n", false, Deny, `Dockerfile line 2 (ADD) fetches "https://x/y"`},
		{"add git", "ci-1", "Dockerfile", "FROM scratch\nADD git@github.com:a/b.git /b\n", false, Deny, "builds.remote_sources"},
		{"add variable", "ci-1", "Dockerfile", "FROM scratch\nARG U\nADD $U /y\n", false, Deny, "builds.remote_sources"},
		{"syntax", "ci-1", "Dockerfile", "# syntax=docker/dockerfile:1\nFROM scratch\n", false, Deny, "frontend image"},
		{"unparsable", "ci-1", "Dockerfile", "FROM scratch\nNOPE x\n", false, Deny, "cannot be parsed"},
		{"ignore file", "ci-1", "Dockerfile.dockerignore", "node_modules\n*.log\n", true, Allow, ""},
		{"ignore file that adds", "ci-1", "Dockerfile.dockerignore", "FROM scratch\nADD http://x/y /y\n", true, Deny, "builds.remote_sources"},
		{"unparsable ignore file with a URL", "ci-1", "Dockerfile.dockerignore", "NEW https://x/y /y\n", true, Deny, "cannot be parsed"},
		{"remote sources", "fetch-1", "Dockerfile", "FROM scratch\nADD https://x/y /y\n", false, Allow, ""},
		{"buildkit_grpc", "blind-1", "Dockerfile", "FROM scratch\nADD https://x/y /y\n", false, Allow, ""},
		{"admin", "admin-1", "Dockerfile", "FROM scratch\nADD https://x/y /y\n", false, Allow, ""},
		{"audit", "watch-1", "Dockerfile", "FROM scratch\nADD https://x/y /y\n", false, WouldDeny, "would deny session.start"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := identity.Identity{CN: c.cn}
			role, _ := p.RoleOf(id)
			v := p.JudgeSessionDockerfile(id, role, c.path, []byte(c.data), c.ignore)
			if v.Effect != c.effect || !strings.Contains(v.Message, c.want) {
				t.Fatalf("got %v %q, want %v with %q", v.Effect, v.Message, c.effect, c.want)
			}
			if c.effect == Deny && c.want == "builds.remote_sources" && v.Rule == "" {
				t.Errorf("no rule named: %+v", v)
			}
		})
	}
	if v := p.JudgeSessionDockerfile(identity.Identity{CN: "x"}, "nosuch", "Dockerfile", []byte("FROM scratch\n"), false); v.Forward() {
		t.Errorf("unknown role allowed: %+v", v)
	}
}

func TestJudgeSolveDockerfileKey(t *testing.T) {
	p := mustPolicy(t, sessionConfig)
	for cn, want := range map[string]Effect{"ci-1": Deny, "fetch-1": Allow} {
		id := identity.Identity{CN: cn}
		role, _ := p.RoleOf(id)
		v := p.JudgeSolve(id, role, &controlapi.SolveRequest{Frontend: "dockerfile.v0", FrontendAttrs: map[string]string{"dockerfilekey": "context"}})
		if v.Effect != want {
			t.Errorf("%s: dockerfilekey=context: %v %q, want %v", cn, v.Effect, v.Message, want)
		}
		v = p.JudgeSolve(id, role, &controlapi.SolveRequest{Frontend: "dockerfile.v0", FrontendAttrs: map[string]string{"dockerfilekey": "dockerfile"}})
		if v.Effect != Allow {
			t.Errorf("%s: dockerfilekey=dockerfile: %v %q", cn, v.Effect, v.Message)
		}
	}
}

// TestJudgeSolveRemoteSources: what a Solve names that BuildKit fetches
// from the host's network needs builds.remote_sources, as a classic
// build's Dockerfile does.
func TestJudgeSolveRemoteSources(t *testing.T) {
	p := mustPolicy(t, sessionConfig)
	source := func(id string) *pb.Definition {
		b, err := proto.Marshal(&pb.Op{Op: &pb.Op_Source{Source: &pb.SourceOp{Identifier: id}}})
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Definition{Def: [][]byte{b}}
	}
	cases := []struct {
		name  string
		attrs map[string]string
		def   *pb.Definition
		want  string // "" when allowed without remote_sources
	}{
		{"plain", map[string]string{"filename": "Dockerfile", "context:base": "docker-image://alpine"}, nil, ""},
		{"local named context", map[string]string{"context:src": "local:src"}, nil, ""},
		{"BUILDKIT_SYNTAX", map[string]string{"build-arg:BUILDKIT_SYNTAX": "docker/dockerfile:1"}, nil, "BUILDKIT_SYNTAX"},
		{"remote context", map[string]string{"context": "https://github.com/a/b.git"}, nil, "builds.remote_context"},
		{"git named context", map[string]string{"context:src": "https://github.com/a/b.git"}, nil, "named context"},
		{"http source", nil, source("https://x/y"), `fetches "https://x/y"`},
		{"git source", nil, source("git://github.com/a/b"), "builds.remote_sources"},
		{"image source", nil, source("docker-image://docker.io/library/alpine:latest"), ""},
		{"local source", nil, source("local://context"), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for cn, remote := range map[string]bool{"ci-1": false, "fetch-1": true} {
				id := identity.Identity{CN: cn}
				role, _ := p.RoleOf(id)
				want := Allow
				if c.want != "" && !remote {
					want = Deny
				}
				for _, v := range []SolveVerdict{
					p.JudgeSolve(id, role, &controlapi.SolveRequest{Frontend: "dockerfile.v0", FrontendAttrs: c.attrs, Definition: c.def}),
					p.JudgeFrontendSolve(id, role, &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: c.attrs, Definition: c.def}),
				} {
					if v.Effect != want || (want == Deny && !strings.Contains(v.Message, c.want)) {
						t.Errorf("%s: %v %q, want %v with %q", cn, v.Effect, v.Message, want, c.want)
					}
				}
			}
		})
	}
}

// TestJudgeSessionElsewhere: a Dockerfile that would reach the frontend
// another way than the session the gateway reads is refused to a role
// whose sessions it reads.
func TestJudgeSessionElsewhere(t *testing.T) {
	p := mustPolicy(t, sessionConfig)
	for cn, want := range map[string]Effect{"ci-1": Deny, "fetch-1": Allow, "blind-1": Allow, "admin-1": Allow, "watch-1": WouldDeny} {
		id := identity.Identity{CN: cn}
		role, _ := p.RoleOf(id)
		if v := p.JudgeSessionCall(id, role); v.Effect != want || (want == Deny && !strings.Contains(v.Message, "builds.remote_sources")) {
			t.Errorf("%s: Control/Session: %v %q, want %v", cn, v.Effect, v.Message, want)
		}
		if role == "blind" || role == "admin" {
			continue // not judged: their Solve calls pass uninspected
		}
		if v := p.JudgeSolve(id, role, &controlapi.SolveRequest{FrontendAttrs: map[string]string{"local-sessionid:dockerfile": "other"}}); v.Effect != want {
			t.Errorf("%s: local-sessionid:dockerfile: %v %q, want %v", cn, v.Effect, v.Message, want)
		}
		if v := p.JudgeSolve(id, role, &controlapi.SolveRequest{FrontendInputs: map[string]*pb.Definition{"dockerfile": {}}}); v.Effect != want {
			t.Errorf("%s: FrontendInputs dockerfile: %v %q, want %v", cn, v.Effect, v.Message, want)
		}
		if v := p.JudgeSolve(id, role, &controlapi.SolveRequest{FrontendInputs: map[string]*pb.Definition{"context": {}}}); v.Effect != Allow {
			t.Errorf("%s: FrontendInputs context: %v %q, want allowed", cn, v.Effect, v.Message)
		}
	}
	if v := p.JudgeSessionCall(identity.Identity{CN: "x"}, "nosuch"); v.Forward() {
		t.Errorf("unknown role allowed: %+v", v)
	}
}
