package policy

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

var update = flag.Bool("update", false, "rewrite the generated parts of docs/POLICY.md and docs/PRESETS.md")

const (
	policyDoc    = "../../docs/POLICY.md"
	builtinStart = "<!-- builtin-roles:start (generated: go test ./internal/policy -run TestPolicyDoc -update) -->\n"
	builtinEnd   = "<!-- builtin-roles:end -->\n"
)

// TestPolicyDoc keeps the built-in roles' operation lists in
// docs/POLICY.md equal to the code's.
func TestPolicyDoc(t *testing.T) {
	data, err := os.ReadFile(policyDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, builtinStart)
	end := strings.Index(doc, builtinEnd)
	if start < 0 || end < start {
		t.Fatalf("%s has no generated built-in roles section", policyDoc)
	}
	want := builtinRolesDoc()
	got := doc[start+len(builtinStart) : end]
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("%s is out of date; run go test ./internal/policy -run TestPolicyDoc -update", policyDoc)
	}
	doc = doc[:start+len(builtinStart)] + want + doc[end:]
	if err := os.WriteFile(policyDoc, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func builtinRolesDoc() string {
	var b strings.Builder
	var prev []dockerapi.Operation
	fmt.Fprintf(&b, "| role | allows |\n|---|---|\n")
	fmt.Fprintf(&b, "| `admin` | every operation (%d), no guardrails, admin operations included |\n", len(builtinOperations("admin")))
	for _, role := range []struct{ name, base string }{{"read-only", ""}, {"operator", "read-only"}, {"deployer", "operator"}} {
		ops := builtinOperations(role.name)
		var added []string
		for _, op := range ops {
			if !contains(prev, op) {
				added = append(added, "`"+op.String()+"`")
			}
		}
		prefix := ""
		if role.base != "" {
			prefix = "everything `" + role.base + "` allows, and "
		}
		fmt.Fprintf(&b, "| `%s` | %s%s (%d in all) |\n", role.name, prefix, strings.Join(added, ", "), len(ops))
		prev = ops
	}
	return b.String()
}

func contains(ops []dockerapi.Operation, op dockerapi.Operation) bool {
	for _, o := range ops {
		if o == op {
			return true
		}
	}
	return false
}

const (
	presetDoc   = "../../docs/PRESETS.md"
	presetStart = "<!-- presets:start (generated: go test ./internal/policy -run TestPresetDoc -update) -->\n"
	presetEnd   = "<!-- presets:end -->\n"
)

// TestPresetDoc keeps the presets' calls and operations in
// docs/PRESETS.md equal to the preset table.
func TestPresetDoc(t *testing.T) {
	data, err := os.ReadFile(presetDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, presetStart)
	end := strings.Index(doc, presetEnd)
	if start < 0 || end < start {
		t.Fatalf("%s has no generated presets section", presetDoc)
	}
	want := presetsDoc()
	if doc[start+len(presetStart):end] == want {
		return
	}
	if !*update {
		t.Fatalf("%s is out of date; run go test ./internal/policy -run TestPresetDoc -update", presetDoc)
	}
	doc = doc[:start+len(presetStart)] + want + doc[end:]
	if err := os.WriteFile(presetDoc, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

func presetsDoc() string {
	var b strings.Builder
	for _, p := range presets {
		var ops []string
		set := p.set()
		for _, op := range set.Ops() {
			ops = append(ops, "`"+op.String()+"`")
		}
		fmt.Fprintf(&b, "\n### %s\n\n%s, read from %s.\n\n", p.name, p.tool, p.source)
		fmt.Fprintf(&b, "Allows (%d): %s.\n\n", len(ops), strings.Join(ops, ", "))
		b.WriteString("| call | where | operation |\n|---|---|---|\n")
		for _, c := range p.calls {
			fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", c.call, strings.ReplaceAll(c.from, "|", `\|`), c.op)
		}
		if len(p.leftOut) > 0 {
			b.WriteString("\n")
			for _, l := range p.leftOut {
				fmt.Fprintf(&b, "- %s\n", l)
			}
		}
	}
	b.WriteString("\n")
	return b.String()
}
