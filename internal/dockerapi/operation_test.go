package dockerapi

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/OPERATIONS.md from the route table")

func TestOperationNames(t *testing.T) {
	grammar := regexp.MustCompile(`^[a-z]+(\.[a-z_]+)+$`)
	seen := map[string]Operation{}
	for op := range numOperations {
		name := op.String()
		if other, dup := seen[name]; dup {
			t.Errorf("operations %d and %d are both named %q", other, op, name)
		}
		seen[name] = op
		if op != OpUnknownRoute && !grammar.MatchString(name) {
			t.Errorf("operation name %q does not read <object>.<action>", name)
		}
		if got, ok := ParseOperation(name); !ok || got != op {
			t.Errorf("ParseOperation(%q) = %d, %v; want %d", name, got, ok, op)
		}
		if op.Summary() == "" {
			t.Errorf("operation %s has no summary", name)
		}
		if op != OpUnknownRoute && !strings.HasPrefix(name, op.Object()+".") {
			t.Errorf("%s.Object() = %q", name, op.Object())
		}
	}
	if got := Operation(numOperations + 3).String(); got != "unknown_route" {
		t.Errorf("out-of-range Operation.String() = %q, want unknown_route", got)
	}
	if _, ok := ParseOperation("container.frobnicate"); ok {
		t.Error("ParseOperation accepted an unknown name")
	}
	if got, want := len(Operations()), int(numOperations)-1; got != want {
		t.Errorf("len(Operations()) = %d, want %d", got, want)
	}
}

func TestOperationMatch(t *testing.T) {
	cases := []struct {
		glob string
		op   Operation
		want bool
	}{
		{"container.*", OpContainerCreate, true},
		{"container.*", OpContainerAttachWS, true},
		{"container.*", OpExecStart, false},
		{"container.*", OpCheckpointList, false},
		{"exec.*", OpExecStart, true},
		{"exec.*", OpContainerExec, false},
		{"*.list", OpVolumeList, true},
		{"*.list", OpVolumeInspect, false},
		{"*", OpGRPCServe, true},
		{"*", OpUnknownRoute, false},
		{"unknown_route", OpUnknownRoute, false},
		{"container.create", OpContainerCreate, true},
		{"container.create", OpContainerCreate + 1, false},
		{"container.archive.*", OpContainerArchivePut, true},
		{"*.archive.*", OpContainerArchiveHead, true},
		{"c*t*", OpContainerStart, true},
		{"c*t*", OpConfigList, true},
		{"c*t*", OpCheckpointDelete, true},
		{"image.pul", OpImagePull, false},
		{"image.pull*", OpImagePull, true},
		{"**.list", OpNodeList, true},
		{"", OpContainerCreate, false},
	}
	for _, tc := range cases {
		t.Run(tc.glob+" "+tc.op.String(), func(t *testing.T) {
			if got := tc.op.Match(tc.glob); got != tc.want {
				t.Errorf("%s.Match(%q) = %v, want %v", tc.op, tc.glob, got, tc.want)
			}
		})
	}
}

func TestCompileGlob(t *testing.T) {
	set, err := CompileGlob("volume.*")
	if err != nil {
		t.Fatal(err)
	}
	want := []Operation{OpVolumeList, OpVolumeCreate, OpVolumeInspect, OpVolumeUpdate, OpVolumeDelete, OpVolumePrune}
	if got := set.Ops(); !slices.Equal(got, want) {
		t.Errorf("CompileGlob(volume.*).Ops() = %v, want %v", got, want)
	}

	all, err := CompileGlob("*")
	if err != nil {
		t.Fatal(err)
	}
	if all.Has(OpUnknownRoute) {
		t.Error(`CompileGlob("*") contains unknown_route`)
	}
	if got, want := len(all.Ops()), int(numOperations)-1; got != want {
		t.Errorf(`CompileGlob("*") has %d operations, want %d`, got, want)
	}

	union, err := CompileGlobs([]string{"container.*", "exec.*", "image.build", "image.pull", "volume.*"})
	if err != nil {
		t.Fatal(err)
	}
	for op, want := range map[Operation]bool{
		OpContainerCreate: true, OpExecStart: true, OpImageBuild: true, OpImagePull: true,
		OpVolumePrune: true, OpImagePush: false, OpNetworkCreate: false, OpUnknownRoute: false,
	} {
		if got := union.Has(op); got != want {
			t.Errorf("union.Has(%s) = %v, want %v", op, got, want)
		}
	}
	if union.Has(numOperations + 7) {
		t.Error("OpSet.Has is true for an out-of-range operation")
	}
}

