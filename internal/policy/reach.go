package policy

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerapi"
)

// SelfLabel marks a container as the gateway's own: `docker run --label
// dockgate.self=true ...`. No role but admin may reach a container that
// carries it with a true value, nor a volume such a container mounts.
const SelfLabel = "dockgate.self"

// IsSelfLabelled reports whether labels mark the gateway's own container
// (SelfLabel with a value strconv.ParseBool reads as true).
func IsSelfLabelled(labels map[string]string) bool {
	b, err := strconv.ParseBool(labels[SelfLabel])
	return err == nil && b
}

// ruleSelf is the Rule of a request refused by self-protection: no
// setting allows it.
const ruleSelf = "self-protection"

// defaultSockets are where dockerd's socket usually is (/var/run is a link
// to /run on current distributions, but a bind source is read as written).
var defaultSockets = []string{"/var/run/docker.sock", "/run/docker.sock"}

// socketPaths are the sockets a container must not mount: the usual
// daemon sockets, the one the gateway forwards to and the gateway's own
// unix listener (whose peer credentials a container's root would share).
func socketPaths(cfg *config.Config) []string {
	out := append([]string(nil), defaultSockets...)
	if u, err := url.Parse(cfg.Upstream.URL); err == nil && u.Scheme == "unix" && u.Path != "" {
		out = append(out, path.Clean(u.Path))
	}
	if cfg.ListenUnix != "" {
		out = append(out, path.Clean(cfg.ListenUnix))
	}
	return out
}

// reachesSocket reports whether a bind source is one of the sockets or a
// directory above one: mounting /run mounts /run/docker.sock too.
func reachesSocket(source string, sockets []string) bool {
	if !strings.HasPrefix(source, "/") {
		return false
	}
	src := path.Clean(source)
	for _, s := range sockets {
		if s == src || src == "/" || strings.HasPrefix(s, src+"/") {
			return true
		}
	}
	return false
}

// socketMount returns the bind source through which a container's host
// configuration mounts a Docker socket, or "".
func socketMount(hc *container.HostConfig, sockets []string) string {
	if hc == nil {
		return ""
	}
	for _, b := range hc.Binds {
		if spec := parseBind(b); spec.IsBind() && reachesSocket(spec.Source, sockets) {
			return spec.Source
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeBind && reachesSocket(m.Source, sockets) {
			return m.Source
		}
	}
	return ""
}

// checkReach judges the existing objects the request acts on or through
// (refs, from reachRefs), for every role but admin: none may be the
// gateway's own (its container, a volume it mounts, a container that
// mounts a Docker socket), and what the request borrows from them (an
// exec's or an archive's way into a container, VolumesFrom, a shared
// namespace, a volume's host path) must be what the role could create
// itself. Objects the daemon does not find are left for it to answer. A
// checked path is pinned to the object's ID. An error means the host
// could not say what an object is: the caller refuses the request.
func (d *decision) checkReach(ctx context.Context, host Host, req *request, refs []OwnerCheck, sockets []string) error {
	r := d.role
	if r == nil || r.unrestricted || d.Effect != Allow {
		return nil
	}
	for _, c := range refs {
		if c.Kind == KindNetwork {
			continue
		}
		t, err := lookupTarget(ctx, host, c)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to look up %s %s: %w", c.Kind, quote(c.Ref), err)
		}
		if t.Kind == KindVolume && c.Field != "path" { // mounted: judged by its host path
			t.resolved = resolvedDevice(host, t.Object)
		}
		v := r.reach(d.Op, c, t, sockets)
		if v == nil && t.Kind == KindContainer && borrows(d.Op, c) {
			if v, err = r.reachVolumes(ctx, host, c, t, sockets); err != nil {
				return err
			}
		}
		if v != nil {
			r.deny(d, v)
			if v.knob == "" {
				d.Rule = ruleSelf
			}
			return nil
		}
		if c.Pin {
			d.pinPath(req.Route, t.ID)
		} else {
			d.checked(c, t.ID)
		}
	}
	return nil
}

// reachRefs lists the objects checkReach judges: those the request names,
// for an allowed request of any role but admin.
func (d *decision) reachRefs(req *request) []OwnerCheck {
	if d.role == nil || d.role.unrestricted || d.Effect != Allow {
		return nil
	}
	var refs OwnerPlan
	addRefs(req, &refs)
	return refs.Checks
}

