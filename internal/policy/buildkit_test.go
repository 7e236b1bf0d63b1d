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

const buildkitConfig = `
roles:
  builder:
    allow: [image.build, session.start, grpc.serve]
  pusher:
    allow: [image.build, image.push, session.start, grpc.serve]
  trusted:
    allow: [image.build, session.start, grpc.serve]
    builds:
      host_network: true
      entitlements: [network.host, security.insecure]
      cache_backends: [s3]
    containers:
      cgroup_parent: true
  blind:
    allow: [grpc.serve]
    builds:
      buildkit_grpc: true
  watched:
    allow: [grpc.serve]
    mode: audit
clients:
  - cn: "blind-*"
    role: blind
  - cn: "admin-*"
    role: admin
  - cn: "*"
    role: builder
`

func TestJudgeSolve(t *testing.T) {
	p := mustPolicy(t, buildkitConfig)
	cache := func(typ string) *controlapi.CacheOptions {
		return &controlapi.CacheOptions{Exports: []*controlapi.CacheOptionsEntry{{Type: typ, Attrs: map[string]string{"dest": "/tmp/c"}}}}
	}
	imports := func(typ string) *controlapi.CacheOptions {
		return &controlapi.CacheOptions{Imports: []*controlapi.CacheOptionsEntry{{Type: typ}}}
	}
	exporter := func(typ string, attrs map[string]string) []*controlapi.Exporter {
		return []*controlapi.Exporter{{Type: typ, Attrs: attrs}}
	}
	cases := []struct {
		name, role string
		req        *controlapi.SolveRequest
		// rule is the setting a denial names; "" for an allowed request.
		rule, reason string
	}{
		{"plain build", "builder", &controlapi.SolveRequest{Exporters: exporter("moby", map[string]string{"name": "x"})}, "", ""},
		{"empty", "builder", &controlapi.SolveRequest{}, "", ""},
		{"network.host", "builder", &controlapi.SolveRequest{Entitlements: []string{"network.host"}}, "roles.builder.builds.entitlements", "entitlement network.host"},
		{"security.insecure", "builder", &controlapi.SolveRequest{Entitlements: []string{"security.insecure"}}, "roles.builder.builds.entitlements", "entitlement security.insecure"},
		{"device with a name", "builder", &controlapi.SolveRequest{Entitlements: []string{"device=nvidia.com/gpu"}}, "roles.builder.builds.entitlements", "entitlement device"},
		{"unknown entitlement", "trusted", &controlapi.SolveRequest{Entitlements: []string{"network.other"}}, "", "dockgate does not know"},
		{"entitlements allowed", "trusted", &controlapi.SolveRequest{Entitlements: []string{"network.host", "security.insecure"}}, "", ""},
		{"device not in trusted", "trusted", &controlapi.SolveRequest{Entitlements: []string{"network.host", "device"}}, "roles.trusted.builds.entitlements", "entitlement device"},
		{"force host network", "builder", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"force-network-mode": "host"}}, "roles.builder.builds.host_network", "force-network-mode=host"},
		{"force host network allowed", "trusted", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"force-network-mode": "host"}}, "", ""},
		{"force none", "builder", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"force-network-mode": "none"}}, "", ""},
		{"unknown network mode", "trusted", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"force-network-mode": "container:x"}}, "", "does not know"},
		{"cgroup parent", "builder", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"cgroup-parent": "/system.slice"}}, "roles.builder.containers.cgroup_parent", "cgroup-parent"},
		{"cgroup parent allowed", "trusted", &controlapi.SolveRequest{FrontendAttrs: map[string]string{"cgroup-parent": "/system.slice"}}, "", ""},
		{"local export goes to the client", "builder", &controlapi.SolveRequest{Exporters: exporter("local", map[string]string{"dest": "/etc"})}, "", ""},
		{"tar export goes to the client", "builder", &controlapi.SolveRequest{Exporters: exporter("tar", nil)}, "", ""},
		{"unknown exporter", "trusted", &controlapi.SolveRequest{Exporters: exporter("hostdir", nil)}, "", "exporter of type"},
		{"push", "builder", &controlapi.SolveRequest{Exporters: exporter("image", map[string]string{"name": "r/x", "push": "true"})}, "roles.builder.allow", "image.push is not allowed"},
		{"bare push", "builder", &controlapi.SolveRequest{Exporters: exporter("image", map[string]string{"push": ""})}, "roles.builder.allow", "pushes"},
		{"odd push value", "builder", &controlapi.SolveRequest{Exporters: exporter("moby", map[string]string{"push": "yes"})}, "roles.builder.allow", "pushes"},
		{"push=false", "builder", &controlapi.SolveRequest{Exporters: exporter("image", map[string]string{"push": "false"})}, "", ""},
		{"push allowed", "pusher", &controlapi.SolveRequest{Exporters: exporter("image", map[string]string{"push": "true"})}, "", ""},
		{"deprecated exporter push", "builder", &controlapi.SolveRequest{ExporterDeprecated: "image", ExporterAttrsDeprecated: map[string]string{"push": "1"}}, "roles.builder.allow", "ExporterDeprecated"},
		{"local cache", "builder", &controlapi.SolveRequest{Cache: cache("local")}, "", ""},
		{"registry cache", "builder", &controlapi.SolveRequest{Cache: imports("registry")}, "", ""},
		{"s3 cache export", "builder", &controlapi.SolveRequest{Cache: cache("s3")}, "roles.builder.builds.cache_backends", "Cache.Exports[0] is a s3 cache"},
		{"azblob cache import", "builder", &controlapi.SolveRequest{Cache: imports("azblob")}, "roles.builder.builds.cache_backends", "Cache.Imports[0]"},
		{"s3 allowed", "trusted", &controlapi.SolveRequest{Cache: cache("s3")}, "", ""},
		{"azblob not in trusted", "trusted", &controlapi.SolveRequest{Cache: imports("azblob")}, "roles.trusted.builds.cache_backends", "azblob"},
		{"unknown cache", "trusted", &controlapi.SolveRequest{Cache: cache("nfs")}, "", "does not know"},
		{"admin", "admin", &controlapi.SolveRequest{Entitlements: []string{"security.insecure"}, Cache: cache("s3")}, "", ""},
		{"built-in deployer", "deployer", &controlapi.SolveRequest{Entitlements: []string{"network.host"}}, "built-in role deployer (builds.entitlements)", "network.host"},
		{"nil request", "builder", nil, "", "not read"},
		{"no role", "nobody", &controlapi.SolveRequest{}, "", "no clients"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := p.JudgeSolve(identity.Identity{CN: "ci-7"}, tc.role, tc.req)
			wantAllow := tc.rule == "" && tc.reason == ""
			if v.Forward() != wantAllow {
				t.Fatalf("effect = %v, want allow %v (%s)", v.Effect, wantAllow, v.Message)
			}
			if wantAllow {
				if v.Message != "" {
					t.Errorf("message = %q, want none", v.Message)
				}
				return
			}
			if v.Rule != tc.rule {
				t.Errorf("rule = %q, want %q", v.Rule, tc.rule)
			}
			if !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("reason = %q, want it to mention %q", v.Reason, tc.reason)
			}
			if !strings.HasPrefix(v.Message, "dockgate: denied grpc.serve for ci-7") {
				t.Errorf("message = %q", v.Message)
			}
		})
	}
}

