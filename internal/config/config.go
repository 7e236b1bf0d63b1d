// Package config owns the gateway's configuration: the YAML file that
// `dockgate serve` reads, its defaults, validation and environment overrides.
//
// The flow is litestream's: Default() gives a working configuration, Parse
// reads YAML over it (unknown keys are errors), ApplyEnv and flags override
// single fields, and Validate says precisely what is wrong, by field path.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// Defaults. Port 2376 is Docker's registered port for the TLS-protected API.
const (
	DefaultListen      = ":2376"
	DefaultAdminListen = "127.0.0.1:2378"
	DefaultUpstream    = "unix:///var/run/docker.sock"
	DefaultServerCert  = "gateway"
	DefaultAdminGroup  = "admins"
	RoleAdmin          = "admin"
)

// DefaultUpstreamIdleTimeout is how long a connection to the daemon may
// sit idle in the gateway's pool. dockerd never closes an idle
// connection itself (its API server sets no IdleTimeout), so without it a
// load spike would leave its sockets open for good. A minute keeps
// connections across the gaps between the commands of a script or a CI
// job, and gives a spike's sockets back soon after; it is below the 90 s
// of Go's http.DefaultTransport, which the gateway used before.
const DefaultUpstreamIdleTimeout = time.Minute

// Enrollment defaults.
const (
	// DefaultEnrollPort is the enrollment listener's port. It is next to
	// Docker's ports without taking one: 2375 and 2376 are the Docker API,
	// 2377 is swarm's cluster management, 2378 is our admin listener, and
	// 2379-2380 are etcd's.
	DefaultEnrollPort = "2386"
	// DefaultEnrollMaxFailures failed enrollments from one address within
	// DefaultEnrollFailureWindow lock that address out until the window
	// has passed: enough for a person to mistype a token a few times,
	// while a 128-bit secret stays out of reach of any guessing rate.
	DefaultEnrollMaxFailures   = 10
	DefaultEnrollFailureWindow = 10 * time.Minute
)

// Config is the whole `serve` configuration.
type Config struct {
	Listen      string              `yaml:"listen"`
	AdminListen string              `yaml:"admin_listen"`
	ServerCert  string              `yaml:"server_cert"`
	Upstream    Upstream            `yaml:"upstream"`
	Limits      Limits              `yaml:"limits"`
	Log         Log                 `yaml:"log"`
	Audit       Audit               `yaml:"audit"`
	Roles       map[string]RoleSpec `yaml:"roles"` // beside the built-in ones (roles.go)
	Clients     []ClientRule        `yaml:"clients"`
	Enroll      Enroll              `yaml:"enroll"`
	Store       Store               `yaml:"store"`
	Host        Host                `yaml:"host"`

	// ListenUnix, ListenUnixMode and ListenUnixGroup configure the local
	// socket (unix.go); it is off while ListenUnix is empty.
	ListenUnix      string `yaml:"listen_unix"`
	ListenUnixMode  string `yaml:"listen_unix_mode"`
	ListenUnixGroup string `yaml:"listen_unix_group"`
}

// Store says where the certificate inventory (certificates, revocations,
// tokens) lives. The CA's files stay in the state directory either way.
type Store struct {
	// URL is a postgres:// URL of a database several gateways share; ""
	// keeps the inventory in SQLite in the state directory. Read at start;
	// a reload does not move a running gateway to another store.
	URL string `yaml:"url"`
}

// Enroll configures the enrollment listener, where a new client trades a
// one-time token for a certificate. It is a separate port that serves only
// enrollment, so the Docker API port never accepts a connection without a
// client certificate.
type Enroll struct {
	Enabled bool `yaml:"enabled"`
	// Listen is HOST:PORT; empty means the host of the gateway's listen
	// address with DefaultEnrollPort, so enrollment is reachable wherever
	// the gateway is, and nowhere else.
	Listen string `yaml:"listen"`
	// MaxFailures failed attempts from one source address within
	// FailureWindow refuse that address until the window has passed.
	MaxFailures   int           `yaml:"max_failures"`
	FailureWindow time.Duration `yaml:"failure_window"`
}

// EnrollListen is the address the enrollment listener binds.
func (c *Config) EnrollListen() string {
	if c.Enroll.Listen != "" {
		return c.Enroll.Listen
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		host = ""
	}
	return net.JoinHostPort(host, DefaultEnrollPort)
}

