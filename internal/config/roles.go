package config

import (
	"fmt"
	"path"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// Built-in roles. They exist without being declared and cannot be
// redefined: "admin" always means everything, so a config file can never
// quietly change what an existing client may do by reusing the name.
const (
	RoleReadOnly = "read-only"
	RoleOperator = "operator"
	RoleDeployer = "deployer"
)

// BuiltinRoles lists the built-in role names (RoleAdmin first).
var BuiltinRoles = []string{RoleAdmin, RoleReadOnly, RoleOperator, RoleDeployer}

// IsBuiltinRole reports whether name is a built-in role.
func IsBuiltinRole(name string) bool { return slices.Contains(BuiltinRoles, name) }

// Role modes.
const (
	ModeEnforce = "enforce" // denials answer 403
	ModeAudit   = "audit"   // denials are forwarded and recorded as would_deny
)

// Audit says where the audit log goes and what happens when it cannot
// keep up (docs/CONFIG.md).
type Audit struct {
	// Path is an absolute file path, "-" for standard output, "off" for
	// no audit log, or empty for the default: audit.jsonl in the state
	// directory (see AuditPath).
	Path string `yaml:"path"`
	// OnFull is what a request does when Queue records already wait for
	// the disk: block (wait for room, at most a second, then drop the
	// record), drop (drop the record) or deny (refuse the request, 503).
	OnFull string `yaml:"on_full"`
	// Queue is how many records may wait for the disk.
	Queue int `yaml:"queue"`
	// Sync fsyncs the file after each batch of lines.
	Sync bool `yaml:"sync"`
	// Sink is where records go: "file" (the default, Path) or "postgres"
	// (the audit_records table of the PostgreSQL store, store.url).
	Sink string `yaml:"sink"`
	// Host names this gateway in the records a shared sink holds; empty
	// means the machine's host name.
	Host string `yaml:"host"`
}

// audit.sink values.
const (
	AuditSinkFile     = "file"
	AuditSinkPostgres = "postgres"
)

// audit.on_full values.
const (
	AuditBlock = "block"
	AuditDrop  = "drop"
	AuditDeny  = "deny"
)

// Audit queue bounds. The default matches audit.DefaultQueue: 4096 lines
// of about 400 bytes, 1.6 MB, several seconds of a busy gateway's
// traffic. The maximum, 256Ki records, is about 100 MB of memory.
const (
	DefaultAuditQueue = 4096
	MaxAuditQueue     = 256 << 10
)

// Audit path values with a meaning of their own.
const (
	AuditStdout      = "-"
	AuditOff         = "off"
	DefaultAuditFile = "audit.jsonl"
)

// AuditPath returns the audit log to write: the configured path, or
// DefaultAuditFile in stateDir when none is set; "" when the log is off.
func (c *Config) AuditPath(stateDir string) string {
	switch c.Audit.Path {
	case "":
		return path.Join(stateDir, DefaultAuditFile)
	case AuditOff:
		return ""
	}
	return c.Audit.Path
}

// RoleSpec is one entry of roles: what a client with the role may do.
// Everything not allowed here is denied: an operation outside Allow, and
// any of the guardrails in Containers and Builds left at its zero value.
type RoleSpec struct {
	// Preset names a tool whose Docker API calls the role allows
	// (docs/PRESETS.md): "traefik". Allow adds to it; every other setting
	// applies as it would without it.
	Preset string `yaml:"preset"`
	// Allow lists operation globs (docs/OPERATIONS.md): "container.*".
	Allow []string `yaml:"allow"`
	// Mode is "enforce" (the default) or "audit": denials are forwarded
	// and recorded as would_deny.
	Mode string `yaml:"mode"`
	// OwnerIsolation confines the role's clients to the containers,
	// execs, volumes and networks they created.
	OwnerIsolation bool `yaml:"owner_isolation"`
	// AdminOperations allows what otherwise only the admin role may do,
	// even when Allow matches it: installing, configuring and enabling
	// plugins, and changing the swarm or its nodes.
	AdminOperations bool `yaml:"admin_operations"`
	// Discovery allows system.ping and system.version, the two calls the
	// docker CLI makes before any command (to learn the API version):
	// without them every command of the role fails, and the CLI falls
	// back to an API version the daemon may refuse. Nil (unset) means
	// true; false leaves them to Allow.
	Discovery  *bool         `yaml:"discovery"`
	Containers ContainerKnob `yaml:"containers"`
	Builds     BuildKnob     `yaml:"builds"`
	// Limits caps what one client of the role may hold; a field left at
	// 0 takes its value from limits.per_client.
	Limits ClientLimits `yaml:"limits"`
	Images ImageKnob    `yaml:"images"`
}

// ImageKnob restricts the images a role's clients may use.
type ImageKnob struct {
	// Allow lists the image references a container create, a service, a
	// pull and a build's FROM lines may name; empty allows any. An entry
	// is a reference ("busybox", normalized to docker.io/library/busybox),
	// a glob on the normalized name ("registry.example.com/team/*", '*'
	// within one path component) with an optional ":tag", or a digest pin
	// ("busybox@sha256:...") that allows exactly that content.
	Allow []string `yaml:"allow"`
}

// AllowsDiscovery reports whether the role allows the docker CLI's ping
// and version calls without listing them (Discovery unset or true).
func (r *RoleSpec) AllowsDiscovery() bool { return r.Discovery == nil || *r.Discovery }

// ContainerKnob relaxes the guardrails on container create and update,
// exec create, service create and update, and volume create, and on what
// inspect answers show. Each field allows one thing that is denied by
// default.
type ContainerKnob struct {
	// Privileged allows HostConfig.Privileged and privileged execs.
	Privileged bool `yaml:"privileged"`
	// Capabilities lists the capabilities CapAdd may add, in any spelling
	// ("NET_ADMIN", "CAP_NET_ADMIN"); "ALL" allows every capability.
	Capabilities []string `yaml:"capabilities"`
	// BindMounts lists absolute host paths that bind mounts may use: the
	// path itself and everything under it.
	BindMounts []string `yaml:"bind_mounts"`
	// VolumeDriverOptions allows local-driver volumes with type, o or
	// device options (which can mount any host path or device).
	VolumeDriverOptions bool `yaml:"volume_driver_options"`
	// VolumesFrom allows HostConfig.VolumesFrom.
	VolumesFrom bool `yaml:"volumes_from"`
	// HostNamespaces lists the namespaces a container may share with the
	// host: network, pid, ipc, uts, userns, cgroupns.
	HostNamespaces []string `yaml:"host_namespaces"`
	// ContainerNamespaces allows "container:<name>" network, pid, ipc and
	// cgroup modes. Under owner isolation they are allowed without it, onto
	// the caller's own containers only.
	ContainerNamespaces bool `yaml:"container_namespaces"`
	// Devices allows Devices and DeviceCgroupRules.
	Devices bool `yaml:"devices"`
	// DeviceRequests allows DeviceRequests (GPUs, CDI devices).
	DeviceRequests bool `yaml:"device_requests"`
	// Unconfined allows weakening confinement: SecurityOpt other than
	// no-new-privileges (seccomp, apparmor, label, systempaths), MaskedPaths
	// and ReadonlyPaths overrides, service seccomp/apparmor/SELinux
	// overrides.
	Unconfined bool `yaml:"unconfined"`
	// Sysctls lists the sysctls a container may set; "*" allows any.
	Sysctls []string `yaml:"sysctls"`
	// Runtimes lists runtimes other than runc a container may use.
	Runtimes []string `yaml:"runtimes"`
	// CgroupParent allows HostConfig.CgroupParent and the build parameter
	// cgroupparent.
	CgroupParent bool `yaml:"cgroup_parent"`
	// Annotations allows HostConfig.Annotations, which the runtime reads
	// (runc applies org.systemd.property.* ones to the container's unit).
	Annotations bool `yaml:"annotations"`
	// RedactEnv replaces the values of the environment variables in
	// inspect answers (containers, services, tasks, plugins) with a fixed
	// marker, keeping the names: they often hold passwords and tokens
	// that a role allowed to inspect should not read. Nil (unset) means
	// true; false shows the values.
	RedactEnv *bool `yaml:"redact_env"`
}

// RedactsEnv reports whether the role's clients see environment values
// replaced in inspect answers (RedactEnv unset or true).
func (k *ContainerKnob) RedactsEnv() bool { return k.RedactEnv == nil || *k.RedactEnv }

// BuildKnob relaxes the guardrails on image builds.
type BuildKnob struct {
	// HostNetwork allows networkmode=host: RUN steps in the host's network.
	HostNetwork bool `yaml:"host_network"`
	// RemoteContext allows remote=URL: dockerd fetches the context itself.
	RemoteContext bool `yaml:"remote_context"`
	// RemoteSources allows what makes dockerd fetch from the host's
	// network during a build, outside the build's network mode: ADD of a
	// URL or a Git repository, a remote context, and BuildKit builds whose
	// Dockerfile comes through the client's session (unread by dockgate);
	// and outside builds, an image import from a URL (fromSrc).
	RemoteSources bool `yaml:"remote_sources"`
	// BuildkitGRPC forwards grpc.serve, BuildKit's gRPC API (docker
	// buildx), uninspected: what a build may do there (e.g. the
	// network.host entitlement) is then up to dockerd's own
	// configuration. Without it, the gateway reads each Solve request on
	// that connection and denies what the role does not allow.
	BuildkitGRPC bool `yaml:"buildkit_grpc"`
	// Entitlements lists the BuildKit entitlements a build may ask for
	// (docker buildx build --allow): network.host, security.insecure,
	// device.
	Entitlements []string `yaml:"entitlements"`
	// CacheBackends lists the BuildKit cache backends beyond registry,
	// inline, local and gha that a build may import from or export to:
	// s3 and azblob fall back to credentials of the daemon's host.
	CacheBackends []string `yaml:"cache_backends"`
}

// BuildKit entitlements that BuildKnob.Entitlements may name
// (github.com/moby/buildkit/util/entitlements).
const (
	EntitlementNetworkHost      = "network.host"
	EntitlementSecurityInsecure = "security.insecure"
	EntitlementDevice           = "device"
)

// EntitlementNames lists the valid BuildKnob.Entitlements entries.
var EntitlementNames = []string{EntitlementNetworkHost, EntitlementSecurityInsecure, EntitlementDevice}

// CacheBackendNames lists the valid BuildKnob.CacheBackends entries: the
// cache backends dockerd's BuildKit knows that use the daemon's own
// credentials when the build names none.
var CacheBackendNames = []string{"s3", "azblob"}

// Namespaces that HostNamespaces may name.
const (
	NamespaceNetwork = "network"
	NamespacePID     = "pid"
	NamespaceIPC     = "ipc"
	NamespaceUTS     = "uts"
	NamespaceUserns  = "userns"
	NamespaceCgroup  = "cgroupns"
)

// HostNamespaceNames lists the valid HostNamespaces entries.
var HostNamespaceNames = []string{NamespaceNetwork, NamespacePID, NamespaceIPC, NamespaceUTS, NamespaceUserns, NamespaceCgroup}

// roleName is what a role may be called: it appears in field paths
// (roles.NAME.containers.privileged) and messages, so no spaces or dots.
var roleName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// KnownRole reports whether name is a built-in role or one declared under
// roles:.
func (c *Config) KnownRole(name string) bool {
	if IsBuiltinRole(name) {
		return true
	}
	_, ok := c.Roles[name]
	return ok
}

// RoleNames lists the roles a clients: entry may name: built-ins first,
// then declared roles in sorted order.
func (c *Config) RoleNames() []string {
	names := slices.Clone(BuiltinRoles)
	declared := make([]string, 0, len(c.Roles))
	for name := range c.Roles {
		if !IsBuiltinRole(name) {
			declared = append(declared, name)
		}
	}
	sort.Strings(declared)
	return append(names, declared...)
}

type addFunc func(field, msg, hint string)

func (c *Config) validateAudit(add addFunc) {
	switch p := c.Audit.Path; {
	case p == "", p == AuditStdout, p == AuditOff:
	case !path.IsAbs(p):
		add("audit.path", fmt.Sprintf("%q is not an absolute path", p), `use an absolute path, "-" for standard output or "off"`)
	case strings.HasSuffix(p, "/"):
		add("audit.path", fmt.Sprintf("%q names a directory", p), "name the file, e.g. /var/log/dockgate/audit.jsonl")
	}
	switch c.Audit.OnFull {
	case AuditBlock, AuditDrop, AuditDeny:
	default:
		add("audit.on_full", fmt.Sprintf("%q is not block, drop or deny", c.Audit.OnFull),
			"use block (wait for room, up to a second), drop (lose the record) or deny (refuse the request)")
	}
	switch c.Audit.Sink {
	case "", AuditSinkFile:
	case AuditSinkPostgres:
		if !strings.HasPrefix(c.Store.URL, "postgres://") && !strings.HasPrefix(c.Store.URL, "postgresql://") {
			add("audit.sink", "is postgres, but the store is not", "set store.url (or --store, DOCKGATE_STORE) to a postgres:// URL, or use sink: file")
		}
	default:
		add("audit.sink", fmt.Sprintf("%q is not file or postgres", c.Audit.Sink), "use file (audit.path) or postgres (the store's audit_records table)")
	}
	if q := c.Audit.Queue; q < 1 || q > MaxAuditQueue {
		add("audit.queue", fmt.Sprintf("%d is out of range", q), fmt.Sprintf("use 1 to %d records; the default is %d", MaxAuditQueue, DefaultAuditQueue))
	}
}

func (c *Config) validateRoles(add addFunc) {
	names := make([]string, 0, len(c.Roles))
	for name := range c.Roles {
		names = append(names, name)
	}
	sort.Strings(names) // stable error order
	for _, name := range names {
		field := "roles." + name
		if IsBuiltinRole(name) {
			add(field, fmt.Sprintf("%q is a built-in role and cannot be redefined", name), "pick another name, e.g. \"my-"+name+"\"")
			continue
		}
		if !roleName.MatchString(name) {
			add(field, fmt.Sprintf("%q is not a valid role name", name), "use letters, digits, '-' and '_' (at most 64)")
			continue
		}
		spec := c.Roles[name]
		validateRole(field, &spec, add)
		validateRoleLimits(field, &spec, c.Limits.MaxConnections, add)
	}
}

func validateRole(field string, r *RoleSpec, add addFunc) {
	validatePreset(field+".preset", r.Preset, add)
	if len(r.Allow) == 0 && r.Preset == "" {
		add(field+".allow", "is empty: the role allows nothing", `list operation globs, e.g. allow: ["container.*"] (see docs/OPERATIONS.md), or name a preset (docs/PRESETS.md)`)
	}
	for i, glob := range r.Allow {
		if _, err := dockerapi.CompileGlob(glob); err != nil {
			add(fmt.Sprintf("%s.allow[%d]", field, i), strings.TrimPrefix(err.Error(), dockerapi.ErrGlob.Error()+": "),
				`name operations as listed in docs/OPERATIONS.md; '*' matches any run of characters, e.g. "container.*"`)
		}
	}
	switch r.Mode {
	case "", ModeEnforce, ModeAudit:
	default:
		add(field+".mode", fmt.Sprintf("%q is not a mode", r.Mode), "use enforce (deny) or audit (forward and record would_deny)")
	}
	validateContainerKnob(field+".containers", &r.Containers, add)
	validateBuildKnob(field+".builds", &r.Builds, add)
}

func validateBuildKnob(field string, k *BuildKnob, add addFunc) {
	for i, e := range k.Entitlements {
		if !slices.Contains(EntitlementNames, e) {
			add(fmt.Sprintf("%s.entitlements[%d]", field, i), fmt.Sprintf("%q is not a BuildKit entitlement", e),
				"use "+strings.Join(EntitlementNames, ", "))
		}
	}
	for i, b := range k.CacheBackends {
		if !slices.Contains(CacheBackendNames, b) {
			add(fmt.Sprintf("%s.cache_backends[%d]", field, i), fmt.Sprintf("%q is not a cache backend that needs allowing", b),
				"use "+strings.Join(CacheBackendNames, ", ")+" (registry, inline, local and gha are always allowed)")
		}
	}
}

// validateRoleLimits checks a role's limits against the global
// connection cap (Validate passes it).
func validateRoleLimits(field string, r *RoleSpec, maxConnections int, add addFunc) {
	r.Limits.validate(field+".limits", maxConnections, add)
}

func validateContainerKnob(field string, k *ContainerKnob, add addFunc) {
	for i, c := range k.Capabilities {
		if _, ok := dockerapi.NormalizeCapability(c); !ok {
			add(fmt.Sprintf("%s.capabilities[%d]", field, i), fmt.Sprintf("%q is not a Linux capability", c),
				`use a name from capabilities(7), e.g. NET_BIND_SERVICE or CAP_NET_ADMIN, or ALL`)
		}
	}
	for i, p := range k.BindMounts {
		if msg := checkBindPath(p); msg != "" {
			add(fmt.Sprintf("%s.bind_mounts[%d]", field, i), msg, `use an absolute host path, e.g. "/srv/ci"`)
		}
	}
	for i, ns := range k.HostNamespaces {
		if !slices.Contains(HostNamespaceNames, ns) {
			add(fmt.Sprintf("%s.host_namespaces[%d]", field, i), fmt.Sprintf("%q is not a namespace", ns),
				"use "+strings.Join(HostNamespaceNames, ", "))
		}
	}
	for i, s := range k.Sysctls {
		if s == "" || strings.ContainsAny(s, " \t=") {
			add(fmt.Sprintf("%s.sysctls[%d]", field, i), fmt.Sprintf("%q is not a sysctl name", s), `e.g. "net.ipv4.ip_unprivileged_port_start", or "*" for any`)
		}
	}
	for i, rt := range k.Runtimes {
		if rt == "" {
			add(fmt.Sprintf("%s.runtimes[%d]", field, i), "is empty", "name a runtime configured in dockerd, e.g. runsc")
		}
	}
}

// checkBindPath says what is wrong with an allowed bind path, or "".
func checkBindPath(p string) string {
	switch {
	case p == "":
		return "is empty"
	case !path.IsAbs(p):
		return fmt.Sprintf("%q is not an absolute path", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Sprintf("%q has a '..' segment", p)
	case strings.ContainsAny(p, "\x00:,"):
		return fmt.Sprintf("%q has a character ('\\x00', ':' or ',') that a bind specification cannot hold", p)
	}
	return ""
}

// MatchRule returns the index in Clients of the rule MatchClient would
// use, for messages that say which entry let a client in. A rule whose
// hosts: selectors do not match this gateway's host is skipped.
func (c *Config) MatchRule(cn string, groups []string) (int, bool) {
	for i, r := range c.Clients {
		if r.AppliesOn(c.Host) && r.Matches(cn, groups) {
			return i, true
		}
	}
	return -1, false
}

// String writes the rule as it reads in the file: `cn "ci-*" -> ci`,
// followed by its hosts: selectors when it has some.
func (r ClientRule) String() string {
	if len(r.Hosts) > 0 {
		unscoped := r
		unscoped.Hosts = nil
		return unscoped.String() + " on hosts " + strings.Join(r.Hosts, ",")
	}
	switch {
	case r.CN != "":
		return fmt.Sprintf("cn %q -> %s", r.CN, r.Role)
	case r.UID != nil:
		return fmt.Sprintf("uid %d -> %s", *r.UID, r.Role)
	case r.User != "":
		return fmt.Sprintf("user %q -> %s", r.User, r.Role)
	case r.UnixGroup != "":
		return fmt.Sprintf("unix_group %q -> %s", r.UnixGroup, r.Role)
	}
	return fmt.Sprintf("group %q -> %s", r.Group, r.Role)
}

// Relaxed lists the guardrail settings the role changes from their
// secure defaults, as field paths relative to the role with their values:
// "containers.privileged", "containers.bind_mounts [/srv/ci]",
// "admin_operations". Owner isolation and the mode are not guardrails.
func (r *RoleSpec) Relaxed() []string {
	var out []string
	if r.AdminOperations {
		out = append(out, "admin_operations")
	}
	out = appendRelaxed(out, "containers.", reflect.ValueOf(r.Containers))
	return appendRelaxed(out, "builds.", reflect.ValueOf(r.Builds))
}

// appendRelaxed lists the set fields of a knob struct by their YAML
// names, so that a new knob is listed without changing this code. A
// *bool knob is secure when unset or true (redact_env), so it is listed
// when set to false.
func appendRelaxed(out []string, prefix string, v reflect.Value) []string {
	t := v.Type()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		switch f := v.Field(i); f.Kind() {
		case reflect.Pointer:
			if !f.IsNil() && f.Elem().Kind() == reflect.Bool && !f.Elem().Bool() {
				out = append(out, prefix+name+" false")
			}
		case reflect.Bool:
			if f.Bool() {
				out = append(out, prefix+name)
			}
		case reflect.Slice:
			if f.Len() > 0 {
				out = append(out, fmt.Sprintf("%s%s %v", prefix, name, f.Interface()))
			}
		}
	}
	return out
}
