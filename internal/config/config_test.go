package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	if cfg.Listen != ":2376" || cfg.AdminListen != "127.0.0.1:2378" || cfg.Upstream.URL != "unix:///var/run/docker.sock" {
		t.Errorf("defaults = %+v", cfg)
	}
	if role, ok := cfg.MatchClient("anyone", []string{"admins"}); !ok || role != RoleAdmin {
		t.Errorf("default rules: group admins -> %q, %v; want admin", role, ok)
	}
	if _, ok := cfg.MatchClient("anyone", []string{"devs"}); ok {
		t.Error("default rules let a non-admin in")
	}
}

func TestParseOverridesDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader(`
listen: 127.0.0.1:12376
limits:
  read_header_timeout: 3s
clients:
  - cn: "ci-*"
    role: admin
`))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:12376" {
		t.Errorf("listen = %q", cfg.Listen)
	}
	if cfg.Limits.ReadHeaderTimeout != 3*time.Second {
		t.Errorf("read_header_timeout = %v", cfg.Limits.ReadHeaderTimeout)
	}
	if cfg.Limits.IdleTimeout != Default().Limits.IdleTimeout {
		t.Errorf("idle_timeout lost its default: %v", cfg.Limits.IdleTimeout)
	}
	if len(cfg.Clients) != 1 || cfg.Clients[0].CN != "ci-*" {
		t.Errorf("clients = %+v, want the file's list only", cfg.Clients)
	}
}

func TestParseRejectsUnknownKeys(t *testing.T) {
	_, err := Parse(strings.NewReader("listne: :2376\n"))
	if err == nil || !strings.Contains(err.Error(), "listne") {
		t.Fatalf("got %v, want an error naming the unknown key", err)
	}
}

func TestParseEmptyGivesDefaults(t *testing.T) {
	cfg, err := Parse(strings.NewReader("\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != DefaultListen {
		t.Errorf("listen = %q", cfg.Listen)
	}
}

func TestApplyEnv(t *testing.T) {
	cfg := Default()
	env := map[string]string{"DOCKGATE_LISTEN": "127.0.0.1:1", "DOCKGATE_UPSTREAM": "unix:///tmp/d.sock"}
	cfg.ApplyEnv(func(k string) string { return env[k] })
	if cfg.Listen != "127.0.0.1:1" || cfg.Upstream.URL != "unix:///tmp/d.sock" {
		t.Errorf("after ApplyEnv: %+v", cfg)
	}
	if cfg.AdminListen != DefaultAdminListen {
		t.Errorf("unset variable changed admin_listen to %q", cfg.AdminListen)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen"},
		{"bad admin listen", func(c *Config) { c.AdminListen = "nope" }, "admin_listen"},
		{"http upstream", func(c *Config) { c.Upstream.URL = "http://x:2375" }, "upstream.url"},
		{"relative socket", func(c *Config) { c.Upstream.URL = "unix://docker.sock" }, "upstream.url"},
		{"tcp upstream without TLS", func(c *Config) { c.Upstream.URL = "tcp://10.0.0.1:2376" }, "upstream"},
		{"tls files on unix", func(c *Config) { c.Upstream.TLSCA = "/ca.pem" }, "upstream"},
		{"zero header timeout", func(c *Config) { c.Limits.ReadHeaderTimeout = -1 }, "limits.read_header_timeout"},
		{"tiny header limit", func(c *Config) { c.Limits.MaxHeaderBytes = 10 }, "limits.max_header_bytes"},
		{"negative max conns", func(c *Config) { c.Limits.MaxConnections = -1 }, "limits.max_connections"},
		{"tiny JSON body limit", func(c *Config) { c.Limits.MaxJSONBody = 1000 }, "limits.max_json_body"},
		{"huge JSON body limit", func(c *Config) { c.Limits.MaxJSONBody = 1 << 30 }, "limits.max_json_body"},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, "log.level"},
		{"empty rule", func(c *Config) { c.Clients = []ClientRule{{Role: "admin"}} }, "clients[0]"},
		{"both cn and group", func(c *Config) { c.Clients = []ClientRule{{CN: "a", Group: "b", Role: "admin"}} }, "clients[0]"},
		{"bad glob", func(c *Config) { c.Clients = []ClientRule{{CN: "[", Role: "admin"}} }, "clients[0].cn"},
		{"unknown role", func(c *Config) { c.Clients = []ClientRule{{Group: "g", Role: "root"}} }, "clients[0].role"},
		{"no server cert", func(c *Config) { c.ServerCert = "" }, "server_cert"},
		{"selector without =", func(c *Config) { c.Clients = []ClientRule{{Group: "g", Role: "admin", Hosts: []string{"staging"}}} }, "clients[0].hosts[0]"},
		{"selector without key", func(c *Config) { c.Clients = []ClientRule{{Group: "g", Role: "admin", Hosts: []string{"=x"}}} }, "clients[0].hosts[0]"},
		{"host name with a slash", func(c *Config) { c.Host.Name = "a/b" }, "host.name"},
		{"label named name", func(c *Config) { c.Host.Labels = map[string]string{"name": "x"} }, "host.labels.name"},
		{"label value with a space", func(c *Config) { c.Host.Labels = map[string]string{"env": "a b"} }, "host.labels.env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			tc.edit(&cfg)
			err := cfg.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if fe.Field != tc.field {
				t.Errorf("field = %q, want %q (error: %v)", fe.Field, tc.field, err)
			}
		})
	}
}

