package policy

import (
	"encoding/json"
	"fmt"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// Writing a tag is image.tag's capability wherever a request does it: a
// tag is a name other clients (and other roles' images.allow) trust, so a
// role that may build, commit, import or load but not tag cannot point a
// name at an image of its own making through those endpoints either.

// guardTagWrites denies a request that names a tag to write when the role
// does not allow image.tag. image.tag itself is judged by the allow list.
func (r *role) guardTagWrites(req *request) *violation {
	if r.allow.Has(dockerapi.OpImageTag) {
		return nil
	}
	q := req.Query
	switch req.Route.Op {
	case dockerapi.OpContainerCommit:
		if repo := q.Get("repo"); repo != "" {
			return tagWrite("query repo", repo, "names the image the commit creates")
		}
	case dockerapi.OpImageImport:
		if repo := q.Get("repo"); repo != "" {
			return tagWrite("query repo", repo, "names the image the import creates")
		}
	case dockerapi.OpImageBuild:
		for _, t := range q["t"] {
			if t != "" {
				return tagWrite("query t", t, "names the image the build creates")
			}
		}
		if name := namedOutput(q.Get("outputs")); name != "" {
			return tagWrite("query outputs", name, "names the image the build exports")
		}
	case dockerapi.OpImageLoad:
		// The tarball's manifest names the tags it writes, anywhere in a
		// stream dockgate does not hold; loading is tagging.
		return &violation{field: "body", reason: "image.load writes the tags its tarball names, which needs image.tag",
			knob: knobAllow, item: dockerapi.OpImageTag.String()}
	}
	return nil
}

func tagWrite(field, value, what string) *violation {
	return &violation{field: field,
		reason: fmt.Sprintf("%s=%s %s, which writes a tag and needs image.tag", field, quote(value), what),
		knob:   knobAllow, item: dockerapi.OpImageTag.String()}
}

// namedOutput returns the image name a BuildKit build's "outputs" exports
// to, if any ([{"Type":"image","Attrs":{"name":"x"}}]); an outputs value
// dockgate cannot read counts as naming one.
func namedOutput(raw string) string {
	if raw == "" {
		return ""
	}
	var outputs []struct {
		Attrs map[string]string
	}
	if err := json.Unmarshal([]byte(raw), &outputs); err != nil {
		return raw
	}
	for _, o := range outputs {
		if name := o.Attrs["name"]; name != "" {
			return name
		}
	}
	return ""
}
