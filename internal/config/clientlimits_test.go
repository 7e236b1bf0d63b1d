package config

import (
	"strings"
	"testing"
)

const limitsYAML = `
limits:
  max_connections: 200
  per_client:
    requests: 10
    rate: 5.5
roles:
  ci:
    allow: ["container.*"]
    limits: {connections: 8, burst: 20}
  dev:
    allow: ["container.*"]
`

func TestClientLimitsLayerRoleOverPerClientOverDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(limitsYAML))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := DefaultClientLimits
	for _, tc := range []struct {
		role string
		want ClientLimits
	}{
		{"ci", ClientLimits{Connections: 8, Requests: 10, Streams: d.Streams, Rate: 5.5, Burst: 20}},
		{"dev", ClientLimits{Connections: d.Connections, Requests: 10, Streams: d.Streams, Rate: 5.5, Burst: d.Burst}},
		{RoleAdmin, ClientLimits{Connections: d.Connections, Requests: 10, Streams: d.Streams, Rate: 5.5, Burst: d.Burst}},
		{"", ClientLimits{Connections: d.Connections, Requests: 10, Streams: d.Streams, Rate: 5.5, Burst: d.Burst}},
	} {
		if got := cfg.ClientLimitsOf(tc.role); got != tc.want {
			t.Errorf("ClientLimitsOf(%q) = %+v, want %+v", tc.role, got, tc.want)
		}
	}
}

func TestDefaultConnectionCapStaysBelowMaxConnections(t *testing.T) {
	cfg := Default()
	if got := cfg.ClientLimitsOf(RoleAdmin).Connections; got != DefaultClientLimits.Connections {
		t.Errorf("without max_connections: %d, want the default %d", got, DefaultClientLimits.Connections)
	}
	cfg.Limits.MaxConnections = 50 // below the default per-client cap
	if err := cfg.Validate(); err != nil {
		t.Fatalf("a config that sets only max_connections must stay valid: %v", err)
	}
	if got := cfg.ClientLimitsOf(RoleAdmin).Connections; got != 25 {
		t.Errorf("with max_connections 50: %d, want half of it, 25", got)
	}
}

func TestClientLimitKey(t *testing.T) {
	cfg, err := Parse(strings.NewReader(limitsYAML))
	if err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]string{
		"ci": "roles.ci.limits.streams", "dev": "roles.dev.limits.streams",
		RoleAdmin: "limits.per_client.streams", "": "limits.per_client.streams",
	} {
		if got := cfg.ClientLimitKey(role, "streams"); got != want {
			t.Errorf("ClientLimitKey(%q) = %q, want %q", role, got, want)
		}
	}
}

func TestValidateClientLimits(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"negative", "limits:\n  per_client: {streams: -1}\n", "limits.per_client.streams: must not be negative"},
		{"negative rate", "limits:\n  per_client: {rate: -2}\n", "limits.per_client.rate: must be a positive number"},
		{"per_client at max_connections", "limits:\n  max_connections: 10\n  per_client: {connections: 10}\n",
			"limits.per_client.connections: 10 is not below limits.max_connections (10)"},
		{"role above max_connections", "limits:\n  max_connections: 10\nroles:\n  ci:\n    allow: [\"container.*\"]\n    limits: {connections: 30}\n",
			"roles.ci.limits.connections: 30 is not below limits.max_connections (10)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(tc.yaml))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseRejectsUnknownLimitKeys(t *testing.T) {
	_, err := Parse(strings.NewReader("roles:\n  ci:\n    allow: [\"*\"]\n    limits: {conections: 3}\n"))
	if err == nil || !strings.Contains(err.Error(), "conections") {
		t.Errorf("Parse() = %v, want an error naming the unknown key", err)
	}
}
