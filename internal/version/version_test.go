package version

import (
	"runtime/debug"
	"testing"
)

func TestResolve(t *testing.T) {
	built := &debug.BuildInfo{
		Main:     debug.Module{Path: "github.com/dockgate/dockgate", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"}},
	}
	devel := &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "feed"}}}
	cases := []struct {
		name    string
		stamped Info
		bi      *debug.BuildInfo
		want    Info
	}{
		{"stamps win", Info{Version: "v2.0.0", Commit: "beef"}, built, Info{Version: "v2.0.0", Commit: "beef"}},
		{"go install: module version and VCS revision", Info{}, built, Info{Version: "v1.4.0", Commit: "0123abcd"}},
		{"go build in a checkout: devel and the revision", Info{}, devel, Info{Version: "devel", Commit: "feed"}},
		{"nothing known", Info{}, nil, Info{Version: "devel", Commit: "unknown"}},
		{"no VCS data", Info{}, &debug.BuildInfo{}, Info{Version: "devel", Commit: "unknown"}},
	}
	for _, c := range cases {
		if got := resolve(c.stamped, c.bi); got != c.want {
			t.Errorf("%s: resolve = %+v, want %+v", c.name, got, c.want)
		}
	}
}
