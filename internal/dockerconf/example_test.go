package dockerconf_test

import (
	"fmt"

	"github.com/dockgate/dockgate/internal/dockerconf"
)

func ExampleParseClientHost() {
	h, defaulted, err := dockerconf.ParseClientHost("docker.example.com")
	fmt.Println(h, defaulted, err)

	_, _, err = dockerconf.ParseClientHost("tcp://0.0.0.0:2376")
	fmt.Println(err)
	// Output:
	// tcp://docker.example.com:2376 true <nil>
	// invalid host "tcp://0.0.0.0:2376": 0.0.0.0 is where dockerd listens, not an address a client can connect to
}

func ExampleExports() {
	host := dockerconf.Host{Hostname: "docker.example.com", Port: 2376}
	vars := dockerconf.DockerTLSEnv(host, "/home/alice/.local/share/dockgate/clients/alice")
	out, _ := dockerconf.Exports(dockerconf.ShellFish, vars, "dockgate env alice --host "+host.String())
	fmt.Print(out)
	// Output:
	// set -gx DOCKER_HOST tcp://docker.example.com:2376;
	// set -gx DOCKER_TLS_VERIFY 1;
	// set -gx DOCKER_CERT_PATH /home/alice/.local/share/dockgate/clients/alice;
	// # Run this command to configure your shell:
	// # dockgate env alice --host tcp://docker.example.com:2376 | source
}

func ExampleDaemon_FlagsLine() {
	d := dockerconf.Daemon{
		Listen: dockerconf.Host{Hostname: "0.0.0.0", Port: 2376},
		Files:  dockerconf.FilesIn("/etc/docker/tls"),
	}
	fmt.Println(d.FlagsLine())
	// Output:
	// -H tcp://0.0.0.0:2376 --tlsverify --tlscacert=/etc/docker/tls/ca.pem --tlscert=/etc/docker/tls/cert.pem --tlskey=/etc/docker/tls/key.pem
}

func ExampleSetCurrentContext() {
	out, _ := dockerconf.SetCurrentContext([]byte(`{"auths":{},"credsStore":"desktop"}`), "prod")
	fmt.Println(string(out))
	// Output:
	// {
	// 	"auths": {},
	// 	"credsStore": "desktop",
	// 	"currentContext": "prod"
	// }
}
