package policy

import (
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// bindSpec is one HostConfig.Binds entry, split as dockerd's Linux mount
// parser splits it: "source:target[:mode]" or a bare "target" (an
// anonymous volume).
type bindSpec struct {
	// Source is a host path when it starts with '/', else a volume name;
	// empty for an anonymous volume.
	Source string
	Target string
	Mode   string
}

// IsBind reports whether the spec bind-mounts a host path.
func (b bindSpec) IsBind() bool { return strings.HasPrefix(b.Source, "/") }

// parseBind splits a Binds entry. dockerd accepts at most three
// ':'-separated parts; Source is always the first of two or three.
func parseBind(spec string) bindSpec {
	first, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return bindSpec{Target: spec}
	}
	target, mode, _ := strings.Cut(rest, ":")
	return bindSpec{Source: first, Target: target, Mode: mode}
}

// guardBinds checks HostConfig.Binds: a host path must be under an
// allowed bind path.
func (r *role) guardBinds(prefix string, binds []string) *violation {
	for i, b := range binds {
		spec := parseBind(b)
		if !spec.IsBind() {
			continue
		}
		if ok, why := bindAllowed(r.containers.bindPaths, spec.Source); !ok {
			return bindViolation(fmt.Sprintf("%sBinds[%d]", prefix, i), spec.Source, why)
		}
	}
	return nil
}

// guardMounts checks HostConfig.Mounts or a service's mounts: bind mounts
// under allowed paths, volume mounts without local-driver mount options,
// and no mount type dockgate does not know.
func (r *role) guardMounts(field string, mounts []mount.Mount) *violation {
	for i := range mounts {
		m := &mounts[i]
		switch m.Type {
		case mount.TypeBind:
			if ok, why := bindAllowed(r.containers.bindPaths, m.Source); !ok {
				return bindViolation(fmt.Sprintf("%s[%d].Source", field, i), m.Source, why)
			}
		case mount.TypeVolume:
			if opt := r.deniedVolumeOption(m.VolumeOptions); opt != "" {
				f := fmt.Sprintf("%s[%d].VolumeOptions.DriverConfig.Options.%s", field, i, opt)
				return &violation{field: f, reason: f + localOptionReason, knob: knobVolumeDriverOptions}
			}
		case mount.TypeTmpfs, mount.TypeImage, mount.TypeNamedPipe, mount.TypeCluster:
		default:
			f := fmt.Sprintf("%s[%d].Type", field, i)
			return &violation{field: f, reason: fmt.Sprintf("%s %s is not a mount type dockgate knows", f, quote(string(m.Type))),
				status: http.StatusBadRequest, hint: "use bind, volume, tmpfs or image"}
		}
	}
	return nil
}

// deniedVolumeOption returns the local-driver mount option a volume
// mount may not set, or "".
func (r *role) deniedVolumeOption(o *mount.VolumeOptions) string {
	if o == nil || o.DriverConfig == nil || !isLocalDriver(o.DriverConfig.Name) || r.containers.volumeDriverOptions {
		return ""
	}
	return bindOption(o.DriverConfig.Options)
}

// localOptionReason ends the reason a local-driver mount option is denied.
const localOptionReason = " is a local-driver mount option (it can mount any host path or device), which is not allowed"

// isLocalDriver reports whether a volume driver name is the local driver
// ("" is the default, local). Any case, to be safe.
func isLocalDriver(name string) bool {
	return name == "" || strings.EqualFold(name, "local")
}

// bindOption returns the first local-driver option that makes a volume a
// mount of something on the host ("type", "o" or "device", any case), or
// "". With them `docker volume create -o type=none -o o=bind -o
// device=/etc` mounts the host's /etc.
func bindOption(opts map[string]string) string {
	for _, k := range sortedKeys(opts) {
		switch strings.ToLower(k) {
		case "type", "o", "device":
			return k
		}
	}
	return ""
}

// bindViolation denies a bind mount of source.
func bindViolation(field, source, why string) *violation {
	v := &violation{field: field, reason: fmt.Sprintf("%s mounts host path %s, %s", field, quote(source), why)}
	if why == whyOutside {
		v.knob, v.item = knobBindMounts, quote(path.Clean(source))
	} else {
		v.hint = "write the host path as an absolute path without '..'"
	}
	return v
}

// Why bindAllowed refuses a path.
const (
	whyRelative = "which is not an absolute path"
	whyDotDot   = "which has a '..' segment"
	whyOutside  = "which is outside the allowed bind paths"
)

// bindAllowed reports whether a host path is one of the allowed paths or
// under one. The path is cleaned first; a ".." segment is refused before
// cleaning, so that "/srv/ci/../../etc" is never read as anything under
// /srv/ci. A prefix must end at a separator: /srv/ci allows /srv/ci/x,
// not /srv/ci-other.
func bindAllowed(allowed []string, source string) (bool, string) {
	if !strings.HasPrefix(source, "/") {
		return false, whyRelative
	}
	if hasDotDot(source) {
		return false, whyDotDot
	}
	p := path.Clean(source)
	for _, a := range allowed {
		if a == "/" || p == a || strings.HasPrefix(p, a) && p[len(a)] == '/' {
			return true, ""
		}
	}
	return false, whyOutside
}