func TestJudgeSolveMessage(t *testing.T) {
	p := mustPolicy(t, buildkitConfig)
	v := p.JudgeSolve(identity.Identity{CN: "ci-7"}, "builder", &controlapi.SolveRequest{Entitlements: []string{"network.host"}})
	want := "dockgate: denied grpc.serve for ci-7 (role builder): the build asks for entitlement network.host (RUN steps in the host's network), which is not allowed; allow it by adding network.host to roles.builder.builds.entitlements"
	if v.Message != want {
		t.Errorf("message =\n%s\nwant\n%s", v.Message, want)
	}
}

func TestJudgeSolveAudit(t *testing.T) {
	p := mustPolicy(t, buildkitConfig)
	v := p.JudgeSolve(identity.Identity{CN: "ci-7"}, "watched", &controlapi.SolveRequest{Entitlements: []string{"security.insecure"}})
	if v.Effect != WouldDeny || !v.Forward() || !strings.Contains(v.Message, "would deny") {
		t.Errorf("audit role: %+v, want would_deny", v)
	}
}

// TestInspectBuildKit: Evaluate tells the gateway which grpc.serve
// requests to read.
func TestInspectBuildKit(t *testing.T) {
	p := mustPolicy(t, buildkitConfig)
	cases := []struct {
		cn, path string
		inspect  bool
	}{
		{"ci-7", "/grpc", true},
		{"ci-7", "/session", false},
		{"blind-1", "/grpc", false},
		{"admin-1", "/grpc", false},
	}
	for _, tc := range cases {
		t.Run(tc.cn+tc.path, func(t *testing.T) {
			in := Input{Identity: identity.Identity{CN: tc.cn}, Method: http.MethodPost, Path: tc.path}
			v := p.Evaluate(context.Background(), in, &fakeDaemon{})
			if !v.Forward() {
				t.Fatalf("%s %s denied: %s", tc.cn, tc.path, v.Message)
			}
			if v.InspectBuildKit != tc.inspect {
				t.Errorf("InspectBuildKit = %v, want %v", v.InspectBuildKit, tc.inspect)
			}
		})
	}
}