// reachVolumes judges the named volumes of a container a request borrows
// from, as if the request mounted them itself: a way into the container
// is a way into them.
func (r *role) reachVolumes(ctx context.Context, host Host, c OwnerCheck, ctr target, sockets []string) (*violation, error) {
	for _, name := range namedVolumes(ctr.HostConfig) {
		obj, err := host.Inspect(ctx, KindVolume, name)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("failed to look up volume %s: %w", quote(name), err)
		}
		t := target{Object: obj, Kind: KindVolume, resolved: resolvedDevice(host, obj)}
		vc := OwnerCheck{Kind: KindVolume, Ref: name, Field: fmt.Sprintf("container %s (%s)", quote(c.Ref), c.Field)}
		if v := selfProtected(vc, t, sockets); v != nil {
			return v, nil
		}
		if v := r.guardVolumeMount(vc, t); v != nil {
			return v, nil
		}
	}
	return nil, nil
}

// namedVolumes lists the named volumes a container's host configuration
// mounts (Binds "name:/path", Mounts of type volume with a source).
func namedVolumes(hc *container.HostConfig) []string {
	if hc == nil {
		return nil
	}
	var out []string
	for _, b := range hc.Binds {
		if spec := parseBind(b); spec.Source != "" && !spec.IsBind() {
			out = append(out, spec.Source)
		}
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			out = append(out, m.Source)
		}
	}
	return out
}

// target is an object a request reaches: for an exec, its container,
// with the exec's ID and privilege.
type target struct {
	Object
	Kind ObjectKind
	// execPrivileged: the exec the request names runs privileged.
	execPrivileged bool
	// resolved is a bind volume's device with its links resolved.
	resolved string
}

func lookupTarget(ctx context.Context, host Host, c OwnerCheck) (target, error) {
	obj, err := host.Inspect(ctx, c.Kind, c.Ref)
	if err != nil || c.Kind != KindExec {
		return target{Object: obj, Kind: c.Kind}, err
	}
	if obj.ContainerID == "" {
		return target{}, ErrNotFound
	}
	ctr, err := host.Inspect(ctx, KindContainer, obj.ContainerID)
	if err != nil {
		return target{}, err
	}
	ctr.ID = obj.ID
	return target{Object: ctr, Kind: KindContainer, execPrivileged: obj.Privileged}, nil
}

// resolvedDevice resolves the links of a bind volume's host path, as the
// kernel follows them when the volume is mounted; "" when it is none or
// cannot be resolved.
func resolvedDevice(host Host, obj Object) string {
	dev, ok := bindDevice(obj.Options)
	if !ok || !strings.HasPrefix(dev, "/") {
		return ""
	}
	resolved, err := host.ResolvePath(path.Clean(dev))
	if err != nil {
		return ""
	}
	return resolved
}

// reach judges one object a request reaches (pure).
func (r *role) reach(op dockerapi.Operation, c OwnerCheck, t target, sockets []string) *violation {
	if v := selfProtected(c, t, sockets); v != nil {
		return v
	}
	switch {
	case t.Kind == KindVolume && c.Field != "path":
		return r.guardVolumeMount(c, t)
	case t.Kind != KindContainer || !borrows(op, c):
		return nil
	case t.execPrivileged && !r.containers.privileged:
		return &violation{field: c.Field, reason: fmt.Sprintf("exec %s (%s) runs privileged, which is not allowed", quote(c.Ref), c.Field), knob: knobPrivileged}
	}
	v := r.guardExisting(t.HostConfig)
	if v == nil {
		return nil
	}
	v.reason = fmt.Sprintf("%s reaches container %s (%s), which the role could not create itself: %s", op, quote(c.Ref), c.Field, v.reason)
	v.field = c.Field
	return v
}

// selfProtected refuses the gateway's own objects and the containers that
// mount a Docker socket: through them a client acts as the gateway.
func selfProtected(c OwnerCheck, t target, sockets []string) *violation {
	what := ""
	switch {
	case t.Gateway && t.Kind == KindVolume:
		what = "a volume of the gateway's own container (its state)"
	case t.Gateway || t.Kind == KindContainer && IsSelfLabelled(t.Labels):
		what = "the gateway's own container"
	case t.Kind == KindContainer:
		if src := socketMount(t.HostConfig, sockets); src != "" {
			what = fmt.Sprintf("a container that mounts the Docker socket (%s)", quote(src))
		}
	}
	if what == "" {
		return nil
	}
	kind := c.Kind
	return &violation{
		field:  c.Field,
		reason: fmt.Sprintf("%s %s (%s) is %s, which only admin may reach", kind, quote(c.Ref), c.Field, what),
		hint:   "no role setting allows it: act on it as admin",
	}
}

// borrows reports whether a request takes privileges from the container
// c names: a way into it (exec, archive, attach) or, at create, its
// volumes or namespaces. Links only resolve a name.
func borrows(op dockerapi.Operation, c OwnerCheck) bool {
	if c.Field == "path" {
		return borrowOps.Has(op)
	}
	return op == dockerapi.OpContainerCreate && !strings.Contains(c.Field, "Links[")
}

