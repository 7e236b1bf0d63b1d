package policy

import (
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/moby/moby/api/types/mount"
)

// BindSpec is one HostConfig.Binds entry, split as dockerd's Linux mount
// parser splits it: "source:target[:mode]" or a bare "target" (an
// anonymous volume).
type BindSpec struct {
	// Source is a host path when it starts with '/', else a volume name;
	// empty for an anonymous volume.
	Source string
	Target string
	Mode   string
}

// IsBind reports whether the spec bind-mounts a host path.
func (b BindSpec) IsBind() bool { return strings.HasPrefix(b.Source, "/") }

// ParseBind splits a Binds entry. dockerd accepts at most three
// ':'-separated parts; Source is always the first of two or three.
func ParseBind(spec string) BindSpec {
	parts := strings.SplitN(spec, ":", 3)
	switch len(parts) {
	case 1:
		return BindSpec{Target: parts[0]}
	case 2:
		return BindSpec{Source: parts[0], Target: parts[1]}
	}
	return BindSpec{Source: parts[0], Target: parts[1], Mode: parts[2]}
}

// guardBind checks one Binds entry: a host path must be under an allowed
// bind path.
func (r *role) guardBind(field, spec string) *violation {
	b := ParseBind(spec)
	if !b.IsBind() {
		return nil
	}
	return r.checkBindSource(field, b.Source)
}

// guardMounts checks HostConfig.Mounts or a service's mounts: bind mounts
// under allowed paths, volume mounts without local-driver mount options,
// and no mount type dockgate does not know.
func (r *role) guardMounts(field string, mounts []mount.Mount) *violation {
	for i := range mounts {
		m := &mounts[i]
		f := fmt.Sprintf("%s[%d]", field, i)
		switch m.Type {
		case mount.TypeBind:
			if v := r.checkBindSource(f+".Source", m.Source); v != nil {
				return v
			}
		case mount.TypeVolume:
			if v := r.checkVolumeOptions(f, m.VolumeOptions); v != nil {
				return v
			}
		case mount.TypeTmpfs, mount.TypeImage, mount.TypeNamedPipe, mount.TypeCluster:
		default:
			return &violation{field: f + ".Type", reason: fmt.Sprintf("%s.Type %s is not a mount type dockgate knows", f, quote(string(m.Type))),
				status: http.StatusBadRequest, hint: "use bind, volume, tmpfs or image"}
		}
	}
	return nil
}

func (r *role) checkVolumeOptions(field string, o *mount.VolumeOptions) *violation {
	if o == nil || o.DriverConfig == nil || !isLocalDriver(o.DriverConfig.Name) || r.containers.volumeDriverOptions {
		return nil
	}
	if opt := bindOption(o.DriverConfig.Options); opt != "" {
		f := field + ".VolumeOptions.DriverConfig.Options." + opt
		return &violation{field: f, reason: f + " is a local-driver mount option (it can mount any host path or device), which is not allowed",
			knob: knobVolumeDriverOptions}
	}
	return nil
}

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

// checkBindSource checks a bind mount's host path against the role's
// bind_mounts.
func (r *role) checkBindSource(field, source string) *violation {
	ok, why := bindAllowed(r.containers.bindPaths, source)
	if ok {
		return nil
	}
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
	for _, seg := range strings.Split(source, "/") {
		if seg == ".." {
			return false, whyDotDot
		}
	}
	p := path.Clean(source)
	for _, a := range allowed {
		if a == "/" || p == a || strings.HasPrefix(p, a) && p[len(a)] == '/' {
			return true, ""
		}
	}
	return false, whyOutside
}