func TestJudgeFrontendSolve(t *testing.T) {
	p := mustPolicy(t, buildkitConfig)
	graph := func(exec *pb.ExecOp) *pb.Definition {
		op, err := proto.Marshal(&pb.Op{Op: &pb.Op_Exec{Exec: exec}})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := proto.Marshal(&pb.Op{Op: &pb.Op_Source{Source: &pb.SourceOp{Identifier: "docker-image://busybox"}}})
		return &pb.Definition{Def: [][]byte{src, op}}
	}
	cases := []struct {
		name, role string
		req        *gatewaypb.SolveRequest
		rule       string // "" allowed; "-" denied without a setting
	}{
		{"dockerfile frontend", "builder", &gatewaypb.SolveRequest{Frontend: "dockerfile.v0", FrontendOpt: map[string]string{"force-network-mode": "none"}}, ""},
		{"host network option", "builder", &gatewaypb.SolveRequest{FrontendOpt: map[string]string{"force-network-mode": "host"}}, "roles.builder.builds.host_network"},
		{"cgroup parent option", "builder", &gatewaypb.SolveRequest{FrontendOpt: map[string]string{"cgroup-parent": "x"}}, "roles.builder.containers.cgroup_parent"},
		{"s3 cache import", "builder", &gatewaypb.SolveRequest{CacheImports: []*gatewaypb.CacheOptionsEntry{{Type: "s3"}}}, "roles.builder.builds.cache_backends"},
		{"plain graph", "builder", &gatewaypb.SolveRequest{Definition: graph(&pb.ExecOp{Meta: &pb.Meta{Args: []string{"true"}}})}, ""},
		{"host network step", "builder", &gatewaypb.SolveRequest{Definition: graph(&pb.ExecOp{Network: pb.NetMode_HOST})}, "roles.builder.builds.host_network"},
		{"host network step allowed", "trusted", &gatewaypb.SolveRequest{Definition: graph(&pb.ExecOp{Network: pb.NetMode_HOST})}, ""},
		{"cgroup parent step in an input", "builder", &gatewaypb.SolveRequest{FrontendInputs: map[string]*pb.Definition{"context": graph(&pb.ExecOp{Meta: &pb.Meta{CgroupParent: "/x"}})}}, "roles.builder.containers.cgroup_parent"},
		{"unreadable step", "builder", &gatewaypb.SolveRequest{Definition: &pb.Definition{Def: [][]byte{{0xff}}}}, "-"},
		{"nil", "builder", nil, "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := p.JudgeFrontendSolve(identity.Identity{CN: "ci-7"}, tc.role, tc.req)
			if v.Forward() != (tc.rule == "") {
				t.Fatalf("effect = %v, want allow %v (%s)", v.Effect, tc.rule == "", v.Message)
			}
			if tc.rule != "" && tc.rule != "-" && v.Rule != tc.rule {
				t.Errorf("rule = %q, want %q (%s)", v.Rule, tc.rule, v.Message)
			}
		})
	}
	// The same graph check on a Solve request that carries a graph
	// (buildctl).
	v := p.JudgeSolve(identity.Identity{CN: "ci-7"}, "builder", &controlapi.SolveRequest{Definition: graph(&pb.ExecOp{Network: pb.NetMode_HOST})})
	if v.Forward() {
		t.Error("Solve with a host-network step allowed")
	}
}
