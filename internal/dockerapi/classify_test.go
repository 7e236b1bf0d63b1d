package dockerapi

import (
	"bufio"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
)

const (
	digest   = "sha256:4b7ce07a5c63efbb1d8bf6b96c2c7d4b6f6b8d1e2f3a4b5c6d7e8f9a0b1c2d3e"
	execID   = "0f6c4ba3b7d1f5f7d6b0c4a9e1f2d3c4b5a69788"
	imageRef = "localhost:5000/team/app@" + digest
)

// routeCase is one request and how dockerd routes it.
type routeCase struct {
	method, path string
	op           Operation
	target       string
	checkpoint   string
}

// routeCases has at least one request for every route dockerd registers
// (TestRouteCasesCoverTable checks), written without a version prefix.
var routeCases = []routeCase{
	// checkpoint
	{"GET", "/containers/web/checkpoints", OpCheckpointList, "web", ""},
	{"POST", "/containers/web/checkpoints", OpCheckpointCreate, "web", ""},
	{"DELETE", "/containers/web/checkpoints/cp1", OpCheckpointDelete, "web", "cp1"},

	// container
	{"HEAD", "/containers/web/archive", OpContainerArchiveHead, "web", ""},
	{"GET", "/containers/json", OpContainerList, "", ""},
	{"GET", "/containers/web/export", OpContainerExport, "web", ""},
	{"GET", "/containers/web/changes", OpContainerChanges, "web", ""},
	{"GET", "/containers/abc/json", OpContainerInspect, "abc", ""},
	{"GET", "/containers/web/top", OpContainerTop, "web", ""},
	{"GET", "/containers/web/logs", OpContainerLogs, "web", ""},
	{"GET", "/containers/web/stats", OpContainerStats, "web", ""},
	{"GET", "/containers/web/attach/ws", OpContainerAttachWS, "web", ""},
	{"GET", "/exec/" + execID + "/json", OpExecInspect, execID, ""},
	{"GET", "/containers/web/archive", OpContainerArchiveGet, "web", ""},
	{"POST", "/containers/create", OpContainerCreate, "", ""},
	{"POST", "/containers/web/kill", OpContainerKill, "web", ""},
	{"POST", "/containers/web/pause", OpContainerPause, "web", ""},
	{"POST", "/containers/web/unpause", OpContainerUnpause, "web", ""},
	{"POST", "/containers/web/restart", OpContainerRestart, "web", ""},
	{"POST", "/containers/web/start", OpContainerStart, "web", ""},
	{"POST", "/containers/create/start", OpContainerStart, "create", ""},
	{"POST", "/containers/web/stop", OpContainerStop, "web", ""},
	{"POST", "/containers/web/wait", OpContainerWait, "web", ""},
	{"POST", "/containers/web/resize", OpContainerResize, "web", ""},
	{"POST", "/containers/web/attach", OpContainerAttach, "web", ""},
	{"POST", "/containers/web/exec", OpContainerExec, "web", ""},
	{"POST", "/exec/" + execID + "/start", OpExecStart, execID, ""},
	{"POST", "/exec/" + execID + "/resize", OpExecResize, execID, ""},
	{"POST", "/containers/web/rename", OpContainerRename, "web", ""},
	{"POST", "/containers/web/update", OpContainerUpdate, "web", ""},
	{"POST", "/containers/prune", OpContainerPrune, "", ""},
	{"POST", "/commit", OpContainerCommit, "", ""},
	{"PUT", "/containers/web/archive", OpContainerArchivePut, "web", ""},
	{"DELETE", "/containers/web", OpContainerDelete, "web", ""},
	{"DELETE", "/containers/json", OpContainerDelete, "json", ""},

	// image
	{"GET", "/images/json", OpImageList, "", ""},
	{"GET", "/images/search", OpImageSearch, "", ""},
	{"GET", "/images/get", OpImageSave, "", ""},
	{"GET", "/images/busybox:latest/get", OpImageSave, "busybox:latest", ""},
	{"GET", "/images/busybox/history", OpImageHistory, "busybox", ""},
	{"GET", "/images/" + imageRef + "/json", OpImageInspect, imageRef, ""},
	{"GET", "/images/registry.example.com:5000/a/b/c:1.2/json", OpImageInspect, "registry.example.com:5000/a/b/c:1.2", ""},
	{"GET", "/images/a/json/json", OpImageInspect, "a/json", ""},
	{"GET", "/images/" + digest + "/json", OpImageInspect, digest, ""},
	{"GET", "/images/busybox/attestations", OpImageAttestations, "busybox", ""},
	{"POST", "/images/load", OpImageLoad, "", ""},
	{"POST", "/images/create", OpImagePull, "", ""},
	{"POST", "/images/localhost:5000/a/b:tag/push", OpImagePush, "localhost:5000/a/b:tag", ""},
	{"POST", "/images/busybox/tag", OpImageTag, "busybox", ""},
	{"POST", "/images/prune", OpImagePrune, "", ""},
	{"DELETE", "/images/" + imageRef, OpImageDelete, imageRef, ""},

	// system
	{"OPTIONS", "/containers/json", OpSystemOptions, "", ""},
	{"OPTIONS", "/", OpSystemOptions, "", ""},
	{"GET", "/_ping", OpSystemPing, "", ""},
	{"HEAD", "/_ping", OpSystemPing, "", ""},
	{"GET", "/events", OpSystemEvents, "", ""},
	{"GET", "/info", OpSystemInfo, "", ""},
	{"GET", "/version", OpSystemVersion, "", ""},
	{"GET", "/system/df", OpSystemDF, "", ""},
	{"POST", "/auth", OpSystemAuth, "", ""},

	// volume
	{"GET", "/volumes", OpVolumeList, "", ""},
	{"GET", "/volumes/data", OpVolumeInspect, "data", ""},
	{"GET", "/volumes/create", OpVolumeInspect, "create", ""},
	{"POST", "/volumes/create", OpVolumeCreate, "", ""},
	{"POST", "/volumes/prune", OpVolumePrune, "", ""},
	{"PUT", "/volumes/data", OpVolumeUpdate, "data", ""},
	{"DELETE", "/volumes/data", OpVolumeDelete, "data", ""},

	// build
	{"POST", "/build", OpImageBuild, "", ""},
	{"POST", "/build/prune", OpBuildPrune, "", ""},
	{"POST", "/build/cancel", OpBuildCancel, "", ""},

	// session
	{"POST", "/session", OpSessionStart, "", ""},

	// swarm
	{"POST", "/swarm/init", OpSwarmInit, "", ""},
	{"POST", "/swarm/join", OpSwarmJoin, "", ""},
	{"POST", "/swarm/leave", OpSwarmLeave, "", ""},
	{"GET", "/swarm", OpSwarmInspect, "", ""},
	{"GET", "/swarm/unlockkey", OpSwarmUnlockKey, "", ""},
	{"POST", "/swarm/update", OpSwarmUpdate, "", ""},
	{"POST", "/swarm/unlock", OpSwarmUnlock, "", ""},
	{"GET", "/services", OpServiceList, "", ""},
	{"GET", "/services/svc1", OpServiceInspect, "svc1", ""},
	{"GET", "/services/create", OpServiceInspect, "create", ""},
	{"POST", "/services/create", OpServiceCreate, "", ""},
	{"POST", "/services/svc1/update", OpServiceUpdate, "svc1", ""},
	{"DELETE", "/services/svc1", OpServiceDelete, "svc1", ""},
	{"GET", "/services/svc1/logs", OpServiceLogs, "svc1", ""},
	{"GET", "/nodes", OpNodeList, "", ""},
	{"GET", "/nodes/node1", OpNodeInspect, "node1", ""},
	{"DELETE", "/nodes/node1", OpNodeDelete, "node1", ""},
	{"POST", "/nodes/node1/update", OpNodeUpdate, "node1", ""},
	{"GET", "/tasks", OpTaskList, "", ""},
	{"GET", "/tasks/task1", OpTaskInspect, "task1", ""},
	{"GET", "/tasks/task1/logs", OpTaskLogs, "task1", ""},
	{"GET", "/secrets", OpSecretList, "", ""},
	{"POST", "/secrets/create", OpSecretCreate, "", ""},
	{"DELETE", "/secrets/s1", OpSecretDelete, "s1", ""},
	{"GET", "/secrets/s1", OpSecretInspect, "s1", ""},
	{"POST", "/secrets/s1/update", OpSecretUpdate, "s1", ""},
	{"GET", "/configs", OpConfigList, "", ""},
	{"POST", "/configs/create", OpConfigCreate, "", ""},
	{"DELETE", "/configs/c1", OpConfigDelete, "c1", ""},
	{"GET", "/configs/c1", OpConfigInspect, "c1", ""},
	{"POST", "/configs/c1/update", OpConfigUpdate, "c1", ""},

	// plugin
	{"GET", "/plugins", OpPluginList, "", ""},
	{"GET", "/plugins/vieux/sshfs:latest/json", OpPluginInspect, "vieux/sshfs:latest", ""},
	{"GET", "/plugins/privileges", OpPluginPrivileges, "", ""},
	{"DELETE", "/plugins/vieux/sshfs:latest", OpPluginDelete, "vieux/sshfs:latest", ""},
	{"POST", "/plugins/vieux/sshfs/enable", OpPluginEnable, "vieux/sshfs", ""},
	{"POST", "/plugins/vieux/sshfs/disable", OpPluginDisable, "vieux/sshfs", ""},
	{"POST", "/plugins/pull", OpPluginInstall, "", ""},
	{"POST", "/plugins/vieux/sshfs/push", OpPluginPush, "vieux/sshfs", ""},
	{"POST", "/plugins/vieux/sshfs/upgrade", OpPluginUpgrade, "vieux/sshfs", ""},
	{"POST", "/plugins/vieux/sshfs/set", OpPluginSet, "vieux/sshfs", ""},
	{"POST", "/plugins/create", OpPluginCreate, "", ""},

	// distribution
	{"GET", "/distribution/docker.io/library/busybox:latest/json", OpDistributionInspect, "docker.io/library/busybox:latest", ""},

	// network
	{"GET", "/networks", OpNetworkList, "", ""},
	{"GET", "/networks/", OpNetworkList, "", ""},
	{"GET", "/networks/bridge", OpNetworkInspect, "bridge", ""},
	{"GET", "/networks/create", OpNetworkInspect, "create", ""},
	{"POST", "/networks/create", OpNetworkCreate, "", ""},
	{"POST", "/networks/net1/connect", OpNetworkConnect, "net1", ""},
	{"POST", "/networks/net1/disconnect", OpNetworkDisconnect, "net1", ""},
	{"POST", "/networks/prune", OpNetworkPrune, "", ""},
	{"DELETE", "/networks/net1", OpNetworkDelete, "net1", ""},

	// debug
	{"GET", "/debug/vars", OpDebugVars, "", ""},
	{"GET", "/debug/pprof/", OpDebugPprof, "", ""},
	{"GET", "/debug/pprof/cmdline", OpDebugPprof, "", ""},
	{"GET", "/debug/pprof/profile", OpDebugPprof, "", ""},
	{"GET", "/debug/pprof/symbol", OpDebugPprof, "", ""},
	{"GET", "/debug/pprof/trace", OpDebugPprof, "", ""},
	{"GET", "/debug/pprof/heap", OpDebugPprof, "heap", ""},

	// grpc
	{"POST", "/grpc", OpGRPCServe, "", ""},
}

