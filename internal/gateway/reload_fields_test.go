package gateway

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
)

func TestStaticFieldsChanged(t *testing.T) {
	tests := []struct {
		name   string
		change func(*config.Config)
		want   []string // nil: applies live, no warning
	}{
		{"listen", func(c *config.Config) { c.Listen = "127.0.0.1:12376" }, []string{"listen"}},
		{"admin_listen", func(c *config.Config) { c.AdminListen = "off" }, []string{"admin_listen"}},
		{"server_cert", func(c *config.Config) { c.ServerCert = "other" }, []string{"server_cert"}},
		{"upstream.url", func(c *config.Config) { c.Upstream.URL = "unix:///run/other.sock" }, []string{"upstream.url"}},
		{"upstream.tls_ca", func(c *config.Config) { c.Upstream.TLSCA = "/etc/d/ca.pem" }, []string{"upstream.tls_ca"}},
		{"upstream.tls_cert", func(c *config.Config) { c.Upstream.TLSCert = "/etc/d/cert.pem" }, []string{"upstream.tls_cert"}},
		{"upstream.tls_key", func(c *config.Config) { c.Upstream.TLSKey = "/etc/d/key.pem" }, []string{"upstream.tls_key"}},
		{"upstream.idle_timeout", func(c *config.Config) { c.Upstream.IdleTimeout = time.Second }, []string{"upstream.idle_timeout"}},
		{"limits.read_header_timeout", func(c *config.Config) { c.Limits.ReadHeaderTimeout = time.Second }, []string{"limits.read_header_timeout"}},
		{"limits.idle_timeout", func(c *config.Config) { c.Limits.IdleTimeout = time.Second }, []string{"limits.idle_timeout"}},
		{"limits.max_header_bytes", func(c *config.Config) { c.Limits.MaxHeaderBytes = 4096 }, []string{"limits.max_header_bytes"}},
		{"limits.max_connections", func(c *config.Config) { c.Limits.MaxConnections = 7 }, []string{"limits.max_connections"}},
		{"limits.shutdown_timeout", func(c *config.Config) { c.Limits.ShutdownTimeout = time.Second }, []string{"limits.shutdown_timeout"}},
		{"log.format", func(c *config.Config) { c.Log.Format = "json" }, []string{"log.format"}},
		{"log.level", func(c *config.Config) { c.Log.Level = "debug" }, []string{"log.level"}},
		{"audit.path", func(c *config.Config) { c.Audit.Path = "off" }, []string{"audit.path"}},
		{"enroll.enabled", func(c *config.Config) { c.Enroll.Enabled = !c.Enroll.Enabled }, []string{"enroll.enabled"}},
		{"enroll.listen", func(c *config.Config) { c.Enroll.Listen = "127.0.0.1:12386" }, []string{"enroll.listen"}},
		{"store.url", func(c *config.Config) { c.Store.URL = "postgres://db.example.net/dockgate" }, []string{"store.url"}},
		{"host.labels", func(c *config.Config) { c.Host.Labels = map[string]string{"env": "prod"} }, []string{"host.labels"}},
		{"enroll.max_failures", func(c *config.Config) { c.Enroll.MaxFailures = 3 }, []string{"enroll.max_failures"}},
		{"enroll.failure_window", func(c *config.Config) { c.Enroll.FailureWindow = time.Hour }, []string{"enroll.failure_window"}},
		{"several at once, all named", func(c *config.Config) {
			c.Listen, c.Log.Level, c.Enroll.Enabled = "127.0.0.1:1", "warn", !c.Enroll.Enabled
		}, []string{"listen", "log.level", "enroll.enabled"}},

		{"roles apply live", func(c *config.Config) {
			c.Roles = map[string]config.RoleSpec{"ci": {Allow: []string{"container.list"}}}
		}, nil},
		{"clients apply live", func(c *config.Config) {
			c.Clients = append(c.Clients, config.ClientRule{CN: "ci-*", Role: "viewer"})
		}, nil},
		{"limits.max_json_body applies live", func(c *config.Config) { c.Limits.MaxJSONBody = config.MinJSONBody }, nil},
		{"limits.per_client applies live", func(c *config.Config) { c.Limits.PerClient = config.ClientLimits{Connections: 3, Rate: 1} }, nil},
		{"limits.max_build_prefix applies live", func(c *config.Config) { c.Limits.MaxBuildPrefix = config.MinBuildPrefix }, nil},
		{"no change", func(*config.Config) {}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := config.Default()
			cur := config.Default()
			tt.change(&cur)
			if got := staticFieldsChanged(&old, &cur); !slices.Equal(got, tt.want) {
				t.Errorf("staticFieldsChanged() = %q, want %q", got, tt.want)
			}
		})
	}
}

// liveFields are the config fields a Reload applies.
var liveFields = []string{"roles", "clients", "limits.max_json_body", "limits.max_build_prefix",
	"limits.per_client.connections", "limits.per_client.requests", "limits.per_client.streams",
	"limits.per_client.rate", "limits.per_client.burst"}

// Every config field is either applied by Reload or named when it changes:
// a field added to config.Config without a decision fails here.
func TestEveryConfigFieldIsClassified(t *testing.T) {
	var restartOnly []string
	for _, f := range restartOnlyFields {
		restartOnly = append(restartOnly, f.name)
	}
	for _, path := range yamlLeaves(reflect.TypeFor[config.Config](), "") {
		if !slices.Contains(restartOnly, path) && !slices.Contains(liveFields, path) {
			t.Errorf("config field %s is neither in restartOnlyFields nor live", path)
		}
	}
}

// yamlLeaves lists the YAML paths of t's fields, descending into structs.
func yamlLeaves(t reflect.Type, prefix string) []string {
	var paths []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if f.Type.Kind() == reflect.Struct {
			paths = append(paths, yamlLeaves(f.Type, prefix+name+".")...)
			continue
		}
		paths = append(paths, prefix+name)
	}
	return paths
}

func TestReloadWarnsOnceNamingEveryRestartField(t *testing.T) {
	tg := startTestGateway(t, nil)
	tg.mu.Lock()
	m := *tg.material
	cfg := *m.Config
	cfg.Log.Level, cfg.Limits.MaxConnections = "debug", 3
	m.Config = &cfg
	tg.material = &m
	tg.mu.Unlock()
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	logs := tg.logs.String()
	want := `msg="reload: a restart is needed for these changes to apply" fields="[limits.max_connections log.level]"`
	if strings.Count(logs, "a restart is needed") != 1 || !strings.Contains(logs, want) {
		t.Errorf("want one warning %q, got:\n%s", want, logs)
	}
}
