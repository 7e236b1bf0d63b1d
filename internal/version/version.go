// Package version reports what build of dockgate is running.
//
// Release builds stamp Version and Commit with -ldflags -X; a plain
// `go build` or `go install` falls back to the module and VCS data that the
// Go toolchain records in the binary.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped at link time: -ldflags "-X github.com/dockgate/dockgate/internal/version.Version=v1.2.3".
var (
	Version = ""
	Commit  = ""
)

// Info is the version triple that `dockgate version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go"`
}

// Get returns the stamped version, or what debug.ReadBuildInfo knows.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Info{Version: Version, Commit: Commit, GoVersion: runtime.Version()}, bi)
}

// resolve fills what the link-time stamps left empty from the build info
// the toolchain recorded (bi may be nil).
func resolve(info Info, bi *debug.BuildInfo) Info {
	if bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if info.Commit == "" {
			info.Commit = buildSetting(bi, "vcs.revision")
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// String is the one-line form, e.g. "dockgate v1.2.3 (commit abc123, go1.26.8)".
func (i Info) String() string {
	return fmt.Sprintf("dockgate %s (commit %s, %s)", i.Version, i.Commit, i.GoVersion)
}