func TestCompileGlobErrors(t *testing.T) {
	for _, glob := range []string{"", "Container.*", "container.[a]", "container/*", "contianer.*", "unknown_route", "unknown*", "container. create"} {
		t.Run(glob, func(t *testing.T) {
			if _, err := CompileGlob(glob); !errors.Is(err, ErrGlob) {
				t.Errorf("CompileGlob(%q) error = %v, want ErrGlob", glob, err)
			}
			if _, err := CompileGlobs([]string{"container.*", glob}); !errors.Is(err, ErrGlob) {
				t.Errorf("CompileGlobs with %q error = %v, want ErrGlob", glob, err)
			}
		})
	}
}

func TestBodyKinds(t *testing.T) {
	cases := map[Operation]BodyKind{
		OpContainerCreate:     BodyJSON,
		OpContainerStart:      BodyNone,
		OpImageBuild:          BodyRaw,
		OpContainerArchivePut: BodyRaw,
		OpPluginInstall:       BodyJSON,
		OpUnknownRoute:        BodyNone,
		numOperations + 1:     BodyNone,
	}
	for op, want := range cases {
		if got := op.Body(); got != want {
			t.Errorf("%s.Body() = %s, want %s", op, got, want)
		}
	}
}

// TestOperationsDoc keeps docs/OPERATIONS.md in step with the route table.
// Run `go test ./internal/dockerapi -run TestOperationsDoc -update` after
// changing the table.
func TestOperationsDoc(t *testing.T) {
	const path = "../../docs/OPERATIONS.md"
	want := operationsDoc()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is stale; regenerate it with go test ./internal/dockerapi -run TestOperationsDoc -update", path)
	}
}

func operationsDoc() string {
	var b strings.Builder
	b.WriteString(`# Operations

dockgate names every Docker Engine API request by the operation dockerd's
router serves it with. Policies allow operations by name or glob
(` + "`roles.NAME.allow`" + `). This file is generated from the route table in
` + "`internal/dockerapi`" + ` (` + "`go test ./internal/dockerapi -run TestOperationsDoc -update`" + `).

## Names

An operation is named ` + "`<object>.<action>`" + `: the object is the API resource in
the singular, the action what the request does to it. A few actions carry a
qualifier after a second dot (` + "`container.attach.ws`, `container.archive.get`" + `).
Requests addressed to a container are ` + "`container.*`" + ` (` + "`container.exec`" + ` creates an
exec instance); requests addressed to an exec instance by its ID are ` + "`exec.*`" + `.

## Globs

In a glob, ` + "`*`" + ` matches any run of characters, dots included: ` + "`container.*`" + `
matches ` + "`container.create`" + ` and ` + "`container.attach.ws`" + `, ` + "`*.list`" + ` every list,
` + "`*`" + ` every operation. A glob that matches no operation is an error.
` + "`unknown_route`" + ` (a request dockerd has no route for) is matched by no glob
and is always denied.

## Paths

Every path is also served under a version prefix, ` + "`/v1.47/containers/json`" + `.
Versions below 1.24 are refused, as are paths dockerd would redirect or could
read differently (` + "`//`, `/./`, `/../`, `%2F`, `%25`" + `, control characters,
backslashes, trailing slashes outside the routes below that have one).
` + "`{name:.*}`" + ` in a path matches any run of characters (image names hold
` + "`/`, `:` and `@`" + `), ` + "`{id}`" + ` one path segment. Names of containers, exec
instances, volumes and networks never hold ` + "`/`" + `.

The body column says what dockerd reads from the request body: ` + "`json`" + `
(checked for duplicate and case-variant keys, then decoded), ` + "`raw`" + ` (a byte
stream or another protocol) or ` + "`none`" + `.

| Operation | Routes | Body | Target | What it does |
|---|---|---|---|---|
`)
	for op := range numOperations {
		routes := routesOf(op)
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", op, routes, op.Body(), op.Target(), op.Summary())
	}
	return b.String()
}

func routesOf(op Operation) string {
	var routes []string
	for _, spec := range routeTable {
		if spec.op == op {
			routes = append(routes, "`"+spec.method+" "+spec.template+"`")
		}
	}
	switch op {
	case OpUnknownRoute:
		return "any other"
	case OpImageImport:
		return "`POST /images/create` without `fromImage`"
	case OpImagePull:
		return strings.Join(routes, ", ") + " with `fromImage`"
	}
	return strings.Join(routes, ", ")
}
