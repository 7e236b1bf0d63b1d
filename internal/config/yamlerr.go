package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// explainDecodeError turns yaml.v3's "line N: ..." decode errors into
// FieldErrors that name the key by its path in the file
// ("roles.ci.containers.priviledged"), with the nearest known key for a
// misspelt one. Errors it cannot place are returned as they are.
func explainDecodeError(data []byte, err error) error {
	var typeErr *yaml.TypeError
	var root yaml.Node
	if !errors.As(err, &typeErr) || yaml.Unmarshal(data, &root) != nil {
		return err
	}
	errs := make([]error, 0, len(typeErr.Errors))
	for _, msg := range typeErr.Errors {
		errs = append(errs, explainOne(&root, msg))
	}
	return errors.Join(errs...)
}

var (
	lineMsg      = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
)

func explainOne(root *yaml.Node, msg string) error {
	m := lineMsg.FindStringSubmatch(msg)
	if m == nil {
		return errors.New(msg)
	}
	line, _ := strconv.Atoi(m[1])
	if u := unknownField.FindStringSubmatch(m[2]); u != nil {
		path := nodePath(root, line, u[1])
		if path == "" {
			return errors.New(msg)
		}
		return &FieldError{Field: path, Msg: "is not a known key (line " + m[1] + ")", Hint: suggestKey(u[1], u[2])}
	}
	path := nodePath(root, line, "")
	if path == "" {
		return errors.New(msg)
	}
	return &FieldError{Field: path, Msg: m[2] + " (line " + m[1] + ")", Hint: "see docs/CONFIG.md for the type of this field"}
}

// nodePath finds the mapping key on the given line (named key, or any key
// whose value is on that line) and returns its dotted path; "" if none.
func nodePath(n *yaml.Node, line int, key string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if p := nodePath(c, line, key); p != "" {
				return p
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line && (key == "" || k.Value == key) || key == "" && v.Line == line && v.Kind == yaml.ScalarNode {
				return k.Value
			}
			if p := nodePath(v, line, key); p != "" {
				return joinPath(k.Value, p)
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if key == "" && c.Line == line && c.Kind == yaml.ScalarNode {
				return fmt.Sprintf("[%d]", i)
			}
			if p := nodePath(c, line, key); p != "" {
				return joinPath(fmt.Sprintf("[%d]", i), p)
			}
		}
	}
	return ""
}

func joinPath(parent, child string) string {
	if strings.HasPrefix(child, "[") {
		return parent + child
	}
	return parent + "." + child
}

// suggestKey names the known key of the Go type typeName ("config.ContainerKnob")
// closest to a misspelt one.
func suggestKey(got, typeName string) string {
	keys := knownKeys[strings.TrimPrefix(typeName, "config.")]
	best, bestDist := "", 3 // at most two edits away
	for _, k := range keys {
		if d := editDistance(got, k); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	if len(keys) > 0 {
		return "known keys here: " + strings.Join(keys, ", ")
	}
	return "see docs/CONFIG.md for the keys"
}

// knownKeys lists the YAML keys of every struct type in Config, by type name.
var knownKeys = func() map[string][]string {
	out := map[string][]string{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(t.Elem())
			return
		case reflect.Struct:
		default:
			return
		}
		if _, seen := out[t.Name()]; seen || t.PkgPath() != reflect.TypeOf(Config{}).PkgPath() {
			return
		}
		keys := []string{}
		out[t.Name()] = keys
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name != "" && name != "-" {
				keys = append(keys, name)
			}
			walk(t.Field(i).Type)
		}
		out[t.Name()] = keys
	}
	walk(reflect.TypeOf(Config{}))
	return out
}()

// editDistance is the Levenshtein distance between two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
