package config

import (
	"errors"
	"strings"
	"testing"
)

func TestParseHostAndScopedRules(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
store: {url: "postgres://dockgate@db/dockgate"}
host:
  name: dock1
  labels: {env: staging, region: eu}
clients:
  - group: dev
    role: admin
    hosts: ["env=staging", "name=dock1"]
  - group: dev
    role: read-only
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Store.URL != "postgres://dockgate@db/dockgate" {
		t.Errorf("store.url = %q, want the file's", cfg.Store.URL)
	}
	if cfg.Host.Name != "dock1" || cfg.Host.LabelString() != "env=staging,region=eu" {
		t.Errorf("host = %+v", cfg.Host)
	}
	if role, _ := cfg.MatchClient("alice", []string{"dev"}); role != "admin" {
		t.Errorf("on dock1: role %q, want admin", role)
	}
	cfg.Host.Name = "dock2"
	if role, _ := cfg.MatchClient("alice", []string{"dev"}); role != "read-only" {
		t.Errorf("on dock2: role %q, want read-only (the scoped rule is skipped)", role)
	}
	if got := cfg.Clients[0].String(); got != `group "dev" -> admin on hosts env=staging,name=dock1` {
		t.Errorf("String() = %q", got)
	}
}

func TestHostMatches(t *testing.T) {
	h := Host{Name: "dock1", Labels: map[string]string{"env": "prod", "tier": ""}}
	for _, tt := range []struct {
		selectors []string
		want      bool
	}{
		{nil, true},
		{[]string{"env=prod"}, true},
		{[]string{"env=prod", "name=dock1"}, true},
		{[]string{"tier="}, true},
		{[]string{"env=prod", "name=dock2"}, false},
		{[]string{"env=staging"}, false},
		{[]string{"region=eu"}, false},
		{[]string{"region="}, false}, // absent is not empty
		{[]string{"env"}, false},     // does not parse: matches nothing
		{[]string{"ENV=prod"}, false},
	} {
		if got := h.Matches(tt.selectors); got != tt.want {
			t.Errorf("Matches(%q) = %v, want %v", tt.selectors, got, tt.want)
		}
	}
}

func TestParseLabel(t *testing.T) {
	for _, s := range []string{"env=prod", "team=a.b_c-d/e", "tier="} {
		if _, _, err := ParseLabel(s); err != nil {
			t.Errorf("ParseLabel(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"env", "=prod", "name=x", "env=a b", "env=a=b", "-x=1"} {
		if _, _, err := ParseLabel(s); err == nil {
			t.Errorf("ParseLabel(%q) accepted it", s)
		}
	}
}

func TestDefaultHostName(t *testing.T) {
	host := func(name string, err error) func() (string, error) {
		return func() (string, error) { return name, err }
	}
	for _, tt := range []struct {
		cert     string
		hostname func() (string, error)
		want     string
	}{
		{"dock2", host("machine", nil), "dock2"},
		{DefaultServerCert, host("machine", nil), "machine"},
		{DefaultServerCert, host("", errors.New("no name")), DefaultServerCert},
		{DefaultServerCert, host("bad name", nil), DefaultServerCert},
	} {
		if got := DefaultHostName(tt.cert, tt.hostname); got != tt.want {
			t.Errorf("DefaultHostName(%q) = %q, want %q", tt.cert, got, tt.want)
		}
	}
}