func TestValidateTCPUpstreamWithTLS(t *testing.T) {
	cfg := Default()
	cfg.Upstream = Upstream{URL: "tcp://127.0.0.1:2376", TLSCA: "ca.pem", TLSCert: "cert.pem", TLSKey: "key.pem"}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate() = %v", err)
	}
}

func TestMatchClientFirstRuleWins(t *testing.T) {
	cfg := Default()
	cfg.Clients = []ClientRule{{CN: "ci-*", Role: "admin"}, {Group: "admins", Role: "admin"}}
	cases := []struct {
		cn     string
		groups []string
		ok     bool
	}{
		{"ci-1", nil, true},
		{"ci-", nil, true},
		{"bob", []string{"admins"}, true},
		{"bob", []string{"ADMINS"}, false},
		{"xci-1", nil, false},
	}
	for _, tc := range cases {
		if _, ok := cfg.MatchClient(tc.cn, tc.groups); ok != tc.ok {
			t.Errorf("MatchClient(%q, %v) = %v, want %v", tc.cn, tc.groups, ok, tc.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("listen: :2376\n")
	f.Add("clients:\n  - group: admins\n    role: admin\n")
	f.Add("limits: {read_header_timeout: 1s}\n")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := Parse(strings.NewReader(s))
		if err != nil {
			return
		}
		_ = cfg.Validate() // must not panic on anything Parse accepts
	})
}

func TestMaxJSONBody(t *testing.T) {
	if got := Default().Limits.MaxJSONBody; got != 4<<20 {
		t.Errorf("default max_json_body = %d, want 4 MiB", got)
	}
	cfg, err := Parse(strings.NewReader("limits: {max_json_body: 1048576}\n"))
	if err != nil || cfg.Validate() != nil || cfg.Limits.MaxJSONBody != 1<<20 {
		t.Errorf("max_json_body from the file: %d, %v, %v", cfg.Limits.MaxJSONBody, err, cfg.Validate())
	}
}

func TestParseNamesUnknownKeysByPath(t *testing.T) {
	in := "listen: \":2376\"\nroles:\n  ci:\n    allow: [container.*]\n    containers:\n      priviledged: true\n" +
		"      bind_mounts: yes-please\nclients:\n  - group: admins\n    rol: admin\nbogus: 1\n"
	_, err := Parse(strings.NewReader(in))
	if err == nil {
		t.Fatal("Parse accepted unknown keys")
	}
	for _, want := range []string{
		"roles.ci.containers.priviledged: is not a known key (line 6) (did you mean privileged?)",
		"roles.ci.containers.bind_mounts: cannot unmarshal !!str `yes-please` into []string (line 7)",
		"clients[0].rol: is not a known key (line 10) (did you mean role?)",
		"bogus: is not a known key (line 11) (known keys here: listen, admin_listen,",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "roles.ci.containers.priviledged" {
		t.Errorf("first FieldError = %+v, want the field path", fe)
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"rol", "role", 1}, {"priviledged", "privileged", 1}, {"idle_timout", "idle_timeout", 1}, {"abc", "xyz", 3}} {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