// Upstream is the Docker daemon the gateway forwards to: a unix socket, or
// a remote dockerd over TCP with its own TLS client material.
type Upstream struct {
	URL     string `yaml:"url"`
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// IdleTimeout closes pooled daemon connections idle for longer (a
	// couple are kept whatever their age); 0 means the default.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// Limits bound what one client can hold. Streams (logs -f, attach, events)
// have no total deadline, so there is deliberately no write timeout.
type Limits struct {
	// ReadHeaderTimeout stops slowloris clients; 10s is generous for any
	// client on a real network and short enough to free the slot.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes keep-alive connections nobody uses; the docker CLI
	// opens a fresh connection per command anyway.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes: Docker sends registry auth in X-Registry-Auth, which
	// stays well under 64 KiB; 1 MiB matches net/http's default.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConnections caps concurrent client connections; 0 means no cap.
	MaxConnections int `yaml:"max_connections"`
	// ShutdownTimeout is how long SIGTERM waits for requests to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// MaxJSONBody bounds a JSON request body, which the gateway reads
	// whole to inspect it; larger ones get 413. A docker run body is a few
	// KiB; 4 MiB leaves room for huge label and env sets.
	MaxJSONBody int `yaml:"max_json_body"`
	// PerClient caps what one client may hold, for every role that does
	// not set its own (roles.NAME.limits); see ClientLimits. Fields left
	// at 0 take DefaultClientLimits.
	PerClient ClientLimits `yaml:"per_client"`
	// MaxBuildPrefix bounds what the gateway holds of a build context to
	// find its Dockerfile; a context whose Dockerfile comes later is
	// refused. 32 MiB holds what sorts before "Dockerfile" in ordinary
	// projects, and is what one build may cost the gateway in memory.
	MaxBuildPrefix int `yaml:"max_build_prefix"`
}

// JSON body limits: MaxJSONBody must lie between these.
const (
	MinJSONBody = 64 << 10
	MaxJSONBody = 64 << 20
)

// Build context prefix limits: MaxBuildPrefix must lie between these; the
// default is DefaultBuildPrefix.
const (
	MinBuildPrefix     = 64 << 10
	DefaultBuildPrefix = 32 << 20
	MaxBuildPrefix     = 1 << 30
)

// Log selects the log format and level.
type Log struct {
	Format string `yaml:"format"` // auto (text on a TTY, else JSON), text, json
	Level  string `yaml:"level"`  // debug, info, warn, error
}

// ClientRule lets clients in. Certified clients match by group (the
// certificate's O) or by a glob over the certificate's CN; peers of the
// local socket match by uid, user name or unix group (unix.go). Each rule
// sets exactly one of these. The first matching rule wins.
type ClientRule struct {
	CN    string `yaml:"cn,omitempty"`
	Group string `yaml:"group,omitempty"`
	// UID is a pointer so that uid 0 (root) can be named: root is not
	// let in unless a rule says so.
	UID       *uint32 `yaml:"uid,omitempty"`
	User      string  `yaml:"user,omitempty"`
	UnixGroup string  `yaml:"unix_group,omitempty"`
	Role      string  `yaml:"role"`
	// Hosts are selectors ("env=staging", "name=dock1") that must all
	// match this gateway's host for the rule to apply (hosts.go); none
	// means every host.
	Hosts []string `yaml:"hosts,omitempty"`
}

// Default returns the configuration `dockgate up` runs with.
func Default() Config {
	return Config{
		Listen:      DefaultListen,
		AdminListen: DefaultAdminListen,
		ServerCert:  DefaultServerCert,
		Upstream:    Upstream{URL: DefaultUpstream, IdleTimeout: DefaultUpstreamIdleTimeout},

		ListenUnixMode: DefaultListenUnixMode,

		Limits: Limits{
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    1 << 20,
			ShutdownTimeout:   30 * time.Second,
			MaxJSONBody:       dockerapi.DefaultMaxBody,
			MaxBuildPrefix:    DefaultBuildPrefix,
		},
		Log:     Log{Format: "auto", Level: "info"},
		Audit:   Audit{OnFull: AuditBlock, Queue: DefaultAuditQueue},
		Clients: []ClientRule{{Group: DefaultAdminGroup, Role: RoleAdmin}},
		Enroll: Enroll{
			Enabled:       true,
			MaxFailures:   DefaultEnrollMaxFailures,
			FailureWindow: DefaultEnrollFailureWindow,
		},
	}
}

// Parse reads YAML over the defaults. Unknown keys are errors, so a typo
// never silently leaves a default in place. A `clients:` list in the file
// replaces the default one.
func Parse(r io.Reader) (Config, error) {
	cfg := Default()
	data, err := io.ReadAll(r)
	if err != nil {
		return cfg, fmt.Errorf("failed to read config: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return cfg, nil
	}
	// A bool has no "unset" zero value: start it at its default, so that
	// only a key present in the file changes it.
	file := Config{Enroll: Enroll{Enabled: cfg.Enroll.Enabled}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		return cfg, fmt.Errorf("failed to parse config: %w", explainDecodeError(data, err))
	}
	merge(&cfg, file)
	return cfg, nil
}

// merge copies the fields the file set over the defaults.
func merge(dst *Config, src Config) {
	setString(&dst.Listen, src.Listen)
	setString(&dst.ListenUnix, src.ListenUnix)
	setString(&dst.ListenUnixMode, src.ListenUnixMode)
	setString(&dst.ListenUnixGroup, src.ListenUnixGroup)
	setString(&dst.AdminListen, src.AdminListen)
	setString(&dst.ServerCert, src.ServerCert)
	setString(&dst.Upstream.URL, src.Upstream.URL)
	setString(&dst.Upstream.TLSCA, src.Upstream.TLSCA)
	setString(&dst.Upstream.TLSCert, src.Upstream.TLSCert)
	setString(&dst.Upstream.TLSKey, src.Upstream.TLSKey)
	if src.Upstream.IdleTimeout != 0 {
		dst.Upstream.IdleTimeout = src.Upstream.IdleTimeout
	}
	setString(&dst.Log.Format, src.Log.Format)
	setString(&dst.Log.Level, src.Log.Level)
	if src.Limits.ReadHeaderTimeout != 0 {
		dst.Limits.ReadHeaderTimeout = src.Limits.ReadHeaderTimeout
	}
	if src.Limits.IdleTimeout != 0 {
		dst.Limits.IdleTimeout = src.Limits.IdleTimeout
	}
	if src.Limits.MaxHeaderBytes != 0 {
		dst.Limits.MaxHeaderBytes = src.Limits.MaxHeaderBytes
	}
	if src.Limits.MaxJSONBody != 0 {
		dst.Limits.MaxJSONBody = src.Limits.MaxJSONBody
	}
	if src.Limits.MaxBuildPrefix != 0 {
		dst.Limits.MaxBuildPrefix = src.Limits.MaxBuildPrefix
	}
	if src.Limits.MaxConnections != 0 {
		dst.Limits.MaxConnections = src.Limits.MaxConnections
	}
	if src.Limits.ShutdownTimeout != 0 {
		dst.Limits.ShutdownTimeout = src.Limits.ShutdownTimeout
	}
	dst.Limits.PerClient = src.Limits.PerClient.Over(dst.Limits.PerClient)
	setString(&dst.Audit.Path, src.Audit.Path)
	setString(&dst.Audit.OnFull, src.Audit.OnFull)
	if src.Audit.Queue != 0 {
		dst.Audit.Queue = src.Audit.Queue
	}
	dst.Audit.Sync = src.Audit.Sync
	setString(&dst.Audit.Sink, src.Audit.Sink)
	setString(&dst.Audit.Host, src.Audit.Host)
	if src.Roles != nil {
		dst.Roles = src.Roles
	}
	if src.Clients != nil {
		dst.Clients = src.Clients
	}
	mergeEnroll(&dst.Enroll, src.Enroll)
	setString(&dst.Store.URL, src.Store.URL)
	setString(&dst.Host.Name, src.Host.Name)
	if src.Host.Labels != nil {
		dst.Host.Labels = src.Host.Labels
	}
}

func mergeEnroll(dst *Enroll, src Enroll) {
	dst.Enabled = src.Enabled
	setString(&dst.Listen, src.Listen)
	if src.MaxFailures != 0 {
		dst.MaxFailures = src.MaxFailures
	}
	if src.FailureWindow != 0 {
		dst.FailureWindow = src.FailureWindow
	}
}

func setString(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

// envOverrides maps DOCKGATE_* variables to the fields they set.
var envOverrides = []struct {
	name  string
	field func(*Config) *string
}{
	{"DOCKGATE_LISTEN", func(c *Config) *string { return &c.Listen }},
	{"DOCKGATE_ADMIN_LISTEN", func(c *Config) *string { return &c.AdminListen }},
	{"DOCKGATE_UPSTREAM", func(c *Config) *string { return &c.Upstream.URL }},
	{"DOCKGATE_SERVER_CERT", func(c *Config) *string { return &c.ServerCert }},
	{"DOCKGATE_LOG_FORMAT", func(c *Config) *string { return &c.Log.Format }},
	{"DOCKGATE_LOG_LEVEL", func(c *Config) *string { return &c.Log.Level }},
	{"DOCKGATE_ENROLL_LISTEN", func(c *Config) *string { return &c.Enroll.Listen }},
	{"DOCKGATE_STORE", func(c *Config) *string { return &c.Store.URL }},
	{"DOCKGATE_AUDIT_HOST", func(c *Config) *string { return &c.Audit.Host }},
}

// ApplyEnv overrides fields from DOCKGATE_* environment variables.
func (c *Config) ApplyEnv(getenv func(string) string) {
	for _, o := range envOverrides {
		if v := getenv(o.name); v != "" {
			*o.field(c) = v
		}
	}
}

// FieldError says which field is wrong, what is wrong, and how to fix it.
type FieldError struct {
	Field string // e.g. "clients[1].role"
	Msg   string
	Hint  string
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// Validate checks every field and returns all problems joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(field, msg, hint string) {
		errs = append(errs, &FieldError{Field: field, Msg: msg, Hint: hint})
	}
	if err := checkListen(c.Listen); err != nil {
		add("listen", err.Error(), `use HOST:PORT, e.g. ":2376"`)
	}
	if c.AdminListen != "" && c.AdminListen != "off" {
		if err := checkListen(c.AdminListen); err != nil {
			add("admin_listen", err.Error(), `use HOST:PORT, e.g. "127.0.0.1:2378", or "off"`)
		}
	}
	if c.ServerCert == "" {
		add("server_cert", "is empty", "name a certificate issued with 'dockgate issue server NAME'")
	}
	c.validateListenUnix(add)
	c.validateUpstream(add)
	c.validateLimits(add)
	c.validateLog(add)
	c.validateAudit(add)
	c.validateRoles(add)
	c.validateClients(add)
	c.validateEnroll(add)
	c.validateHost(add)
	if u := c.Store.URL; u != "" && !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		add("store.url", "is not a postgres:// URL", `use postgres://USER@HOST/DB, or leave it out for SQLite in the state directory`)
	}
	return errors.Join(errs...)
}

// sameFixedAddress reports whether two listen addresses would clash. Port
// 0 never clashes: the system picks a free port for each listener (tests
// and embedding use it), and the gateway logs the ports it got.
func sameFixedAddress(a, b string) bool {
	_, port, err := net.SplitHostPort(a)
	return a == b && err == nil && port != "0"
}

func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT", addr)
	}
	if port == "" {
		return fmt.Errorf("%q has no port", addr)
	}
	return nil
}

