package config

import (
	"strings"
	"testing"
)

func TestParseLocalSocket(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
listen_unix: /run/dockgate/docker.sock
listen_unix_mode: 0660
listen_unix_group: docker-users
clients:
  - uid: 0
    role: admin
  - user: alice
    role: operator
  - unix_group: developers
    role: read-only
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if mode, err := cfg.UnixMode(); err != nil || mode != 0o660 {
		t.Errorf("UnixMode() = %#o, %v; want 0660", mode, err)
	}
	if cfg.ListenUnix != "/run/dockgate/docker.sock" || cfg.ListenUnixGroup != "docker-users" {
		t.Errorf("listen_unix = %q group %q", cfg.ListenUnix, cfg.ListenUnixGroup)
	}
	if r := cfg.Clients[0]; r.UID == nil || *r.UID != 0 || r.String() != "uid 0 -> admin" {
		t.Errorf("clients[0] = %v, want uid 0 (root named explicitly)", r)
	}
	if !cfg.Clients[1].MatchesPeer(1001, "alice", nil) || !cfg.Clients[2].MatchesPeer(1002, "bob", []string{"bob", "developers"}) {
		t.Error("user: or unix_group: rule does not match its peer")
	}
}

func TestLocalSocketIsOffByDefault(t *testing.T) {
	cfg := Default()
	if cfg.ListenUnix != "" || cfg.ListenUnixMode != "0660" || cfg.ListenUnixGroup != "" {
		t.Errorf("defaults: listen_unix %q mode %q group %q; want off, 0660, none", cfg.ListenUnix, cfg.ListenUnixMode, cfg.ListenUnixGroup)
	}
}

func TestValidateLocalSocketAndPeerRules(t *testing.T) {
	uid := uint32(1001)
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string // "" : valid
	}{
		{"relative path", func(c *Config) { c.ListenUnix = "run/docker.sock" }, "listen_unix: \"run/docker.sock\" is not a clean absolute path"},
		{"unclean path", func(c *Config) { c.ListenUnix = "/run//x/../docker.sock" }, "listen_unix: "},
		{"mode not octal", func(c *Config) { c.ListenUnix, c.ListenUnixMode = "/run/d.sock", "rw-rw----" }, "listen_unix_mode: \"rw-rw----\" is not an octal permission mode"},
		{"mode too wide", func(c *Config) { c.ListenUnix, c.ListenUnixMode = "/run/d.sock", "01777" }, "listen_unix_mode:"},
		{"group without socket", func(c *Config) { c.ListenUnixGroup = "docker" }, "listen_unix_group: is set without listen_unix"},
		{"mode 0600", func(c *Config) { c.ListenUnix, c.ListenUnixMode = "/run/d.sock", "0600" }, ""},
		{"uid and user", func(c *Config) {
			c.Clients = []ClientRule{{UID: &uid, User: "alice", Role: RoleAdmin}}
		}, "clients[0]: sets more than one of cn, group, uid, user and unix_group"},
		{"cn and unix_group", func(c *Config) {
			c.Clients = []ClientRule{{CN: "x", UnixGroup: "dev", Role: RoleAdmin}}
		}, "clients[0]: sets more than one"},
		{"no selector", func(c *Config) { c.Clients = []ClientRule{{Role: RoleAdmin}} }, "clients[0]: matches nobody"},
		{"user with colon", func(c *Config) { c.Clients = []ClientRule{{User: "a:b", Role: RoleAdmin}} }, "clients[0].user: \"a:b\" is not a user name"},
		{"unix_group with space", func(c *Config) { c.Clients = []ClientRule{{UnixGroup: "dev ops", Role: RoleAdmin}} }, "clients[0].unix_group:"},
		{"uid rule with unknown role", func(c *Config) { c.Clients = []ClientRule{{UID: &uid, Role: "nope"}} }, "clients[0].role: role \"nope\" is not defined"},
		{"uid rule", func(c *Config) { c.Clients = []ClientRule{{UID: &uid, Role: RoleReadOnly}} }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.mutate(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestPeerRulesNeverMatchCertificatesAndBack(t *testing.T) {
	uid := uint32(0)
	peerRules := []ClientRule{{UID: &uid, Role: RoleAdmin}, {User: "alice", Role: RoleAdmin}, {UnixGroup: "admins", Role: RoleAdmin}}
	for _, r := range peerRules {
		if r.Matches("alice", []string{"admins", ""}) {
			t.Errorf("%v matches a certificate", r)
		}
	}
	certRules := []ClientRule{{CN: "*", Role: RoleAdmin}, {Group: "admins", Role: RoleAdmin}}
	for _, r := range certRules {
		if r.MatchesPeer(0, "alice", []string{"admins"}) {
			t.Errorf("%v matches a local peer", r)
		}
	}
}
