package policy_test

import (
	"fmt"
	"strings"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/policy"
)

const exampleConfig = `
roles:
  ci:
    allow: [container.*, exec.*, image.pull]
    containers:
      bind_mounts: ["/srv/ci"]
  tenant:
    allow: [container.*]
    owner_isolation: true
clients:
  - cn: "ci-*"
    role: ci
  - group: tenants
    role: tenant
`

func compileExample() (*config.Config, *policy.Policy) {
	cfg, err := config.Parse(strings.NewReader(exampleConfig))
	if err != nil {
		panic(err)
	}
	p, err := policy.Compile(&cfg)
	if err != nil {
		panic(err)
	}
	return &cfg, p
}

// The gateway's path for one request: read it as dockerd will, decode
// its JSON body, decide.
func ExamplePolicy_Decide() {
	cfg, p := compileExample()
	id := policy.Identity{CN: "ci-7"}
	role, _ := cfg.MatchClient(id.CN, id.Groups)

	req, err := policy.ParseRequest("POST", "/v1.47/containers/create", "name=web")
	if err != nil {
		panic(err) // 400
	}
	if err := req.SetBody([]byte(`{"Image":"busybox","HostConfig":{"Binds":["/etc:/etc"]}}`), 0); err != nil {
		panic(err) // 400, or 413 for dockerapi.ErrBodyTooLarge
	}
	d := p.Decide(id, role, req)
	fmt.Println(d.Effect, d.Status)
	fmt.Println(d.Message())

	req, _ = policy.ParseRequest("GET", "/v1.47/containers/web/logs", "follow=1")
	d = p.Decide(id, role, req)
	fmt.Println(d.Effect, d.Rule)
	// Output:
	// deny 403
	// dockgate: denied container.create for ci-7 (role ci): HostConfig.Binds[0] mounts host path "/etc", which is outside the allowed bind paths; allow it by adding "/etc" to roles.ci.containers.bind_mounts
	// allow roles.ci.allow[0] container.*
}

// Under owner isolation a decision says what to check and rewrite.
func ExampleDecision_Rewrite() {
	cfg, p := compileExample()
	id := policy.Identity{CN: "t1", Groups: []string{"tenants"}}
	role, _ := cfg.MatchClient(id.CN, id.Groups)

	req, _ := policy.ParseRequest("GET", "/containers/json", `all=1&filters={"status":["running"]}`)
	d := p.Decide(id, role, req)
	queryChanged, _, err := d.Rewrite(&req)
	if err != nil {
		panic(err)
	}
	fmt.Println(queryChanged, req.Query.Get("filters"))

	req, _ = policy.ParseRequest("POST", "/containers/4f2a/stop", "")
	d = p.Decide(id, role, req)
	for _, c := range d.Owner.Checks {
		fmt.Println(c.Kind, c.Ref, c.LookupPath(), c.Pin)
	}
	pinned, _ := policy.PinnedPath(req.Route, "4f2a9c0e1b7d")
	fmt.Println(pinned)
	d.DenyOwnership(d.Owner.Checks[0]) // the lookup said: not t1's
	fmt.Println(d.Status, d.Message())
	// Output:
	// true {"label":{"dockgate.owner=t1":true},"status":{"running":true}}
	// container 4f2a /containers/4f2a/json true
	// /containers/4f2a9c0e1b7d/stop
	// 404 No such container: 4f2a
}