func (c *Config) validateUpstream(add func(field, msg, hint string)) {
	u, err := url.Parse(c.Upstream.URL)
	if err != nil {
		add("upstream.url", fmt.Sprintf("%q is not a URL", c.Upstream.URL), "use unix:///var/run/docker.sock or tcp://HOST:2376")
		return
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" || !path.IsAbs(u.Path) {
			add("upstream.url", fmt.Sprintf("%q has no absolute socket path", c.Upstream.URL), "use unix:///var/run/docker.sock")
		}
		if c.Upstream.TLSCA != "" || c.Upstream.TLSCert != "" || c.Upstream.TLSKey != "" {
			add("upstream", "tls_ca, tls_cert and tls_key apply only to a tcp:// upstream", "remove them or use tcp://HOST:PORT")
		}
	case "tcp":
		if _, port, err := net.SplitHostPort(u.Host); err != nil || port == "" {
			add("upstream.url", fmt.Sprintf("%q has no port", c.Upstream.URL), "use tcp://HOST:2376")
		}
		if c.Upstream.TLSCA == "" || c.Upstream.TLSCert == "" || c.Upstream.TLSKey == "" {
			add("upstream", "a tcp:// upstream needs tls_ca, tls_cert and tls_key", "the Docker API is root on that host: it must be reached over mutual TLS")
		}
	default:
		add("upstream.url", fmt.Sprintf("scheme %q is not supported", u.Scheme), "use unix:///var/run/docker.sock or tcp://HOST:2376")
	}
	if c.Upstream.IdleTimeout < 0 {
		add("upstream.idle_timeout", "must not be negative", `e.g. "1m"; 0 means the default`)
	}
}

