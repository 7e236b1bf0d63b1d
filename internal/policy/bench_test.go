package policy

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// BenchmarkDecidePathOnly: a decision the path settles (container
// inspect for the ci role). Target: under 2 us, 0 allocs.
func BenchmarkDecidePathOnly(b *testing.B) {
	p := mustPolicy(b, testConfig)
	route, err := dockerapi.Classify("GET", "/v1.47/containers/web/json")
	if err != nil {
		b.Fatal(err)
	}
	req := request{Route: route}
	id := identity.Identity{CN: "ci-7", Groups: []string{"ci"}}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.decide(id, "ci", req); d.Effect != Allow {
			b.Fatal(d.message())
		}
	}
}

// BenchmarkDecidePathOnlyDenied: the same, denied (a denial builds its
// message strings).
func BenchmarkDecidePathOnlyDenied(b *testing.B) {
	p := mustPolicy(b, testConfig)
	route, _ := dockerapi.Classify("GET", "/v1.47/info")
	req := request{Route: route}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.decide(identity.Identity{CN: "ci-7"}, "ci", req); d.Effect != Deny {
			b.Fatal("allowed")
		}
	}
}

// BenchmarkDecideContainerCreate: the guardrails on a docker CLI create
// body (binds, mounts, capabilities), already decoded.
func BenchmarkDecideContainerCreate(b *testing.B) {
	p := mustPolicy(b, testConfig)
	body := readCreateBody(b)
	req, err := newRequest("POST", "/v1.47/containers/create", "name=web", body, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.decide(identity.Identity{CN: "ci-7"}, "ci", req); d.Effect != Allow {
			b.Fatal(d.message())
		}
	}
}

// BenchmarkDecideContainerCreateIsolated: the same under owner
// isolation, which also plans the owner checks (one volume).
func BenchmarkDecideContainerCreateIsolated(b *testing.B) {
	p := mustPolicy(b, `
roles:
  tenant:
    allow: [container.*]
    owner_isolation: true
    containers:
      bind_mounts: ["/srv/ci"]
      capabilities: [NET_BIND_SERVICE]
`)
	body := readCreateBody(b)
	req, err := newRequest("POST", "/v1.47/containers/create", "name=web", body, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.decide(identity.Identity{CN: "t1"}, "tenant", req); d.Effect != Allow || len(d.Owner.Checks) != 1 {
			b.Fatalf("%s %+v", d.message(), d.Owner)
		}
	}
}

// BenchmarkNewRequestAndDecideContainerCreate: what the gateway pays per
// create: classify, check and decode the body, decide.
func BenchmarkNewRequestAndDecideContainerCreate(b *testing.B) {
	p := mustPolicy(b, testConfig)
	body := readCreateBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := newRequest("POST", "/v1.47/containers/create", "name=web", body, 0)
		if err != nil {
			b.Fatal(err)
		}
		if d := p.decide(identity.Identity{CN: "ci-7"}, "ci", req); d.Effect != Allow {
			b.Fatal(d.message())
		}
	}
}

func readCreateBody(b *testing.B) []byte {
	body, err := os.ReadFile("testdata/create-docker-cli.json")
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// BenchmarkEvaluatePing: the whole evaluation of a keep-alive ping, the
// gateway's most frequent request: client rule, route, body check,
// decision. Target: well under 1 us, 0 allocs.
func BenchmarkEvaluatePing(b *testing.B) {
	p := mustPolicy(b, testConfig)
	in := Input{Identity: identity.Identity{CN: "ci-7"}, Method: "GET", Path: "/_ping", Body: http.NoBody}
	host := &fakeDaemon{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if v := p.Evaluate(ctx, in, host); v.Effect != Allow {
			b.Fatal(v.Message)
		}
	}
}

// BenchmarkEvaluateContainerCreateIsolated: a docker CLI create body read,
// decoded, decided, its volume checked and its owner label stamped.
func BenchmarkEvaluateContainerCreateIsolated(b *testing.B) {
	p := mustPolicy(b, evaluateConfig)
	body := readCreateBody(b)
	host := &fakeDaemon{}
	ctx := context.Background()
	rd := bytes.NewReader(body)
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		in := Input{Identity: identity.Identity{CN: "t1", Groups: []string{"tenants"}}, Method: "POST", Path: "/v1.47/containers/create",
			RawQuery: "name=web", ContentType: "application/json", Body: rd}
		if v := p.Evaluate(ctx, in, host); v.Status >= 500 {
			b.Fatal(v.Message)
		}
	}
}