func TestClassifyRoutes(t *testing.T) {
	// Each route with no version, the oldest allowed, a common one and
	// one newer than any dockerd speaks (dockerd refuses it, we classify).
	for _, version := range []string{"", "1.24", "1.41", "1.56", "99.0"} {
		for _, tc := range routeCases {
			path := tc.path
			if version != "" {
				path = "/v" + version + tc.path
			}
			t.Run(tc.method+" "+path, func(t *testing.T) {
				got, err := Classify(tc.method, path)
				if err != nil {
					t.Fatalf("Classify(%q, %q) error = %v, want %s", tc.method, path, err, tc.op)
				}
				want := Route{Op: tc.op, Version: version, Path: tc.path, Target: tc.target, Checkpoint: tc.checkpoint}
				if got != want {
					t.Errorf("Classify(%q, %q) = %+v, want %+v", tc.method, path, got, want)
				}
			})
		}
	}
}

// TestRouteCasesCoverTable checks that routeCases exercise every route of
// the table, so a route added to the table gets a test row.
func TestRouteCasesCoverTable(t *testing.T) {
	covered := map[string]bool{}
	for _, tc := range routeCases {
		if r, _, _ := lookup(tc.method, tc.path); r != nil {
			covered[r.method+" "+r.template] = true
		}
	}
	for _, spec := range routeTable {
		if !covered[spec.method+" "+spec.template] {
			t.Errorf("no routeCases row is served by %s %s", spec.method, spec.template)
		}
	}
}

