package policy

import (
	"fmt"
	"path"
	"strings"

	"github.com/distribution/reference"

	"github.com/dockgate/dockgate/internal/config"
)

// knobImages is the image allow list of a role.
const knobImages = "images.allow"

// imageRules is a role's images.allow compiled: nil allows any image.
type imageRules struct {
	entries []imagePattern
	raw     []string // as configured, for messages
}

// imagePattern is one images.allow entry, in normalized form.
type imagePattern struct {
	// name is a glob on the normalized repository name
	// ("docker.io/library/busybox", "registry.example.com/team/*").
	name string
	// tag, when set, is a glob the reference's tag must match.
	tag string
	// digest, when set, is the only content allowed (a digest pin).
	digest string
}

// compileImagePatterns reads images.allow entries. A plain reference is
// normalized as dockerd normalizes the references a request names
// ("busybox" is docker.io/library/busybox); a glob is read as written and
// must name its registry, since a glob cannot be normalized.
func compileImagePatterns(field string, entries []string) (*imageRules, []error) {
	if len(entries) == 0 {
		return nil, nil
	}
	rules := &imageRules{raw: entries}
	var errs []error
	for i, e := range entries {
		p, err := compileImagePattern(e)
		if err != nil {
			errs = append(errs, &config.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Msg: err.Error()})
			continue
		}
		rules.entries = append(rules.entries, p)
	}
	return rules, errs
}

func compileImagePattern(e string) (imagePattern, error) {
	if !strings.ContainsAny(e, "*?[") {
		ref, err := reference.ParseNormalizedNamed(e)
		if err != nil {
			return imagePattern{}, fmt.Errorf("%q is not an image reference: %v", e, err)
		}
		p := imagePattern{name: ref.Name()}
		if t, ok := ref.(reference.Tagged); ok {
			p.tag = t.Tag()
		}
		if d, ok := ref.(reference.Digested); ok {
			p.digest = d.Digest().String()
		}
		return p, nil
	}
	if strings.Contains(e, "@") {
		return imagePattern{}, fmt.Errorf("%q: a digest pin names one image and takes no glob", e)
	}
	name, tag := e, ""
	if i := strings.LastIndexByte(e, ':'); i > strings.LastIndexByte(e, '/') {
		name, tag = e[:i], e[i+1:]
	}
	domain, _, _ := strings.Cut(name, "/")
	if !strings.Contains(name, "/") || !(strings.ContainsAny(domain, ".:") || domain == "localhost") {
		normalized := "docker.io/library/" + e
		if strings.Contains(name, "/") {
			normalized = "docker.io/" + e
		}
		return imagePattern{}, fmt.Errorf("%q: a glob must start with the registry, as references are normalized (%s)", e, normalized)
	}
	for _, g := range []string{name, tag} {
		if _, err := path.Match(g, ""); err != nil {
			return imagePattern{}, fmt.Errorf("%q is not a valid glob: %v", e, err)
		}
	}
	return imagePattern{name: name, tag: tag}, nil
}

// imageViolation checks a reference a request names against the role's
// images.allow; field says where ("Config.Image", "query fromImage",
// "Dockerfile line 3 (FROM)").
//
// A reference that may be an image ID (checkID) is denied: it names a
// local image whatever its name. A pull passes a normalized reference,
// which is never an ID; one without tag or digest pulls every tag.
func (r *role) imageViolation(field, ref string, checkID bool) *violation {
	if r.images == nil {
		return nil
	}
	deny := func(why string) *violation {
		return &violation{field: field, reason: fmt.Sprintf("%s %s %s", field, quote(ref), why), knob: knobImages, item: quote(ref)}
	}
	if checkID && looksLikeImageID(ref) {
		return deny("may be an image ID or ID prefix, which names a local image whatever its name; images.allow admits images by name")
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return &violation{field: field, reason: fmt.Sprintf("%s %s is not an image reference: %v", field, quote(ref), err), status: 400,
			hint: "name the image as docker pull does"}
	}
	allTags := !checkID && reference.IsNameOnly(named)
	if !allTags {
		named = reference.TagNameOnly(named) // dockerd's default tag, latest
	}
	if r.images.allows(named, allTags) {
		return nil
	}
	return deny(fmt.Sprintf("(%s) is not in images.allow", reference.FamiliarString(named)))
}

// allows reports whether an entry matches the normalized reference.
func (ir *imageRules) allows(named reference.Named, allTags bool) bool {
	tag, digest := "", ""
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	if d, ok := named.(reference.Digested); ok {
		digest = d.Digest().String()
	}
	for _, p := range ir.entries {
		if ok, _ := path.Match(p.name, named.Name()); !ok {
			continue
		}
		switch {
		case p.digest != "":
			if digest == p.digest {
				return true
			}
		case p.tag != "":
			// A digest reference has no tag to match; a pull of every tag
			// brings tags the entry does not name.
			if ok, _ := path.Match(p.tag, tag); ok && digest == "" && !allTags {
				return true
			}
		default:
			return true
		}
	}
	return false
}

// looksLikeImageID reports whether dockerd may read ref as an image ID
// rather than a name: "sha256:<hex>", or only hex digits, which dockerd
// tries as an ID prefix when no image has that name. Such a reference
// names whatever local image has that ID, so the allow list cannot judge
// it by name.
func looksLikeImageID(ref string) bool {
	s := strings.TrimPrefix(ref, "sha256:")
	if s == "" {
		return ref != ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
