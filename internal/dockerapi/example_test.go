package dockerapi_test

import (
	"errors"
	"fmt"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

func ExampleClassify() {
	r, err := dockerapi.Classify("GET", "/v1.47/containers/web/json")
	fmt.Println(r.Op, r.Version, r.Target, err)

	r, err = dockerapi.Classify("GET", "/images/localhost:5000/team/app:1.2/json")
	fmt.Println(r.Op, r.Target, err)

	_, err = dockerapi.Classify("GET", "/v1.47/containers/a%2Fb/json")
	fmt.Println(err)

	r, _ = dockerapi.Classify("GET", "/v1.47/no/such/route")
	fmt.Println(r.Op)
	// Output:
	// container.inspect 1.47 web <nil>
	// image.inspect localhost:5000/team/app:1.2 <nil>
	// path refused: encoded slash (%2F) in the path
	// unknown_route
}

func ExampleCompileGlobs() {
	allowed, err := dockerapi.CompileGlobs([]string{"container.*", "exec.*", "image.pull"})
	if err != nil {
		panic(err)
	}
	for _, op := range []dockerapi.Operation{dockerapi.OpContainerCreate, dockerapi.OpImagePush, dockerapi.OpUnknownRoute} {
		fmt.Println(op, allowed.Has(op))
	}

	_, err = dockerapi.CompileGlobs([]string{"contianer.*"})
	fmt.Println(err)
	// Output:
	// container.create true
	// image.push false
	// unknown_route false
	// invalid operation glob: "contianer.*" matches no operation (see docs/OPERATIONS.md)
}

func ExampleDecodeContainerCreate() {
	body := []byte(`{"Image":"busybox","HostConfig":{"Privileged":false,"privileged":true}}`)
	_, err := dockerapi.DecodeContainerCreate(body, 0)
	fmt.Println(errors.Is(err, dockerapi.ErrDuplicateKey))
	fmt.Println(err)

	c, err := dockerapi.DecodeContainerCreate([]byte(`{"Image":"busybox","Privileged":true}`), 0)
	if err != nil {
		panic(err)
	}
	for _, hc := range c.HostConfigs() {
		fmt.Println("privileged:", hc.Privileged)
	}

	c.SetLabel("dockgate.owner", "ci-7")
	forward, err := c.Encode()
	if err != nil {
		panic(err)
	}
	fmt.Println(len(forward) > 0)
	// Output:
	// true
	// body refused: duplicate key "HostConfig.Privileged" (also written "privileged"; Docker reads key names case-insensitively)
	// privileged: false
	// privileged: true
	// true
}
