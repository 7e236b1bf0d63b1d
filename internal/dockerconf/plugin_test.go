package dockerconf

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

func TestPluginInvocation(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantArgs []string
		wantEnv  map[string]string
	}{
		{"plain", []string{"gate", "login", "TOKEN"}, []string{"login", "TOKEN"}, map[string]string{}},
		{"context flag", []string{"--context", "prod", "gate", "status"}, []string{"status"},
			map[string]string{"DOCKER_CONTEXT": "prod"}},
		{"short flags and equals", []string{"-c=prod", "-D", "--config", "/cfg", "gate", "status", "--json"},
			[]string{"status", "--json"}, map[string]string{"DOCKER_CONTEXT": "prod", "DOCKER_CONFIG": "/cfg"}},
		{"host and tls", []string{"-H", "tcp://h:2376", "--tlsverify", "--tlscacert", "gate", "gate", "doctor"},
			[]string{"doctor"}, map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1"}},
		{"tls without verification", []string{"--tls", "-H=tcp://h:2376", "gate", "doctor"}, []string{"doctor"},
			map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS": "1"}},
		{"plugin name as a later argument", []string{"gate", "login", "gate"}, []string{"login", "gate"}, map[string]string{}},
		{"run by hand", []string{"status"}, []string{"status"}, map[string]string{}},
		{"no arguments", nil, nil, map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, env := PluginInvocation(tt.args)
			if !slices.Equal(args, tt.wantArgs) || !maps.Equal(env, tt.wantEnv) {
				t.Errorf("PluginInvocation(%q) = %q, %v; want %q, %v", tt.args, args, env, tt.wantArgs, tt.wantEnv)
			}
		})
	}
}

func TestPluginMetadataAsDockerReadsIt(t *testing.T) {
	data, err := json.Marshal(NewPluginMetadata("v1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	// The docker CLI requires SchemaVersion "0.1.0" and a Vendor.
	if got["SchemaVersion"] != "0.1.0" || got["Vendor"] != "dockgate" || got["Version"] != "v1.2.3" || got["ShortDescription"] == "" {
		t.Errorf("metadata %s", data)
	}
	if _, ok := got["URL"]; ok {
		t.Errorf("empty URL is not omitted: %s", data)
	}
}