func TestEveryOperationHasARoute(t *testing.T) {
	routed := map[Operation]bool{OpImageImport: true} // image.import comes from Refine
	for _, spec := range routeTable {
		routed[spec.op] = true
	}
	for _, op := range Operations() {
		if !routed[op] {
			t.Errorf("operation %s has no route", op)
		}
	}
}

func TestClassifyUnknownRoutes(t *testing.T) {
	cases := []struct{ method, path string }{
		{"GET", "/containers"},
		{"GET", "/Containers/json"},       // case-sensitive
		{"get", "/containers/json"},       // methods too
		{"HEAD", "/containers/json"},      // HEAD is not GET to gorilla/mux
		{"POST", "/containers/json"},      // no POST route ends in /json
		{"PATCH", "/containers/web"},      // no PATCH routes
		{"GET", "/containers/web/nope"},   // no such action
		{"GET", "/v1.41"},                 // a version alone
		{"GET", "/v1.41/"},                // a version and nothing
		{"GET", "/V1.41/containers/json"}, // 'V' is not the prefix
		{"GET", "/v1.41/v1.41/containers/json"},
		{"GET", "/vx/containers/json"},
		{"GET", "/v1.41x/containers/json"},
		{"GET", "/"},
		{"POST", "/v1.41/containers/web/checkpoints/cp1"},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got, err := Classify(tc.method, tc.path)
			if err != nil {
				t.Fatalf("Classify(%q, %q) error = %v, want unknown_route", tc.method, tc.path, err)
			}
			if got.Op != OpUnknownRoute {
				t.Errorf("Classify(%q, %q).Op = %s, want unknown_route", tc.method, tc.path, got.Op)
			}
		})
	}
}

