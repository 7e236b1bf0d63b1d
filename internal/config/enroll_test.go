package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEnrollDefaults(t *testing.T) {
	cfg := Default()
	e := cfg.Enroll
	if !e.Enabled || e.MaxFailures != DefaultEnrollMaxFailures || e.FailureWindow != DefaultEnrollFailureWindow {
		t.Errorf("enroll defaults = %+v", e)
	}
	if got, want := cfg.EnrollListen(), ":2386"; got != want {
		t.Errorf("EnrollListen() = %q, want %q", got, want)
	}
}

func TestEnrollListenFollowsTheGatewayHost(t *testing.T) {
	tests := []struct {
		listen, enroll, want string
	}{
		{":2376", "", ":2386"},
		{"127.0.0.1:12376", "", "127.0.0.1:2386"},
		{"[::1]:2376", "", "[::1]:2386"},
		{"10.0.0.5:2376", "0.0.0.0:9999", "0.0.0.0:9999"},
	}
	for _, tt := range tests {
		t.Run(tt.listen+" "+tt.enroll, func(t *testing.T) {
			cfg := Default()
			cfg.Listen, cfg.Enroll.Listen = tt.listen, tt.enroll
			if got := cfg.EnrollListen(); got != tt.want {
				t.Errorf("EnrollListen() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseEnroll(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       Enroll
	}{
		{"absent keeps defaults", "listen: :2376\n", Default().Enroll},
		{"disabled", "enroll:\n  enabled: false\n",
			Enroll{Enabled: false, MaxFailures: DefaultEnrollMaxFailures, FailureWindow: DefaultEnrollFailureWindow}},
		{"listen only keeps enabled", "enroll:\n  listen: 127.0.0.1:4000\n",
			Enroll{Enabled: true, Listen: "127.0.0.1:4000", MaxFailures: DefaultEnrollMaxFailures, FailureWindow: DefaultEnrollFailureWindow}},
		{"rate limit", "enroll:\n  max_failures: 3\n  failure_window: 1h\n",
			Enroll{Enabled: true, MaxFailures: 3, FailureWindow: time.Hour}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse(strings.NewReader(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Enroll != tt.want {
				t.Errorf("enroll = %+v, want %+v", cfg.Enroll, tt.want)
			}
		})
	}
}

func TestEnrollEnvOverride(t *testing.T) {
	cfg := Default()
	cfg.ApplyEnv(func(k string) string {
		if k == "DOCKGATE_ENROLL_LISTEN" {
			return "127.0.0.1:7"
		}
		return ""
	})
	if cfg.Enroll.Listen != "127.0.0.1:7" {
		t.Errorf("enroll.listen = %q after DOCKGATE_ENROLL_LISTEN", cfg.Enroll.Listen)
	}
}

func TestValidateEnroll(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		msg  string
	}{
		{"no port", func(c *Config) { c.Enroll.Listen = "localhost" }, "is not HOST:PORT"},
		{"same port as the gateway", func(c *Config) { c.Listen, c.Enroll.Listen = ":2376", ":2376" }, "already used"},
		{"derived address equals the admin listener", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:1", "127.0.0.1:2386" }, "already used"},
		{"no failures allowed", func(c *Config) { c.Enroll.MaxFailures = -1 }, "must be at least 1"},
		{"no window", func(c *Config) { c.Enroll.FailureWindow = -time.Second }, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Default()
			tt.edit(&cfg)
			err := cfg.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("Validate() = %v, want a FieldError", err)
			}
			if !strings.HasPrefix(fe.Field, "enroll.") || !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("got %v, want an enroll.* field saying %q", err, tt.msg)
			}
		})
	}
	t.Run("port 0 is ephemeral and never clashes", func(t *testing.T) {
		cfg := Default()
		cfg.Listen, cfg.AdminListen, cfg.Enroll.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate() = %v, want nil", err)
		}
	})
	t.Run("a disabled listener is not checked for clashes", func(t *testing.T) {
		cfg := Default()
		cfg.Enroll.Enabled = false
		cfg.Enroll.Listen = cfg.Listen
		if err := cfg.Validate(); err != nil {
			t.Errorf("Validate() = %v, want nil for a disabled enrollment listener", err)
		}
	})
}
