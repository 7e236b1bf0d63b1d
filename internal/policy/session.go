package policy

import (
	"bytes"
	"fmt"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// SessionDockerfileDir is the name under which dockerd's Dockerfile
// frontend asks a client's BuildKit session for the directory holding the
// Dockerfile (the "dir-name" of its FileSync call).
const SessionDockerfileDir = "dockerfile"

// SessionMethod is the call of BuildKit's control API that carries a
// client's session inside the gRPC connection (grpc.serve), in place of
// POST /session; JudgeSessionCall decides it.
const SessionMethod = "/moby.buildkit.v1.Control/Session"

// JudgeSessionCall decides a Control/Session call on a grpc.serve
// connection: a session there passes the gateway as opaque bytes, so the
// Dockerfiles read through it cannot be judged, and a role whose sessions
// the gateway reads (Verdict.InspectSession on session.start) is refused
// it. buildx's docker driver opens its session with POST /session.
func (p *Policy) JudgeSessionCall(id identity.Identity, roleName string) SolveVerdict {
	d := decision{Op: dockerapi.OpGRPCServe, CN: id.CN, Role: roleName}
	r := p.roles[roleName]
	switch {
	case r == nil:
		d.Reason = "no role: no clients: entry matches this identity"
	case r.inspectsSession():
		r.deny(&d, &violation{field: "Control/Session", knob: knobBuildRemoteSources,
			reason: "a BuildKit session inside the gRPC connection carries the Dockerfile past the gateway, so what it fetches cannot be checked; open the session with POST /session (buildx's docker driver does)"})
	default:
		d.Effect = Allow
		d.Rule = r.rules[dockerapi.OpGRPCServe]
	}
	return SolveVerdict{Effect: d.Effect, Rule: d.Rule, Reason: d.Reason, Field: d.Field, Fix: d.Fix, Message: d.message()}
}

// inspectsSession reports whether the gateway must read the Dockerfile a
// BuildKit session (session.start) sends the daemon: for a role that does
// not allow remote sources, and whose BuildKit calls it reads (a role
// with builds.buildkit_grpc may send build graphs that fetch anything).
func (r *role) inspectsSession() bool {
	return r.inspectsBuildKit() && !r.builds.RemoteSources
}

// JudgeSessionDockerfile decides one file that a client's BuildKit session
// sends dockerd's Dockerfile frontend in its "dockerfile" directory (path
// as the session names it): the gateway reads it when
// Verdict.InspectSession says so. Like a classic build's Dockerfile, it may
// not make dockerd fetch from the host's network (ADD of a URL or Git
// repository, a "# syntax=" frontend image) without builds.remote_sources.
// ignoreFile says the file is the Dockerfile's own ignore file
// (NAME.dockerignore), which is not refused for failing to parse. Like
// Evaluate it never fails: what it cannot read is denied.
func (p *Policy) JudgeSessionDockerfile(id identity.Identity, roleName, path string, data []byte, ignoreFile bool) SolveVerdict {
	d := decision{Op: dockerapi.OpSessionStart, CN: id.CN, Role: roleName}
	r := p.roles[roleName]
	if r == nil {
		d.Reason = "no role: no clients: entry matches this identity"
	} else if v := r.judgeSessionDockerfile(path, data, ignoreFile); v != nil {
		r.deny(&d, v)
	} else {
		d.Effect = Allow
		d.Rule = r.rules[dockerapi.OpSessionStart]
	}
	return SolveVerdict{Effect: d.Effect, Rule: d.Rule, Reason: d.Reason, Field: d.Field, Fix: d.Fix, Message: d.message()}
}

// mayFetch reports whether text names what an ADD may fetch or a syntax
// directive: a URL, a Git remote, a variable, the word syntax.
func mayFetch(data []byte) bool {
	lower := bytes.ToLower(data)
	for _, s := range []string{"://", "git@", "$", "syntax"} {
		if bytes.Contains(lower, []byte(s)) {
			return true
		}
	}
	return false
}

func (r *role) judgeSessionDockerfile(path string, data []byte, ignoreFile bool) *violation {
	if !r.inspectsSession() {
		return nil
	}
	f, err := analyzeDockerfile(data, "")
	switch {
	case err != nil && ignoreFile && !mayFetch(data):
		// An ignore file, unless it reads like a Dockerfile that fetches
		// (a symbolic link may make it the Dockerfile, for a parser that
		// takes what this one does not).
		return nil
	case err != nil:
		return &violation{field: "Dockerfile", reason: fmt.Sprintf("%s sent through the BuildKit session: %v", quote(path), err),
			hint: "fix the Dockerfile"}
	case len(f.remote) > 0:
		src := f.remote[0]
		return &violation{field: src.where, knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("%s fetches %s, which dockerd does from the host's network whatever networkmode says", src.where, quote(src.value))}
	case f.syntax != "":
		return &violation{field: "Dockerfile syntax", knob: knobBuildRemoteSources,
			reason: fmt.Sprintf("the frontend image %s (a syntax directive) is pulled and run by BuildKit, and fetches what it likes", quote(f.syntax))}
	}
	return nil
}