func TestClassifyRefusals(t *testing.T) {
	cases := []struct {
		method, path string
		want         error
	}{
		{"GET", "", ErrNotAbsolute},
		{"GET", "containers/json", ErrNotAbsolute},
		{"OPTIONS", "*", ErrNotAbsolute},
		{"", "/containers/json", ErrMethodMalformed},

		{"GET", "//containers/json", ErrDoubleSlash},
		{"GET", "/v1.41//containers/json", ErrDoubleSlash},
		{"GET", "/containers//json", ErrDoubleSlash},
		{"GET", "/containers/web//", ErrDoubleSlash},
		{"GET", "/containers/a%2F%2Fb/json", ErrEncodedSlash},

		{"GET", "/v1.41/../containers/json", ErrDotSegment},
		{"GET", "/v1.41/./containers/json", ErrDotSegment},
		{"GET", "/containers/web/..", ErrDotSegment},
		{"GET", "/containers/./json", ErrDotSegment},
		{"GET", "/%2e%2e/containers/json", ErrDotSegment},
		{"GET", "/containers/%2E/json", ErrDotSegment},
		{"DELETE", "/containers/.", ErrDotSegment},

		{"GET", "/v1.41/containers/a%2Fb/json", ErrEncodedSlash},
		{"GET", "/v1.41/containers/a%2fb/json", ErrEncodedSlash},
		{"GET", "/images/localhost:5000%2Fa/json", ErrEncodedSlash},
		{"GET", "/containers/a%252Fb/json", ErrEncodedPercent},
		{"GET", "/containers/a%zz/json", ErrBadEscape},
		{"GET", "/containers/a%2", ErrBadEscape},
		{"GET", "/containers/a%", ErrBadEscape},

		{"GET", "/containers/a%00b/json", ErrControlChar},
		{"GET", "/containers/a\x00b/json", ErrControlChar},
		{"GET", "/containers/a%0Ab/json", ErrControlChar},
		{"GET", "/containers/a%7Fb/json", ErrControlChar},
		{"GET", "/containers/a b/json", ErrControlChar},
		{"GET", "/containers/a\\b/json", ErrBackslash},
		{"GET", "/containers/a%5Cb/json", ErrBackslash},
		{"GET", "/containers/a%3Fb/json", ErrQueryInPath},
		{"GET", "/containers/json?all=1", ErrQueryInPath},
		{"GET", "/containers/a%23b/json", ErrQueryInPath},

		{"GET", "/v1.23/containers/json", ErrVersionTooOld},
		{"POST", "/v1.19/containers/web/start", ErrVersionTooOld},
		{"GET", "/v1/containers/json", ErrVersionTooOld},
		{"GET", "/v1.0/containers/json", ErrVersionTooOld},
		{"GET", "/v0.99/containers/json", ErrVersionTooOld},
		{"GET", "/v1.41.0/containers/json", ErrBadVersion},
		{"GET", "/v01.41/containers/json", ErrBadVersion},
		{"GET", "/v1.041/containers/json", ErrBadVersion},
		{"GET", "/v1./containers/json", ErrBadVersion},
		{"GET", "/v./containers/json", ErrBadVersion},
		{"GET", "/v.41/containers/json", ErrBadVersion},
		{"GET", "/v1..41/containers/json", ErrBadVersion},
		{"GET", "/v1.99999/containers/json", ErrBadVersion},
		{"GET", "/v99999999999999999999.1/containers/json", ErrBadVersion},

		{"GET", "/containers/a/b/json", ErrSlashInName},
		{"GET", "/v1.41/containers/a/b/json", ErrSlashInName},
		{"DELETE", "/containers/web/json", ErrSlashInName},
		{"DELETE", "/containers/web/checkpoints", ErrSlashInName},
		{"GET", "/exec/a/b/json", ErrSlashInName},
		{"GET", "/volumes/a/b", ErrSlashInName},
		{"POST", "/networks/a/b/connect", ErrSlashInName},

		{"DELETE", "/containers/", ErrEmptyName},
		{"DELETE", "/networks/", ErrEmptyName},
		{"DELETE", "/images/", ErrEmptyName},

		{"GET", "/containers/json/", ErrTrailingSlash},
		{"GET", "/_ping/", ErrTrailingSlash},
		{"DELETE", "/images/busybox/", ErrTrailingSlash},
		{"GET", "/images/busybox/json/", ErrTrailingSlash},
		{"GET", "/networks/bridge/", ErrTrailingSlash},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			got, err := Classify(tc.method, tc.path)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Classify(%q, %q) = %+v, %v; want error %v", tc.method, tc.path, got, err, tc.want)
			}
			var pe *PathError
			if !errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "path refused: ") {
				t.Errorf("error %q is not a *PathError with a clear reason", err)
			}
			if got != (Route{}) {
				t.Errorf("refused path returned route %+v, want the zero Route", got)
			}
		})
	}
}

