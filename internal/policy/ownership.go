package policy

import (
	"context"
	"errors"
	"fmt"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// checkOwnership runs the decision's ownership checks in order against
// the host. A missing or foreign object turns the decision into a denial
// (dockerd's own not-found answer); in audit mode into WouldDeny, and the
// checks go on. A check with Pin pins the forwarded path to the object's
// full ID; a container the body or query names is recorded for rewrite
// to name by its ID. An error means the host could not say who owns an
// object: the caller refuses the request (fail closed).
func (d *decision) checkOwnership(ctx context.Context, host Host, req *request) error {
	for _, c := range d.Owner.Checks {
		if c.Unique {
			free, err := nameFree(ctx, host, c, d.CN)
			if err != nil {
				return err
			}
			if !free {
				d.denyConflict(c)
				if !d.forward() {
					return nil
				}
			}
			continue
		}
		obj, err := lookupOwner(ctx, host, c, d.CN)
		switch {
		case errors.Is(err, ErrNotFound):
			d.denyOwnership(c)
		case err != nil:
			return fmt.Errorf("failed to look up %s %s: %w", c.Kind, quote(c.Ref), err)
		case !ownedBy(obj.Labels, d.CN):
			d.denyOwnership(c)
		default:
			if c.Pin {
				d.pinPath(req.Route, obj.ID)
			}
			d.checked(c, obj.ID)
			continue
		}
		if !d.forward() {
			return nil
		}
	}
	return nil
}

// nameFree reports whether the caller's create may take the name c.Ref
// (OwnerCheck.Unique): no object of the kind has it, or (but for
// networks) the caller's own.
func nameFree(ctx context.Context, host Host, c OwnerCheck, cn string) (bool, error) {
	obj, err := host.Inspect(ctx, c.Kind, c.Ref)
	switch {
	case errors.Is(err, ErrNotFound):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("failed to look up %s %s: %w", c.Kind, quote(c.Ref), err)
	case !c.holdsName(obj):
		return true, nil // found by its ID or an ID prefix: the name is free
	}
	return c.Kind != KindNetwork && ownedBy(obj.Labels, cn), nil
}

// lookupOwner inspects the object a check names and returns the object
// whose labels say who owns it, with the checked object's ID: an exec is
// owned through its container, and a missing volume a create names is
// created for the caller first.
func lookupOwner(ctx context.Context, host Host, c OwnerCheck, cn string) (Object, error) {
	obj, err := host.Inspect(ctx, c.Kind, c.Ref)
	if errors.Is(err, ErrNotFound) && c.CreateMissing && c.Kind == KindVolume {
		return host.CreateVolume(ctx, c.Ref, map[string]string{OwnerLabel: cn})
	}
	if err != nil || c.Kind != KindExec {
		return obj, err
	}
	if obj.ContainerID == "" {
		return Object{}, ErrNotFound
	}
	owner, err := host.Inspect(ctx, KindContainer, obj.ContainerID)
	if err != nil {
		return Object{}, err
	}
	owner.ID = obj.ID
	return owner, nil
}

// pinPath makes the forwarded path name the object by the full ID its
// check found, keeping the version prefix and the rest of the path.
func (d *decision) pinPath(route dockerapi.Route, id string) {
	if p, ok := pinnedPath(route, id); ok {
		d.path = p
	}
}

// applyRewrites makes what is forwarded: the owner filter and the pinned
// container references in the query, the owner label and pinned
// references in the body, which is encoded again from the value that was
// inspected (so that dockerd reads exactly what was decided on).
func (d *decision) applyRewrites(req *request, v *Verdict) error {
	queryChanged, _, err := d.rewrite(req)
	if err != nil {
		return err
	}
	if queryChanged {
		v.RawQuery = req.Query.Encode()
	}
	if d.path != "" {
		v.Path = d.path
	}
	if req.Body == nil || len(v.Body) == 0 && !d.Owner.Label {
		return nil
	}
	body, err := dockerapi.Encode(req.Body)
	if err != nil {
		return err
	}
	v.Body = body
	return nil
}
