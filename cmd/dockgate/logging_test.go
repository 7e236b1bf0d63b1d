package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestNewLogger(t *testing.T) {
	cases := []struct {
		format, level string
		json          bool
		debugShown    bool
	}{
		{"auto", "info", true, false}, // not a terminal: JSON
		{"json", "debug", true, true},
		{"text", "warn", false, false},
		{"text", "DEBUG", false, true},
		{"auto", "nonsense", true, false}, // Validate refuses it; info if it gets here
	}
	for _, c := range cases {
		var out bytes.Buffer
		log := newLogger(&out, c.format, c.level)
		log.Debug("debug line")
		log.Warn("warn line", "k", "v")
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if got := strings.Contains(out.String(), "debug line"); got != c.debugShown {
			t.Errorf("%s/%s: debug shown = %v, want %v", c.format, c.level, got, c.debugShown)
		}
		last := lines[len(lines)-1]
		var v map[string]any
		isJSON := json.Unmarshal([]byte(last), &v) == nil
		if isJSON != c.json {
			t.Errorf("%s/%s: line %q is JSON = %v, want %v", c.format, c.level, last, isJSON, c.json)
		}
		if c.json && (v["msg"] != "warn line" || v["k"] != "v") || !c.json && !strings.Contains(last, `msg="warn line" k=v`) {
			t.Errorf("%s/%s: line %q", c.format, c.level, last)
		}
	}
}