// borrowOps reach inside the container their path names.
var borrowOps = func() dockerapi.OpSet {
	var s dockerapi.OpSet
	addOps(&s, []dockerapi.Operation{
		dockerapi.OpContainerExec, dockerapi.OpExecStart,
		dockerapi.OpContainerArchiveGet, dockerapi.OpContainerArchiveHead, dockerapi.OpContainerArchivePut,
		dockerapi.OpContainerAttach, dockerapi.OpContainerAttachWS,
	})
	return s
}()

// guardExisting judges an existing container's host configuration as
// guardHostConfig judges a create's, after dropping what dockerd fills in
// by itself: the default masked and read-only /proc paths (an empty list
// still means unmasked) and the cgroup namespace mode (host by default on
// cgroup v1).
func (r *role) guardExisting(hc *container.HostConfig) *violation {
	if hc == nil {
		return nil
	}
	h := *hc
	h.CgroupnsMode = ""
	if len(h.MaskedPaths) > 0 {
		h.MaskedPaths = nil
	}
	if len(h.ReadonlyPaths) > 0 {
		h.ReadonlyPaths = nil
	}
	return r.guardHostConfig("HostConfig.", &h)
}

// guardVolumeMount judges mounting an existing volume: a local-driver
// volume that binds a host path needs the path to be one the role may
// bind (as written and with its links resolved); one that mounts a device
// or a remote file system needs volume_driver_options, as creating it
// would. A tmpfs volume is harmless.
func (r *role) guardVolumeMount(c OwnerCheck, t target) *violation {
	if r.containers.volumeDriverOptions || !isLocalDriver(t.Driver) || bindOption(t.Options) == "" {
		return nil
	}
	if strings.EqualFold(optionValue(t.Options, "type"), "tmpfs") {
		return nil
	}
	dev, isBind := bindDevice(t.Options)
	if isBind {
		ok, _ := bindAllowed(r.containers.bindPaths, dev)
		if ok && t.resolved != "" {
			allowed := r.containers.resolvedBindPaths
			if allowed == nil {
				allowed = r.containers.bindPaths
			}
			ok, _ = bindAllowed(allowed, t.resolved)
		}
		if ok {
			return nil
		}
		return &violation{field: c.Field,
			reason: fmt.Sprintf("%s mounts volume %s, which binds host path %s outside the allowed bind paths", c.Field, quote(c.Ref), quote(dev)),
			knob:   knobBindMounts, item: quote(path.Clean(dev))}
	}
	return &violation{field: c.Field,
		reason: fmt.Sprintf("%s mounts volume %s, which the local driver mounts from %s, which is not allowed", c.Field, quote(c.Ref), quote(dev)),
		knob:   knobVolumeDriverOptions}
}

// bindDevice returns a local-driver volume's device and whether its
// mount options bind it (o=bind or rbind, as `mount -o` reads them).
func bindDevice(opts map[string]string) (string, bool) {
	dev := optionValue(opts, "device")
	for _, o := range strings.Split(optionValue(opts, "o"), ",") {
		if o = strings.TrimSpace(o); o == "bind" || o == "rbind" {
			return dev, true
		}
	}
	return dev, false
}

// optionValue returns a driver option's value, its key in any case.
func optionValue(opts map[string]string, key string) string {
	for _, k := range sortedKeys(opts) {
		if strings.EqualFold(k, key) {
			return opts[k]
		}
	}
	return ""
}

// memoHost answers each lookup of one evaluation once: owner isolation
// and checkReach look up the same objects.
type memoHost struct {
	Host
	seen map[memoKey]memoAnswer
}

type memoKey struct {
	kind ObjectKind
	ref  string
}

type memoAnswer struct {
	obj Object
	err error
}

func (m *memoHost) Inspect(ctx context.Context, kind ObjectKind, ref string) (Object, error) {
	k := memoKey{kind, ref}
	if a, ok := m.seen[k]; ok {
		return a.obj, a.err
	}
	obj, err := m.Host.Inspect(ctx, kind, ref)
	if err == nil || errors.Is(err, ErrNotFound) {
		m.remember(k, memoAnswer{obj, err})
	}
	return obj, err
}

func (m *memoHost) CreateVolume(ctx context.Context, name string, labels map[string]string) (Object, error) {
	obj, err := m.Host.CreateVolume(ctx, name, labels)
	if err == nil {
		m.remember(memoKey{KindVolume, name}, memoAnswer{obj: obj})
	}
	return obj, err
}

func (m *memoHost) remember(k memoKey, a memoAnswer) {
	if m.seen == nil {
		m.seen = make(map[memoKey]memoAnswer, 2)
	}
	m.seen[k] = a
}