func (c *Config) validateLimits(add func(field, msg, hint string)) {
	l := c.Limits
	if l.ReadHeaderTimeout <= 0 {
		add("limits.read_header_timeout", "must be positive", `e.g. "10s"`)
	}
	if l.IdleTimeout <= 0 {
		add("limits.idle_timeout", "must be positive", `e.g. "2m"`)
	}
	if l.MaxHeaderBytes < 4096 {
		add("limits.max_header_bytes", fmt.Sprintf("%d is too small", l.MaxHeaderBytes), "use at least 4096")
	}
	if l.MaxConnections < 0 {
		add("limits.max_connections", "must not be negative", "0 means no limit")
	}
	l.PerClient.validate("limits.per_client", l.MaxConnections, add)
	if l.ShutdownTimeout <= 0 {
		add("limits.shutdown_timeout", "must be positive", `e.g. "30s"`)
	}
	if l.MaxJSONBody < MinJSONBody || l.MaxJSONBody > MaxJSONBody {
		add("limits.max_json_body", fmt.Sprintf("%d is out of range", l.MaxJSONBody),
			fmt.Sprintf("use %d to %d bytes; the default is %d (4 MiB)", MinJSONBody, MaxJSONBody, dockerapi.DefaultMaxBody))
	}
	if l.MaxBuildPrefix < MinBuildPrefix || l.MaxBuildPrefix > MaxBuildPrefix {
		add("limits.max_build_prefix", fmt.Sprintf("%d is out of range", l.MaxBuildPrefix),
			fmt.Sprintf("use %d to %d bytes; the default is %d (32 MiB)", MinBuildPrefix, MaxBuildPrefix, DefaultBuildPrefix))
	}
}

