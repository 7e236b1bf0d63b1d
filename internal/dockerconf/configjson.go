package dockerconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// currentContextKey is the config.json key the docker CLI reads the selected
// context from (configfile.ConfigFile.CurrentContext).
const currentContextKey = "currentContext"

// member is one top-level key of a JSON object with its value untouched.
type member struct {
	key   string
	value json.RawMessage
}

// SetCurrentContext returns config.json content with "currentContext" set to
// name, or removed when name is "" or "default" (as `docker context use
// default` does). Any other name must pass ValidateContextName. Every other key keeps its position and its value; only
// whitespace is normalised to the docker CLI's tab indentation. Empty input
// and "null" stand for a config.json that does not exist yet.
func SetCurrentContext(configJSON []byte, name string) ([]byte, error) {
	members, err := parseObject(configJSON)
	if err != nil {
		return nil, err
	}
	var value json.RawMessage
	if name != "" && name != DefaultContextName {
		if err := ValidateContextName(name); err != nil {
			return nil, err
		}
		if value, err = json.Marshal(name); err != nil {
			return nil, err
		}
	}
	return formatObject(replaceMember(members, currentContextKey, value))
}

// CurrentContextOf returns the "currentContext" in config.json content, or ""
// when none is set. As with encoding/json, the last of duplicate keys wins.
func CurrentContextOf(configJSON []byte) (string, error) {
	members, err := parseObject(configJSON)
	if err != nil {
		return "", err
	}
	name := ""
	for _, m := range members {
		if m.key != currentContextKey {
			continue
		}
		name = ""
		if string(m.value) != "null" {
			if err := json.Unmarshal(m.value, &name); err != nil {
				return "", fmt.Errorf("failed to parse config.json: %s is not a string", currentContextKey)
			}
		}
	}
	return name, nil
}

// replaceMember puts value under key at the place of its first occurrence
// (or at the end) and drops any duplicates; a nil value removes the key.
func replaceMember(members []member, key string, value json.RawMessage) []member {
	out := make([]member, 0, len(members)+1)
	placed := value == nil
	for _, m := range members {
		if m.key != key {
			out = append(out, m)
			continue
		}
		if !placed {
			out = append(out, member{key, value})
			placed = true
		}
	}
	if !placed {
		out = append(out, member{key, value})
	}
	return out
}

// parseObject splits a JSON object into its top-level members, in order.
func parseObject(data []byte) ([]member, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("failed to parse config.json: it is not a JSON object")
	}
	var members []member
	for dec.More() {
		m, err := nextMember(dec)
		if err != nil {
			return nil, fmt.Errorf("failed to parse config.json: %w", err)
		}
		members = append(members, m)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("failed to parse config.json: unterminated object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("failed to parse config.json: unexpected data after the object")
	}
	return members, nil
}

func nextMember(dec *json.Decoder) (member, error) {
	tok, err := dec.Token()
	if err != nil {
		return member{}, err
	}
	key, ok := tok.(string)
	if !ok {
		return member{}, errors.New("expected a key")
	}
	var value json.RawMessage
	if err := dec.Decode(&value); err != nil {
		return member{}, err
	}
	return member{key, value}, nil
}

// formatObject writes members as json.MarshalIndent(v, "", "\t") would,
// which is how the docker CLI writes config.json.
func formatObject(members []member) ([]byte, error) {
	if len(members) == 0 {
		return []byte("{}"), nil
	}
	var buf bytes.Buffer
	buf.WriteString("{")
	for i, m := range members {
		if i > 0 {
			buf.WriteString(",")
		}
		key, err := json.Marshal(m.key)
		if err != nil {
			return nil, err
		}
		buf.WriteString("\n\t")
		buf.Write(key)
		buf.WriteString(": ")
		if err := json.Indent(&buf, m.value, "\t", "\t"); err != nil {
			return nil, err
		}
	}
	buf.WriteString("\n}")
	return buf.Bytes(), nil
}