// hasDotDot reports whether a slash-separated path has a ".." segment.
func hasDotDot(p string) bool {
	for p != "" {
		var seg string
		seg, p, _ = strings.Cut(p, "/")
		if seg == ".." {
			return true
		}
	}
	return false
}

// hostPath is a bind-mount source that a role allowed by how the client
// wrote it. The kernel follows symbolic links when dockerd mounts it, so a
// link planted under an allowed path can lead anywhere: a gateway that
// sees the daemon's filesystem resolves each one and checks it again
// (decision.checkHostPaths).
type hostPath struct {
	Field  string // "HostConfig.Binds[0]", "HostConfig.Mounts[1].Source"
	Source string // absolute and clean
}

// hostPaths lists the host paths an allowed container create
// bind-mounts, for checkHostPaths; nil for any other decision, and when
// the role allows any host path. Services are left out: their tasks
// mount paths on whichever node runs them.
func (d *decision) hostPaths() []hostPath {
	r := d.role
	if d.Effect != Allow || r == nil || d.Op != dockerapi.OpContainerCreate ||
		r.unrestricted || slices.Contains(r.containers.bindPaths, "/") {
		return nil
	}
	c, ok := d.body.(*dockerapi.ContainerCreate)
	if !ok || c == nil {
		return nil
	}
	out := appendHostPaths(nil, "HostConfig.", c.HostConfig)
	return appendHostPaths(out, "", c.LegacyHostConfig)
}

func appendHostPaths(out []hostPath, prefix string, hc *container.HostConfig) []hostPath {
	if hc == nil {
		return out
	}
	for i, b := range hc.Binds {
		if spec := parseBind(b); spec.IsBind() {
			out = append(out, hostPath{Field: fmt.Sprintf("%sBinds[%d]", prefix, i), Source: path.Clean(spec.Source)})
		}
	}
	for i := range hc.Mounts {
		if m := &hc.Mounts[i]; m.Type == mount.TypeBind {
			out = append(out, hostPath{Field: fmt.Sprintf("%sMounts[%d].Source", prefix, i), Source: path.Clean(m.Source)})
		}
	}
	return out
}

// WithResolvedBindPaths returns a copy of p whose roles keep their
// allowed bind paths with the symbolic links resolved now, by resolve,
// which reads the daemon's filesystem (the policy itself does no I/O).
// checkHostPaths compares against this snapshot, so that a link a client
// plants later cannot widen what a role allows. A path resolve fails on
// is kept as written. Resolve again on every reload.
func (p *Policy) WithResolvedBindPaths(resolve func(string) (string, error)) *Policy {
	out := *p
	out.roles = make(map[string]*role, len(p.roles))
	for name, r := range p.roles {
		if len(r.containers.bindPaths) > 0 {
			c := *r
			c.containers.resolvedBindPaths = make([]string, len(r.containers.bindPaths))
			for i, a := range r.containers.bindPaths {
				if ra, err := resolve(a); err == nil {
					a = ra
				}
				c.containers.resolvedBindPaths[i] = a
			}
			r = &c
		}
		out.roles[name] = r
	}
	return &out
}

// checkHostPaths checks d.hostPaths() again after resolving their symbolic
// links with resolve, which reads the daemon's filesystem (the policy
// itself does no I/O), against the role's allowed paths as
// WithResolvedBindPaths resolved them (as written, if it was not called).
// A source that resolves outside every allowed path, or cannot be
// resolved, denies the request (in audit mode: would deny).
func (d *decision) checkHostPaths(resolve func(string) (string, error)) {
	hostPaths := d.hostPaths()
	if len(hostPaths) == 0 {
		return
	}
	allowed := d.role.containers.resolvedBindPaths
	if allowed == nil {
		allowed = d.role.containers.bindPaths
	}
	for _, hp := range hostPaths {
		resolved, err := resolve(hp.Source)
		var v *violation
		switch ok, _ := bindAllowed(allowed, resolved); {
		case err != nil:
			v = unresolvable(hp, err)
		case !ok:
			v = &violation{
				field: hp.Field,
				reason: fmt.Sprintf("%s mounts host path %s, which resolves through a symbolic link to %s, outside the allowed bind paths",
					hp.Field, quote(hp.Source), quote(resolved)),
				knob: knobBindMounts, item: quote(resolved),
			}
		default:
			continue
		}
		d.role.deny(d, v)
		d.Rule = d.role.knobPath(knobBindMounts)
		return
	}
}

// unresolvable denies a host path whose links cannot be followed.
func unresolvable(hp hostPath, err error) *violation {
	return &violation{
		field:  hp.Field,
		reason: fmt.Sprintf("%s mounts host path %s, whose symbolic links cannot be resolved (%v)", hp.Field, quote(hp.Source), err),
		hint:   "mount a path without a dangling or unreadable symbolic link",
	}
}
