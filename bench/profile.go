package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
)

const (
	// profileDuration is how long perf samples the gateway.
	profileDuration = 5 * time.Second
	// profileFrequency is perf's sampling rate; 999 Hz avoids lockstep
	// with the kernel's 1000 Hz timer.
	profileFrequency = "999"
	// profileLines is how many report lines the summary keeps.
	profileLines = 25
)

// profileResult is perf's view of the gateway process under load.
type profileResult struct {
	scenario   scenario
	contender  string
	requests   int
	dso        []string // share per binary: the gateway vs the kernel
	cumulative []string // functions by share including callees
	flat       []string // functions by own share
	// own are dockgate's own functions by share including callees:
	// where the gateway's code spends, below net/http's frames.
	own []string
}

// profileGateway samples the gateway process of contender id with perf
// while the load of sc runs against it. It returns nil when perf is
// missing.
func profileGateway(ctx context.Context, env *environment, sc scenario, id string, log io.Writer) (*profileResult, error) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		fmt.Fprintln(log, "bench: perf not found; no CPU profile of the gateway (apt-get install linux-perf)")
		return nil, nil
	}
	fmt.Fprintf(log, "bench: profiling %s with perf for %s (%s)\n", contenderNames[id], profileDuration, sc)
	data := filepath.Join(env.work, fmt.Sprintf("gateway-%d.perf.data", time.Now().UnixNano()))
	pid := strconv.Itoa(env.gatewayFor(id).pid())
	seconds := strconv.FormatFloat(profileDuration.Seconds(), 'f', -1, 64)
	rec := exec.CommandContext(ctx, perf, "record", "-F", profileFrequency, "-g", "-o", data, "-p", pid, "--", "sleep", seconds)
	var recOut strings.Builder
	rec.Stdout, rec.Stderr = &recOut, &recOut
	if err := rec.Start(); err != nil {
		return nil, fmt.Errorf("failed to start perf: %w", err)
	}
	spec := load.Spec{Path: sc.path, Concurrency: sc.concurrency, Mode: sc.mode,
		Warmup: 200 * time.Millisecond, Duration: profileDuration - 500*time.Millisecond, MaxRequests: 10_000_000}
	res, loadErr := load.Run(ctx, env.eps[id], spec)
	if err := rec.Wait(); err != nil {
		return nil, errors.Join(loadErr, fmt.Errorf("perf record: %w\n%s", err, recOut.String()))
	}
	if loadErr != nil {
		return nil, loadErr
	}
	p := &profileResult{scenario: sc, contender: id, requests: res.Requests}
	if p.dso, err = perfReport(ctx, perf, data, "", "--no-children", "--sort", "dso"); err != nil {
		return nil, err
	}
	if p.cumulative, err = perfReport(ctx, perf, data, "", "--children", "--sort", "symbol"); err != nil {
		return nil, err
	}
	if p.flat, err = perfReport(ctx, perf, data, "", "--no-children", "--sort", "symbol"); err != nil {
		return nil, err
	}
	if p.own, err = perfReport(ctx, perf, data, ownFunctions, "--children", "--sort", "symbol"); err != nil {
		return nil, err
	}
	return p, nil
}

// ownFunctions marks dockgate's own symbols in perf's output.
const ownFunctions = "github.com/dockgate/dockgate/"

// perfReport runs perf report without call graphs and keeps the first
// profileLines data lines that contain only (all lines when empty). With
// a filter the threshold is lower, so that small shares of the filtered
// functions still show.
func perfReport(ctx context.Context, perf, data, only string, args ...string) ([]string, error) {
	limit := "0.5"
	if only != "" {
		limit = "0.1"
	}
	args = append([]string{"report", "-i", data, "--stdio", "-g", "none", "--percent-limit", limit}, args...)
	out, err := exec.CommandContext(ctx, perf, args...).Output()
	if err != nil {
		return nil, fmt.Errorf("perf report: %w", err)
	}
	var lines []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || !strings.Contains(line, only) {
			continue
		}
		// perf pads columns with spaces and ends lines with "-  -" for the
		// (unused) parent and srcline columns.
		line = strings.Join(strings.Fields(line), " ")
		lines = append(lines, strings.TrimSuffix(line, " - -"))
		if len(lines) == profileLines {
			break
		}
	}
	return lines, nil
}