func (c *Config) validateLog(add func(field, msg, hint string)) {
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		add("log.format", fmt.Sprintf("%q is not a format", c.Log.Format), "use auto, text or json")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		add("log.level", fmt.Sprintf("%q is not a level", c.Log.Level), "use debug, info, warn or error")
	}
}

func (c *Config) validateClients(add func(field, msg, hint string)) {
	for i, r := range c.Clients {
		field := fmt.Sprintf("clients[%d]", i)
		switch n := r.selectors(); {
		case n == 0:
			add(field, "matches nobody", "set cn: GLOB or group: NAME for certificates, or uid:, user: or unix_group: for the local socket")
		case n > 1:
			add(field, "sets more than one of cn, group, uid, user and unix_group", "use one entry per match")
		}
		if r.CN != "" {
			if _, err := path.Match(r.CN, ""); err != nil {
				add(field+".cn", fmt.Sprintf("%q is not a valid glob", r.CN), `use * and ?, e.g. "ci-*"`)
			}
		}
		r.validateUnix(field, add)
		r.validateHosts(field, add)
		if !c.KnownRole(r.Role) {
			add(field+".role", fmt.Sprintf("role %q is not defined", r.Role),
				"use a built-in role or one declared under roles: "+strings.Join(c.RoleNames(), ", "))
		}
	}
}

func (c *Config) validateEnroll(add func(field, msg, hint string)) {
	e := c.Enroll
	if e.Listen != "" {
		if err := checkListen(e.Listen); err != nil {
			add("enroll.listen", err.Error(), `use HOST:PORT, e.g. ":`+DefaultEnrollPort+`"`)
		}
	}
	if e.Enabled && (sameFixedAddress(c.EnrollListen(), c.Listen) || sameFixedAddress(c.EnrollListen(), c.AdminListen)) {
		add("enroll.listen", fmt.Sprintf("%q is already used by another listener", c.EnrollListen()),
			"enrollment needs its own port, e.g. \":"+DefaultEnrollPort+"\"")
	}
	if e.MaxFailures < 1 {
		add("enroll.max_failures", fmt.Sprintf("%d must be at least 1", e.MaxFailures), fmt.Sprintf("e.g. %d", DefaultEnrollMaxFailures))
	}
	if e.FailureWindow <= 0 {
		add("enroll.failure_window", "must be positive", `e.g. "10m"`)
	}
}

// MatchClient returns the role of the first rule that matches the
// certificate's CN or one of its groups.
func (c *Config) MatchClient(cn string, groups []string) (role string, ok bool) {
	i, ok := c.MatchRule(cn, groups)
	if !ok {
		return "", false
	}
	return c.Clients[i].Role, true
}

// Matches reports whether the rule matches a certificate's CN (by glob)
// or one of its groups (exactly). A local socket rule (uid, user,
// unix_group) never matches a certificate.
func (r ClientRule) Matches(cn string, groups []string) bool {
	if r.CN != "" {
		ok, _ := path.Match(r.CN, cn)
		return ok
	}
	if r.Group == "" {
		return false
	}
	for _, g := range groups {
		if g == r.Group {
			return true
		}
	}
	return false
}
