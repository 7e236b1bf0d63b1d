package policy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

func uidPtr(u uint32) *uint32 { return &u }

func TestRoleOfLocalPeersAndCertificates(t *testing.T) {
	cfg := config.Default()
	cfg.Clients = []config.ClientRule{
		{UID: uidPtr(1001), Role: config.RoleOperator},
		{User: "bob", Role: config.RoleReadOnly},
		{UnixGroup: "developers", Role: config.RoleDeployer},
		{CN: "*", Role: config.RoleReadOnly},
		{Group: "admins", Role: config.RoleAdmin},
	}
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	peer := func(uid uint32, user string, groups ...string) identity.Identity {
		return *identity.FromPeer(identity.Peer{UID: uid, User: user, Groups: groups})
	}
	cert := func(cn string, groups ...string) identity.Identity {
		return identity.Identity{CN: cn, Groups: groups, Serial: "1"}
	}
	tests := []struct {
		name     string
		id       identity.Identity
		wantRole string // "": no role
	}{
		{"uid rule", peer(1001, "alice"), config.RoleOperator},
		{"user rule", peer(1002, "bob"), config.RoleReadOnly},
		{"unix_group rule", peer(1003, "carol", "carol", "developers"), config.RoleDeployer},
		{"uid rule before group rule", peer(1001, "alice", "developers"), config.RoleOperator},
		{"root is not implied", peer(0, "root", "root"), ""},
		{"peer never matches cn: *", peer(1004, "dave"), ""},
		{"peer group named like a certificate group", peer(1005, "eve", "admins"), ""},
		{"certificate never matches user:", cert("bob"), config.RoleReadOnly}, // by cn: *, not user: bob
		{"certificate never matches unix_group:", cert("x", "developers"), config.RoleReadOnly},
		{"certificate group", cert("ops", "admins"), config.RoleReadOnly}, // cn: * comes first
		{"certificate named like a peer", cert("uid:1001"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			role, ok := p.RoleOf(tt.id)
			if role != tt.wantRole || ok != (tt.wantRole != "") {
				t.Errorf("RoleOf(%+v) = %q, %v; want %q", tt.id, role, ok, tt.wantRole)
			}
		})
	}
}

func TestRootNeedsARule(t *testing.T) {
	cfg := config.Default()
	cfg.Clients = []config.ClientRule{{UID: uidPtr(0), Role: config.RoleAdmin}}
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if role, ok := p.RoleOf(*identity.FromPeer(identity.Peer{UID: 0, User: "root"})); !ok || role != config.RoleAdmin {
		t.Errorf("uid 0 with a uid: 0 rule = %q, %v; want admin", role, ok)
	}
}

func TestUnmatchedPeerIsRefusedNamingItsUID(t *testing.T) {
	cfg := config.Default() // group: admins only
	p, err := Compile(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := identity.FromPeer(identity.Peer{UID: 1001, User: "alice", Groups: []string{"admins"}})
	v := p.Evaluate(context.Background(), Input{Identity: *id, Method: http.MethodGet, Path: "/v1.47/containers/json"}, nil)
	want := "dockgate: access denied for uid 1001 (alice): no clients: entry matches; add one with uid:, user: or unix_group: in the gateway config"
	if v.Forward() || v.Status != http.StatusForbidden || v.Message != want {
		t.Errorf("verdict = %d %q, want 403 %q", v.Status, v.Message, want)
	}
	if strings.Contains(v.Message, "serial") {
		t.Errorf("a peer's refusal mentions a certificate: %q", v.Message)
	}
}
