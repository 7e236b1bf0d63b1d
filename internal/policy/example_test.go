package policy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
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

// exampleHost is a daemon with one container, web, owned by t1.
type exampleHost struct{}

func (exampleHost) Inspect(_ context.Context, kind policy.ObjectKind, ref string) (policy.Object, error) {
	if kind == policy.KindContainer && (ref == "web" || ref == "4f2a") {
		return policy.Object{ID: "4f2a9c0e1b7d", Labels: map[string]string{policy.OwnerLabel: "t1"}}, nil
	}
	return policy.Object{}, policy.ErrNotFound
}

func (exampleHost) CreateVolume(context.Context, string, map[string]string) (policy.Object, error) {
	return policy.Object{}, errors.New("not in this example")
}

func (exampleHost) ResolvePath(p string) (string, error) { return p, nil }

// The gateway's path for one request: one call reads it as dockerd will,
// decodes its JSON body and decides.
func ExamplePolicy_Evaluate() {
	_, p := compileExample()
	v := p.Evaluate(context.Background(), policy.Input{
		Identity:    identity.Identity{CN: "ci-7"},
		Method:      "POST",
		Path:        "/v1.47/containers/create",
		RawQuery:    "name=web",
		ContentType: "application/json",
		Body:        strings.NewReader(`{"Image":"busybox","HostConfig":{"Binds":["/etc:/etc"]}}`),
	}, exampleHost{})
	fmt.Println(v.Effect, v.Status)
	fmt.Println(v.Message)

	v = p.Evaluate(context.Background(), policy.Input{
		Identity: identity.Identity{CN: "ci-7"}, Method: "GET", Path: "/v1.47/containers/web/logs", RawQuery: "follow=1",
	}, exampleHost{})
	fmt.Println(v.Effect, v.Rule)
	// Output:
	// deny 403
	// dockgate: denied container.create for ci-7 (role ci): HostConfig.Binds[0] mounts host path "/etc", which is outside the allowed bind paths; allow it by adding "/etc" to roles.ci.containers.bind_mounts
	// allow roles.ci.allow[0] container.*
}

// Under owner isolation the verdict says what to forward: lists get the
// owner filter, and a path names the object by the ID that was checked.
func ExamplePolicy_Evaluate_ownerIsolation() {
	_, p := compileExample()
	t1 := identity.Identity{CN: "t1", Groups: []string{"tenants"}}
	v := p.Evaluate(context.Background(), policy.Input{
		Identity: t1, Method: "GET", Path: "/containers/json", RawQuery: `all=1&filters={"status":["running"]}`,
	}, exampleHost{})
	fmt.Println(v.Effect, v.RawQuery)

	v = p.Evaluate(context.Background(), policy.Input{Identity: t1, Method: "POST", Path: "/containers/4f2a/stop"}, exampleHost{})
	fmt.Println(v.Effect, v.Path)

	t2 := identity.Identity{CN: "t2", Groups: []string{"tenants"}}
	v = p.Evaluate(context.Background(), policy.Input{Identity: t2, Method: "POST", Path: "/containers/web/stop"}, exampleHost{})
	fmt.Println(v.Status, v.Message)
	// Output:
	// allow all=1&filters=%7B%22label%22%3A%7B%22dockgate.owner%3Dt1%22%3Atrue%7D%2C%22status%22%3A%7B%22running%22%3Atrue%7D%7D
	// allow /containers/4f2a9c0e1b7d/stop
	// 404 No such container: web
}
