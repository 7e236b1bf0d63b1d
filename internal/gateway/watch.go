package gateway

import (
	"context"
	"os"
	"time"
)

// fileStamp is what we compare to notice a changed file: atomic writes
// (rename over) change the inode's mtime and usually the size.
type fileStamp struct {
	modTime time.Time
	size    int64
	exists  bool
}

func stampFiles(paths []string) []fileStamp {
	out := make([]fileStamp, len(paths))
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			out[i] = fileStamp{modTime: fi.ModTime(), size: fi.Size(), exists: true}
		}
	}
	return out
}

func stampsEqual(a, b []fileStamp) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// watchFiles polls the watched files and reloads when one changes. Polling
// (not inotify) works the same on every filesystem and for renamed-over
// files, and a stat per file per second costs nothing.
func (g *Gateway) watchFiles(ctx context.Context) {
	if len(g.opts.WatchFiles) == 0 {
		return
	}
	last := stampFiles(g.opts.WatchFiles)
	t := time.NewTicker(g.opts.WatchPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cur := stampFiles(g.opts.WatchFiles)
		if stampsEqual(last, cur) {
			continue
		}
		last = cur
		g.log.Info("watched files changed, reloading")
		g.Reload() // logs its own failure and keeps the old state
	}
}

// watchConfig reloads whenever ConfigChanged says the config changed.
func (g *Gateway) watchConfig(ctx context.Context) {
	if g.opts.ConfigChanged == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.opts.ConfigChanged:
		}
		g.log.Info("config changed in the store, reloading")
		g.Reload() // logs its own failure and keeps the old state
	}
}
