package policy

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/swarm"
	"github.com/opencontainers/go-digest"

	"github.com/dockgate/dockgate/internal/dockerapi"
)

// guardImages checks the images a request names against images.allow, and
// what a build's Dockerfile fetches.
func (r *role) guardImages(req *request) *violation {
	switch req.Route.Op {
	case dockerapi.OpContainerCreate:
		if c, ok := req.Body.(*dockerapi.ContainerCreate); ok && c.Config != nil && c.Config.Image != "" {
			return r.imageViolation("Config.Image", c.Config.Image, true)
		}
	case dockerapi.OpServiceCreate, dockerapi.OpServiceUpdate:
		if s, ok := req.Body.(*swarm.ServiceSpec); ok && s.TaskTemplate.ContainerSpec != nil && s.TaskTemplate.ContainerSpec.Image != "" {
			return r.imageViolation("TaskTemplate.ContainerSpec.Image", s.TaskTemplate.ContainerSpec.Image, true)
		}
	case dockerapi.OpImagePull:
		return r.guardPull(req.Query.Get("fromImage"), req.Query.Get("tag"))
	case dockerapi.OpImageImport:
		// fromSrc is "-" (the body) or a URL dockerd fetches itself.
		if src := req.Query.Get("fromSrc"); src != "" && src != "-" && !r.builds.RemoteSources {
			return &violation{field: "query fromSrc", knob: knobBuildRemoteSources,
				reason: fmt.Sprintf("query fromSrc=%s makes dockerd fetch the image from the host's network", quote(src))}
		}
	case dockerapi.OpImageBuild:
		return r.guardBuildSources(req)
	}
	return nil
}

// guardPull checks what POST /images/create?fromImage= pulls, read as
// dockerd's httputils.RepoTagReference reads it: "tag" is a tag or a
// digest; without either the pull brings every tag of the repository.
func (r *role) guardPull(image, tag string) *violation {
	if r.images == nil {
		return nil
	}
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return &violation{field: "query fromImage", reason: fmt.Sprintf("query fromImage %s is not an image reference: %v", quote(image), err),
			status: http.StatusBadRequest, hint: "name the image as docker pull does"}
	}
	if tag != "" {
		if dgst, derr := digest.Parse(tag); derr == nil {
			named, err = reference.WithDigest(reference.TrimNamed(named), dgst)
		} else {
			named, err = reference.WithTag(named, tag)
		}
		if err != nil {
			return &violation{field: "query tag", reason: fmt.Sprintf("query tag %s is not a tag or digest: %v", quote(tag), err),
				status: http.StatusBadRequest, hint: "name the image as docker pull does"}
		}
	}
	return r.imageViolation("query fromImage", named.String(), false)
}

// guardBuildSources checks what a build makes dockerd fetch: its
// context when remote, the images its Dockerfile names, and the URLs and
// Git repositories its ADD lines fetch, from the host's network whatever
// networkmode says.
func (r *role) guardBuildSources(req *request) *violation {
	q := dockerapi.ParseBuildQuery(req.Query)
	switch {
	case q.Remote == clientSessionRemote:
		if !r.builds.RemoteSources {
			return &violation{field: "query remote", knob: knobBuildRemoteSources,
				reason: "query remote=client-session: the Dockerfile comes through the BuildKit session, which dockgate cannot read, so what it fetches cannot be checked"}
		}
		if r.images != nil {
			return &violation{field: "query remote", hint: "build with the context in the request body (DOCKER_BUILDKIT=0), or give the role no images.allow",
				reason: "query remote=client-session: the Dockerfile comes through the BuildKit session, which dockgate cannot read, so its FROM lines cannot be checked against images.allow"}
		}
		return nil
	case q.Remote != "":
		if r.images != nil {
			return &violation{field: "query remote", hint: "send the context in the request body, or give the role no images.allow",
				reason: "query remote: dockerd fetches the context and its Dockerfile itself, so its FROM lines cannot be checked against images.allow"}
		}
		return nil
	}
	b := req.Build
	if b == nil {
		return errNoBody
	}
	if b.err != nil {
		return &violation{field: "body", reason: b.err.Error(), status: http.StatusBadRequest,
			hint: "send the build context as a plain or gzip-compressed tar with the Dockerfile in it"}
	}
	f := b.facts
	if len(f.remote) > 0 && !r.builds.RemoteSources {
		src := f.remote[0]
		return &violation{field: src.where, knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("%s fetches %s, which dockerd does from the host's network whatever networkmode says", src.where, quote(src.value))}
	}
	if q.Version == "2" {
		if cf := req.Query.Get("cachefrom"); cf != "" && cf != "[]" && cf != "null" && !r.builds.RemoteSources {
			return &violation{field: "query cachefrom", knob: knobBuildRemoteSources,
				reason: fmt.Sprintf("query cachefrom=%s makes BuildKit import cache from a registry, from the host's network", quote(cf))}
		}
		// BUILDKIT_SYNTAX, when set, wins over the directive.
		syntax := f.syntax
		if v, ok := buildArg(req.Query.Get("buildargs"), buildArgSyntax); ok {
			syntax = v
		}
		if syntax != "" && !r.builds.RemoteSources {
			return &violation{field: "Dockerfile syntax", knob: knobBuildRemoteSources,
				reason: fmt.Sprintf("the frontend image %s (a syntax directive or BUILDKIT_SYNTAX) is pulled and run by BuildKit, and fetches what it likes", quote(syntax))}
		}
		if syntax != "" {
			if v := r.imageViolation("Dockerfile syntax", syntax, true); v != nil {
				return v
			}
		}
	}
	for _, img := range f.images {
		if v := r.imageViolation(img.where, img.value, true); v != nil {
			return v
		}
	}
	return r.guardCacheFrom(req.Query.Get("cachefrom"))
}

// guardCacheFrom checks the images a build takes its cache from: a step
// found in their history is not run but taken from them, so they are
// images the build uses.
func (r *role) guardCacheFrom(raw string) *violation {
	if r.images == nil || raw == "" {
		return nil
	}
	var refs []string
	if err := json.Unmarshal([]byte(raw), &refs); err != nil {
		return &violation{field: "query cachefrom", reason: "query cachefrom is not a JSON list of image references", status: http.StatusBadRequest,
			hint: "send cachefrom as the docker CLI does"}
	}
	for _, ref := range refs {
		if v := r.imageViolation("query cachefrom", ref, true); v != nil {
			return v
		}
	}
	return nil
}