// TestClassifyDecodesAsDockerd checks that percent-escapes other than the
// refused ones read as net/http decodes them, which is how dockerd routes.
func TestClassifyDecodesAsDockerd(t *testing.T) {
	cases := []struct {
		path string
		want Route
	}{
		{"/v%31.41/containers/json", Route{Op: OpContainerList, Version: "1.41", Path: "/containers/json"}},
		{"/%761.41/containers/json", Route{Op: OpContainerList, Version: "1.41", Path: "/containers/json"}},
		{"/%63ontainers/json", Route{Op: OpContainerList, Path: "/containers/json"}},
		{"/containers/my%2Dapp/json", Route{Op: OpContainerInspect, Path: "/containers/my-app/json", Target: "my-app"}},
		{"/containers/%6A%73%6F%6E/json", Route{Op: OpContainerInspect, Path: "/containers/json/json", Target: "json"}},
		{"/images/busybox%3Alatest/json", Route{Op: OpImageInspect, Path: "/images/busybox:latest/json", Target: "busybox:latest"}},
		{"/containers/caf%C3%A9/json", Route{Op: OpContainerInspect, Path: "/containers/café/json", Target: "café"}},
		{"/containers/a+b/json", Route{Op: OpContainerInspect, Path: "/containers/a+b/json", Target: "a+b"}},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			got, err := Classify("GET", tc.path)
			if err != nil {
				t.Fatalf("Classify(GET, %q) error = %v", tc.path, err)
			}
			if got != tc.want {
				t.Errorf("Classify(GET, %q) = %+v, want %+v", tc.path, got, tc.want)
			}
		})
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	for _, p := range []string{"/v1.41/containers/abc/json", "/images/" + imageRef + "/json", "/v1.41/nothing/here"} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Classify("GET", p); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Classify(GET, %q) allocates %v times, want 0", p, allocs)
		}
	}
}

