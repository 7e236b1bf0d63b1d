package config

import (
	"fmt"
	"math"
)

// ClientLimits cap what one client (one certificate CN, or one uid on the
// local socket) may hold at once, so that a client at its cap never
// affects another. A field at 0 means "not set here": in
// limits.per_client the default applies, in roles.NAME.limits the value
// of limits.per_client. Over a cap the gateway answers 429.
type ClientLimits struct {
	// Connections caps open connections. It must stay below
	// limits.max_connections, so that one client can never fill the
	// gateway's global cap.
	Connections int `yaml:"connections"`
	// Requests caps requests in flight, long polls (container wait, logs
	// -f, events) included; hijacked streams count as Streams instead.
	Requests int `yaml:"requests"`
	// Streams caps hijacked streams: attach, exec start, BuildKit sessions.
	Streams int `yaml:"streams"`
	// Rate is the sustained request rate, per second, of a token bucket
	// that holds Burst requests.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// DefaultClientLimits fit the docker CLI and CI runners with room to
// spare. One docker command holds one to three connections (docker run
// holds an attach stream, a wait long poll and its create/start calls),
// and docker compose runs a command per service in parallel: 64
// connections and 64 requests in flight are some twenty parallel `docker
// run`s, 32 streams a compose project attached to all its services. A
// docker command makes 2 to 6 requests and `compose up` some ten per
// service, at once: a burst of 500 takes a project of about fifty
// services. 100 per second sustained is twice what a CI orchestrator
// polling fifty containers every second needs, while a runaway loop (which
// the gateway would serve at thousands per second) gets about a sixth of
// what dockerd answers for container lists on two cores.
var DefaultClientLimits = ClientLimits{Connections: 64, Requests: 64, Streams: 32, Rate: 100, Burst: 500}

// Over returns l with its unset fields taken from base.
func (l ClientLimits) Over(base ClientLimits) ClientLimits {
	pick := func(v, b int) int {
		if v != 0 {
			return v
		}
		return b
	}
	out := ClientLimits{
		Connections: pick(l.Connections, base.Connections),
		Requests:    pick(l.Requests, base.Requests),
		Streams:     pick(l.Streams, base.Streams),
		Burst:       pick(l.Burst, base.Burst),
		Rate:        l.Rate,
	}
	if out.Rate == 0 {
		out.Rate = base.Rate
	}
	return out
}

func (l ClientLimits) validate(field string, maxConnections int, add addFunc) {
	for _, f := range []struct {
		name string
		v    int
	}{{"connections", l.Connections}, {"requests", l.Requests}, {"streams", l.Streams}, {"burst", l.Burst}} {
		if f.v < 0 {
			add(field+"."+f.name, "must not be negative", "0 takes the default")
		}
	}
	if l.Rate < 0 || math.IsNaN(l.Rate) || math.IsInf(l.Rate, 0) {
		add(field+".rate", "must be a positive number of requests per second", "e.g. 50; 0 takes the default")
	}
	if maxConnections > 0 && l.Connections >= maxConnections {
		add(field+".connections", fmt.Sprintf("%d is not below limits.max_connections (%d)", l.Connections, maxConnections),
			"one client must never fill the gateway's connection cap: lower it, or raise limits.max_connections")
	}
}

// ClientLimitsOf returns the limits of one client with role: the role's
// own, over limits.per_client, over the defaults. When limits.max_connections
// is set and the connection cap comes from the defaults, it is lowered to
// half the global cap (at least 1), so that one client never fills it.
func (c *Config) ClientLimitsOf(role string) ClientLimits {
	spec := c.Roles[role]
	l := spec.Limits.Over(c.Limits.PerClient.Over(DefaultClientLimits))
	if m := c.Limits.MaxConnections; m > 0 && l.Connections >= m {
		l.Connections = max(m/2, 1)
	}
	return l
}

// ClientLimitKey is the config key that sets limit (connections,
// requests, streams, rate) for clients of role: the role's own limits
// for a declared role, limits.per_client for a built-in role or a client
// no role matches.
func (c *Config) ClientLimitKey(role, limit string) string {
	if _, declared := c.Roles[role]; declared && !IsBuiltinRole(role) {
		return "roles." + role + ".limits." + limit
	}
	return "limits.per_client." + limit
}
