package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dockerfileFacts is what a build's Dockerfile makes dockerd fetch: the
// images it names (FROM, COPY --from, RUN --mount from=) and the sources
// ADD fetches over the network. They are read with BuildKit's own parser,
// the one dockerd's builders use.
type dockerfileFacts struct {
	// images are the references the build pulls or uses, with where.
	images []dockerfileRef
	// remote are the ADD sources fetched from the network (URLs, Git).
	remote []dockerfileRef
	// syntax is the frontend image a "# syntax=" directive names; BuildKit
	// pulls it and runs it as the build's frontend.
	syntax string
}

// dockerfileRef is a value a Dockerfile line names.
type dockerfileRef struct {
	value string
	where string // "Dockerfile line 3 (FROM)"
}

// analyzeDockerfile parses a Dockerfile. buildArgs is the build's
// "buildargs" query parameter, which overrides the ARGs before the first
// FROM that FROM lines may use.
func analyzeDockerfile(data []byte, buildArgs string) (*dockerfileFacts, error) {
	res, err := parser.Parse(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile cannot be parsed: %w", err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, fmt.Errorf("the Dockerfile cannot be parsed: %w", err)
	}
	env, err := metaEnv(metaArgs, buildArgs)
	if err != nil {
		return nil, err
	}
	f := &dockerfileFacts{}
	if name, _, _, ok := parser.DetectSyntax(data); ok {
		f.syntax = name
	}
	lex := shell.NewLex(res.EscapeToken)
	for i, st := range stages {
		where := "Dockerfile line " + lineOf(st.Location) + " (FROM)"
		base, _, err := lex.ProcessWord(st.BaseName, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if !isStage(stages[:i], base) && base != "scratch" {
			f.images = append(f.images, dockerfileRef{value: base, where: where})
		}
		for _, cmd := range st.Commands {
			f.command(cmd, stages[:i+1])
		}
	}
	return f, nil
}

// command records what one instruction fetches. Values with variables
// are kept as written: dockgate does not run the build's ENV and ARG
// steps, and such a value is judged as the worst it could be.
func (f *dockerfileFacts) command(cmd instructions.Command, stages []instructions.Stage) {
	loc := ""
	if l, ok := cmd.(interface{ Location() []parser.Range }); ok {
		loc = lineOf(l.Location())
	}
	where := func(what string) string { return "Dockerfile line " + loc + " (" + what + ")" }
	switch c := cmd.(type) {
	case *instructions.AddCommand:
		for _, src := range c.SourcePaths {
			if remoteSource(src) {
				f.remote = append(f.remote, dockerfileRef{value: src, where: where("ADD")})
			}
		}
	case *instructions.CopyCommand:
		if c.From != "" && !isStage(stages, c.From) && !isStageIndex(c.From, len(stages)) {
			f.images = append(f.images, dockerfileRef{value: c.From, where: where("COPY --from")})
		}
	case *instructions.RunCommand:
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" && !isStage(stages, m.From) && !isStageIndex(m.From, len(stages)) {
				f.images = append(f.images, dockerfileRef{value: m.From, where: where("RUN --mount from")})
			}
		}
	}
}

// remoteSource reports whether dockerd fetches an ADD source over the
// network: a URL or a Git repository (BuildKit's ADD takes both), or a
// value with a variable, which may expand to one.
func remoteSource(src string) bool {
	return strings.Contains(src, "://") || strings.HasPrefix(src, "git@") || strings.Contains(src, "$")
}

func isStage(stages []instructions.Stage, name string) bool {
	_, ok := instructions.HasStage(stages, name)
	return ok
}

// isStageIndex: COPY --from=0 names the first stage.
func isStageIndex(s string, n int) bool {
	i, err := strconv.Atoi(s)
	return err == nil && i >= 0 && i < n
}

func lineOf(r []parser.Range) string {
	if len(r) == 0 {
		return "?"
	}
	return strconv.Itoa(r[0].Start.Line)
}

// metaEnv is what FROM lines expand with: the ARGs before the first FROM,
// their defaults overridden by the build's buildargs.
func metaEnv(metaArgs []instructions.ArgCommand, buildArgs string) (shell.EnvGetter, error) {
	overrides := map[string]*string{}
	if buildArgs != "" {
		if err := json.Unmarshal([]byte(buildArgs), &overrides); err != nil {
			return nil, fmt.Errorf("query buildargs is not a JSON object of strings: %w", err)
		}
	}
	env := envMap{}
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			if v, ok := overrides[kv.Key]; ok && v != nil {
				env[kv.Key] = *v
			} else if kv.Value != nil {
				env[kv.Key] = *kv.Value
			}
		}
	}
	return env, nil
}

// envMap is a shell.EnvGetter over a map.
type envMap map[string]string

func (e envMap) Get(k string) (string, bool) { v, ok := e[k]; return v, ok }
func (e envMap) Keys() []string              { return sortedKeys(e) }

// buildArgSyntax is the build argument with which BuildKit takes the
// frontend image from the request rather than the Dockerfile.
const buildArgSyntax = "BUILDKIT_SYNTAX"

// buildArg returns the value the buildargs JSON gives name; ok is false
// when it sets none. (analyzeDockerfile has refused buildargs that are
// not a JSON object.)
func buildArg(buildArgs, name string) (string, bool) {
	var m map[string]*string
	if json.Unmarshal([]byte(buildArgs), &m) != nil || m[name] == nil {
		return "", false
	}
	return *m[name], *m[name] != ""
}
