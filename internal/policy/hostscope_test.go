package policy

import (
	"context"
	"net/http"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

// hostScopedConfig is a fleet's shared client rules: developers are
// admins on staging, read-only on the EU production hosts, and nowhere
// else; ops is admin on dock1 only; everyone in admins everywhere.
func hostScopedConfig(host config.Host) *config.Config {
	cfg := config.Default()
	cfg.Host = host
	cfg.Clients = []config.ClientRule{
		{Group: "dev", Role: config.RoleAdmin, Hosts: []string{"env=staging"}},
		{Group: "dev", Role: config.RoleReadOnly, Hosts: []string{"env=prod", "region=eu"}},
		{CN: "ops", Role: config.RoleAdmin, Hosts: []string{"name=dock1"}},
		{Group: "admins", Role: config.RoleAdmin},
	}
	return &cfg
}

func TestRoleOfSkipsRulesOfOtherHosts(t *testing.T) {
	dev := identity.Identity{CN: "alice", Groups: []string{"dev"}, Serial: "1"}
	ops := identity.Identity{CN: "ops", Serial: "2"}
	admin := identity.Identity{CN: "root", Groups: []string{"admins"}, Serial: "3"}
	tests := []struct {
		host     config.Host
		id       identity.Identity
		wantRole string // "": refused
	}{
		{config.Host{Name: "s1", Labels: map[string]string{"env": "staging"}}, dev, config.RoleAdmin},
		{config.Host{Name: "p1", Labels: map[string]string{"env": "prod", "region": "eu"}}, dev, config.RoleReadOnly},
		{config.Host{Name: "p2", Labels: map[string]string{"env": "prod", "region": "us"}}, dev, ""}, // one selector of two
		{config.Host{Name: "p3", Labels: map[string]string{"env": "prod"}}, dev, ""},                 // label missing
		{config.Host{Name: "x"}, dev, ""},
		{config.Host{Name: "dock1"}, ops, config.RoleAdmin},
		{config.Host{Name: "dock2", Labels: map[string]string{"name": "dock1"}}, ops, ""}, // name= is the name, not a label
		{config.Host{Name: "dock2"}, ops, ""},
		{config.Host{Name: "p2", Labels: map[string]string{"env": "prod", "region": "us"}}, admin, config.RoleAdmin},
		{config.Host{}, admin, config.RoleAdmin},
	}
	for _, tt := range tests {
		p, err := Compile(hostScopedConfig(tt.host))
		if err != nil {
			t.Fatal(err)
		}
		role, ok := p.RoleOf(tt.id)
		if role != tt.wantRole || ok != (tt.wantRole != "") {
			t.Errorf("on %s (%s): RoleOf(%s) = %q, %v; want %q", tt.host.Name, tt.host.LabelString(), tt.id.CN, role, ok, tt.wantRole)
		}
	}
}

func TestRefusalNamesTheHostAndTheSelector(t *testing.T) {
	cfg := config.Default()
	cfg.Host = config.Host{Name: "prod1", Labels: map[string]string{"env": "prod"}}
	cfg.Clients = []config.ClientRule{{Group: "dev", Role: config.RoleAdmin, Hosts: []string{"env=staging"}}}
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := identity.Identity{CN: "alice", Groups: []string{"dev"}, Serial: "1f"}
	v := p.Evaluate(context.Background(), Input{Identity: id, Method: http.MethodGet, Path: "/v1.47/containers/json"}, nil)
	want := `dockgate: access denied for CN="alice" groups=[dev] (serial 1f) on host "prod1" (env=prod): clients[0] (group "dev" -> admin) applies only on hosts matching env=staging; use a gateway whose host matches, or widen the entry's hosts: in the gateway config`
	if v.Forward() || v.Status != http.StatusForbidden || v.Message != want {
		t.Errorf("verdict = %d %q\nwant 403 %q", v.Status, v.Message, want)
	}
	if v.Reason != "clients[0] applies only on hosts env=staging" {
		t.Errorf("reason = %q", v.Reason)
	}

	// A client no entry names at all is told so, as before.
	other := identity.Identity{CN: "bob", Groups: []string{"qa"}, Serial: "2"}
	v = p.Evaluate(context.Background(), Input{Identity: other, Method: http.MethodGet, Path: "/v1.47/containers/json"}, nil)
	if v.Forward() || v.Reason != "no clients: entry matches" {
		t.Errorf("unnamed client: verdict %d %q (%s), want the no-entry refusal", v.Status, v.Message, v.Reason)
	}
}
