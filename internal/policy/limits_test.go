package policy

import (
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

func TestLimitsOfRoles(t *testing.T) {
	cfg := config.Default()
	cfg.Limits.PerClient = config.ClientLimits{Requests: 7}
	cfg.Roles = map[string]config.RoleSpec{"ci": {Allow: []string{"container.*"}, Limits: config.ClientLimits{Streams: 2}}}
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		role     string
		requests int
		streams  int
		key      string
	}{
		{"ci", 7, 2, "roles.ci.limits.streams"},
		{config.RoleAdmin, 7, config.DefaultClientLimits.Streams, "limits.per_client.streams"},
		{"", 7, config.DefaultClientLimits.Streams, "limits.per_client.streams"},
		{"gone-by-reload", 7, config.DefaultClientLimits.Streams, "limits.per_client.streams"},
	} {
		l := p.Limits(tc.role)
		if l.Requests != tc.requests || l.Streams != tc.streams || l.Key("streams") != tc.key {
			t.Errorf("Limits(%q) = %+v, key %q; want requests %d, streams %d, key %q", tc.role, l.ClientLimits, l.Key("streams"), tc.requests, tc.streams, tc.key)
		}
	}
}
