package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildkitConfig gives builders the built-in deployer (which allows
// grpc.serve, with its Solve calls read) and trusted builders a role that
// allows the network.host entitlement and host-network builds.
const buildkitConfig = `
audit:
  path: @AUDIT@
roles:
  trusted:
    allow: [image.build, image.inspect, session.start, grpc.serve, system.info]
    builds:
      host_network: true
      entitlements: [network.host]
clients:
  - cn: "build-*"
    role: deployer
  - cn: "trusted-*"
    role: trusted
  - group: admins
    role: admin
`

// buildxPlugin returns the docker-buildx plugin the test runs: the one
// scripts/buildx built (DOCKGATE_BUILDX, which scripts/test sets), or the
// user's.
func buildxPlugin(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("DOCKGATE_BUILDX")}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".docker", "cli-plugins", "docker-buildx"))
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no docker-buildx plugin: run scripts/buildx and set DOCKGATE_BUILDX to the path it prints (scripts/test does)")
	return ""
}

// TestBuildKitThroughGateway builds with `docker buildx build` (the docker
// driver: /session and /grpc through the gateway) and judges each build by
// the daemon's image store: an allowed build's image is there, a denied
// one's is not, and the client reads the policy's sentence.
func TestBuildKitThroughGateway(t *testing.T) {
	plugin := buildxPlugin(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "serve.yaml")
	auditPath := filepath.Join(dir, "audit.jsonl")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(buildkitConfig, "@AUDIT@", auditPath, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	if err := os.MkdirAll(filepath.Join(g.cli.dockerCfg, "cli-plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(plugin, filepath.Join(g.cli.dockerCfg, "cli-plugins", "docker-buildx")); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	certs := map[string]string{}
	for _, cn := range []string{"build-1", "trusted-1"} {
		certs[cn] = filepath.Join(dir, "certs", cn)
		g.cli.run("issue", "client", cn, "--out", certs[cn])
	}
	daemon := newDaemonAPI(g.d.Host())

	ctxDir := filepath.Join(dir, "context")
	os.Mkdir(ctxDir, 0o755)
	// A RUN step, so that entitlements and network modes matter; the
	// test daemon has no bridge, so RUN steps run with --network none or
	// host.
	dockerfile := "FROM " + g.d.Image() + "\nRUN echo built > /built\n"
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644)

	buildx := func(cn string, args ...string) (string, error) {
		cmd := exec.Command("docker", append([]string{"buildx", "build", "--progress", "plain"}, args...)...)
		cmd.Env = append(cleanEnv(),
			"DOCKER_HOST=tcp://"+g.addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH="+certs[cn],
			"DOCKER_CONFIG="+g.cli.dockerCfg, "BUILDX_NO_DEFAULT_ATTESTATIONS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	imageExists := func(tag string) bool {
		status, _ := daemon.do(t, "GET", "/images/"+tag+"/json", nil)
		return status == 200
	}
	removeImage := func(tag string) {
		t.Cleanup(func() { daemon.do(t, "DELETE", "/images/"+tag+"?force=1", nil) })
	}

	t.Run("allowed", func(t *testing.T) {
		const tag = "dockgate-e2e/buildkit:ok"
		removeImage(tag)
		out, err := buildx("build-1", "--network", "none", "-t", tag, ctxDir)
		if err != nil {
			t.Fatalf("docker buildx build: %v\n%s", err, out)
		}
		if !imageExists(tag) {
			t.Fatalf("the daemon has no image %s after an allowed build:\n%s", tag, out)
		}
	})

	t.Run("local output goes to the client", func(t *testing.T) {
		outDir := filepath.Join(dir, "out")
		out, err := buildx("build-1", "--network", "none", "--output", "type=local,dest="+outDir, ctxDir)
		if err != nil {
			t.Fatalf("docker buildx build: %v\n%s", err, out)
		}
		if b, err := os.ReadFile(filepath.Join(outDir, "built")); err != nil || string(b) != "built\n" {
			t.Errorf("local output: %q, %v", b, err)
		}
	})

	denied := []struct {
		name, cn, want string
		args           []string
	}{
		{"allow network.host", "build-1", "entitlement network.host", []string{"--allow", "network.host", "--network", "none"}},
		// buildx asks for the entitlement itself for a host network.
		{"host network", "build-1", "entitlement network.host", []string{"--network", "host"}},
		{"security.insecure", "trusted-1", "entitlement security.insecure", []string{"--allow", "security.insecure", "--network", "none"}},
		{"cgroup parent", "build-1", "cgroup-parent is not allowed", []string{"--cgroup-parent", "/dockgate-e2e", "--network", "none"}},
		{"push without image.push", "build-1", "image.push is not allowed", []string{"--push", "--network", "none"}},
	}
	for i, tc := range denied {
		t.Run(tc.name, func(t *testing.T) {
			tag := "dockgate-e2e/buildkit:denied-" + string(rune('a'+i))
			removeImage(tag)
			out, err := buildx(tc.cn, append(tc.args, "-t", tag, ctxDir)...)
			if err == nil {
				t.Fatalf("docker buildx build %v succeeded:\n%s", tc.args, out)
			}
			if !strings.Contains(out, "dockgate: denied grpc.serve for "+tc.cn) || !strings.Contains(out, tc.want) {
				t.Errorf("buildx output does not carry the policy's sentence naming %q:\n%s", tc.want, out)
			}
			if imageExists(tag) {
				t.Errorf("the daemon has image %s after a denied build", tag)
			}
		})
	}

	// The audit record of each refused build's /grpc stream says so.
	waitUntil(t, "audit records of the refused Solve calls", func() bool {
		b, _ := os.ReadFile(auditPath)
		return strings.Count(string(b), "BuildKit Solve call(s) denied on the stream") >= len(denied)
	})

	t.Run("network.host for a role that allows it", func(t *testing.T) {
		const tag = "dockgate-e2e/buildkit:host"
		removeImage(tag)
		out, err := buildx("trusted-1", "--allow", "network.host", "--network", "host", "-t", tag, ctxDir)
		if err != nil {
			t.Fatalf("docker buildx build: %v\n%s", err, out)
		}
		if !imageExists(tag) {
			t.Fatalf("the daemon has no image %s", tag)
		}
	})
}