// TestSwaggerRoutes classifies every route of the Engine API's swagger
// definition (testdata/swagger-routes.txt), so a route added upstream and
// missed here shows up as unknown_route. Regenerate the file from the moby
// api module in go.mod:
//
//	grep -n '^  /\|^    \(get\|post\|put\|delete\|head\):' swagger.yaml |
//	awk '/^[0-9]+:  \//{p=$0; sub(/^[0-9]+:  /,"",p); sub(/:$/,"",p); next}
//	     {m=$0; sub(/^[0-9]+:    /,"",m); sub(/:$/,"",m); print toupper(m), p}'
func TestSwaggerRoutes(t *testing.T) {
	f, err := os.Open("testdata/swagger-routes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vars := regexp.MustCompile(`\{[a-z]+\}`)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		method, tpl, _ := strings.Cut(line, " ")
		path := vars.ReplaceAllString(tpl, "x1")
		n++
		t.Run(line, func(t *testing.T) {
			got, err := Classify(method, "/v1.56"+path)
			if err != nil || got.Op == OpUnknownRoute {
				t.Errorf("Classify(%s, %s) = %s, %v; want a known operation", method, path, got.Op, err)
			}
		})
	}
	if n < 100 {
		t.Errorf("read %d swagger routes, want the full list", n)
	}
}

// muxOracle is an independent model of dockerd's router: each route
// template turned into the anchored regular expression gorilla/mux builds,
// versioned and unversioned, tried in registration order.
type muxOracle struct {
	routes []oracleRoute
}

type oracleRoute struct {
	method    string
	op        Operation
	versioned *regexp.Regexp
	bare      *regexp.Regexp
}

var templateVar = regexp.MustCompile(`\{[a-z]+(:[^}]*)?\}`)

func newMuxOracle() *muxOracle {
	o := &muxOracle{}
	for _, spec := range routeTable {
		var pattern strings.Builder
		rest := spec.template
		for _, loc := range templateVar.FindAllStringIndex(spec.template, -1) {
			pattern.WriteString(regexp.QuoteMeta(spec.template[len(spec.template)-len(rest) : loc[0]]))
			v := spec.template[loc[0]:loc[1]]
			expr := "[^/]+" // gorilla/mux's default for {name}
			if _, e, ok := strings.Cut(strings.Trim(v, "{}"), ":"); ok {
				expr = e
			}
			pattern.WriteString("(" + expr + ")")
			rest = spec.template[loc[1]:]
		}
		pattern.WriteString(regexp.QuoteMeta(rest))
		o.routes = append(o.routes, oracleRoute{
			method:    spec.method,
			op:        spec.op,
			versioned: regexp.MustCompile(`^/v[0-9.]+` + pattern.String() + `$`),
			bare:      regexp.MustCompile(`^` + pattern.String() + `$`),
		})
	}
	return o
}

// route returns the operation and variables of the first route that
// serves the decoded path.
func (o *muxOracle) route(method, path string) (Operation, []string) {
	for _, r := range o.routes {
		if r.method != method {
			continue
		}
		for _, re := range []*regexp.Regexp{r.versioned, r.bare} {
			if m := re.FindStringSubmatch(path); m != nil {
				return r.op, m[1:]
			}
		}
	}
	return OpUnknownRoute, nil
}

func TestClassifyAgreesWithMuxOracle(t *testing.T) {
	o := newMuxOracle()
	for _, tc := range routeCases {
		for _, p := range []string{tc.path, "/v1.41" + tc.path} {
			checkAgainstOracle(t, o, tc.method, p)
		}
	}
}

func checkAgainstOracle(t *testing.T, o *muxOracle, method, escapedPath string) {
	t.Helper()
	got, err := Classify(method, escapedPath)
	if err != nil {
		return
	}
	decoded, _ := decodePath(escapedPath)
	op, vars := o.route(method, decoded)
	if got.Op != op {
		t.Fatalf("Classify(%q, %q).Op = %s, gorilla/mux model routes to %s", method, escapedPath, got.Op, op)
	}
	if op == OpUnknownRoute || op == OpSystemOptions {
		return
	}
	want := Route{Op: op, Version: got.Version, Path: got.Path}
	if len(vars) > 0 {
		want.Target = vars[0]
	}
	if len(vars) > 1 {
		want.Checkpoint = vars[1]
	}
	if got.Target != want.Target || got.Checkpoint != want.Checkpoint {
		t.Fatalf("Classify(%q, %q) = %+v, gorilla/mux model reads vars %q", method, escapedPath, got, vars)
	}
}
