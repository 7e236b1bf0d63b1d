package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
)

// Paths measured.
const (
	pathPing = "/_ping"
	pathList = "/containers/json?all=1"
)

// scenario is one row group of the table: a request, a concurrency, a
// connection mode, and the contenders that take part.
type scenario struct {
	path        string
	concurrency int
	mode        load.Mode
	contenders  []string
}

func (s scenario) String() string {
	name := "GET " + s.path
	if s.path == pathList {
		name = "GET /containers/json"
	}
	return fmt.Sprintf("%s %s c=%d", name, s.mode, s.concurrency)
}

// Who takes part where: the unix socket has no TLS handshake to compare,
// and the RSA gateway is there for the handshake rate only.
var (
	keepAliveContenders = []string{contenderUnix, contenderNative, contenderDockgate, contenderLocal}
	handshakeContenders = []string{contenderNative, contenderDockgate, contenderRSA}
	newConnContenders   = []string{contenderNative, contenderDockgate}
)

// scenarios is the matrix from the gateway issue: both paths, c=8 and
// c=64, keep-alive and a new TLS connection per request; plus keep-alive
// pings at c=1, where latency is not queueing, and new connections that
// resume their TLS session.
func scenarios() []scenario {
	var out []scenario
	out = append(out, scenario{pathPing, 1, load.KeepAlive, keepAliveContenders})
	for _, mode := range []load.Mode{load.KeepAlive, load.NewConnection} {
		for _, path := range []string{pathPing, pathList} {
			contenders := keepAliveContenders
			switch {
			case mode == load.NewConnection && path == pathPing:
				contenders = handshakeContenders
			case mode == load.NewConnection:
				contenders = newConnContenders
			}
			for _, c := range []int{8, 64} {
				out = append(out, scenario{path, c, mode, contenders})
			}
		}
	}
	// A client that keeps a TLS session cache (an SDK, a dashboard)
	// resumes instead; the docker CLI starts afresh on every command.
	return append(out, scenario{pathPing, 8, load.Resumed, handshakeContenders})
}

// sample is one cell of one round.
type sample struct {
	rps      float64
	p50, p99 time.Duration
	errors   int
	firstErr error
	// gatewayCPU is the gateway process's CPU time per request, for the
	// dockgate contenders.
	gatewayCPU time.Duration
	// gatewaySwitches is the gateway's thread context switches per request.
	gatewaySwitches float64
	// totalCPU is the CPU time per request of the load generator, dockerd
	// and the gateway together: unlike req/s, it hardly depends on what
	// else runs on the machine.
	totalCPU time.Duration
	// sent counts every request of the cell, warm-up included.
	sent int
}

// matrixResult holds every round's samples: [scenario][contender][round].
type matrixResult struct {
	scenarios []scenario
	samples   []map[string][]sample
}

// runMatrix runs the rounds. Within a round, scenarios run in order and
// contenders rotate, so no contender always follows the same neighbour.
func runMatrix(ctx context.Context, env *environment, opts options, log io.Writer) (*matrixResult, error) {
	return runRounds(ctx, env, opts, scenarios(), "", log)
}

// runRounds measures every cell of scs once per round; what names the
// rounds in the progress lines.
func runRounds(ctx context.Context, env *environment, opts options, scs []scenario, what string, log io.Writer) (*matrixResult, error) {
	res := &matrixResult{scenarios: scs}
	res.samples = make([]map[string][]sample, len(res.scenarios))
	for i := range res.samples {
		res.samples[i] = map[string][]sample{}
	}
	for round := range opts.rounds {
		fmt.Fprintf(log, "bench: %sround %d of %d\n", what, round+1, opts.rounds)
		for i, sc := range res.scenarios {
			for k := range sc.contenders {
				id := sc.contenders[(k+round)%len(sc.contenders)]
				s, err := env.measure(ctx, sc, id, opts)
				if err != nil {
					return nil, err
				}
				res.samples[i][id] = append(res.samples[i][id], s)
			}
		}
	}
	return res, nil
}

// measure runs one cell.
func (env *environment) measure(ctx context.Context, sc scenario, id string, opts options) (sample, error) {
	spec := load.Spec{Path: sc.path, Concurrency: sc.concurrency, Mode: sc.mode,
		Warmup: opts.warmup, Duration: opts.duration, MaxRequests: opts.maxRequests}
	pids := env.processes(id)
	var before, after []usage
	var usageErr error
	spec.OnWindow = func(open bool) {
		u, err := usageOf(pids)
		if open {
			before, usageErr = u, err
		} else if usageErr == nil {
			after, usageErr = u, err
		}
	}
	r, err := load.Run(ctx, env.eps[id], spec)
	if err == nil {
		err = usageErr
	}
	if err != nil {
		return sample{}, fmt.Errorf("%s via %s: %w", sc, contenderNames[id], err)
	}
	s := sample{rps: r.RPS(), p50: r.Percentile(50), p99: r.Percentile(99), errors: r.Errors, firstErr: r.FirstErr,
		sent: r.Requests + r.WarmupRequests}
	if sc.mode == load.KeepAlive {
		s.sent += sc.concurrency // load.Run primes each connection with one request
	}
	if r.Errors > 0 {
		env.logf("%s via %s: %d errors, first: %v", sc, contenderNames[id], r.Errors, r.FirstErr)
	}
	// CPU is read as the window opens and closes, so it covers the
	// recorded requests (in steady state: those in flight at either end
	// balance out).
	if n := r.Requests; n > 0 {
		for i := range pids {
			s.totalCPU += (after[i].cpu - before[i].cpu) / time.Duration(n)
		}
		if gw := len(pids) - 1; pids[gw].gateway {
			s.gatewayCPU = (after[gw].cpu - before[gw].cpu) / time.Duration(n)
			s.gatewaySwitches = float64(after[gw].switches-before[gw].switches) / float64(n)
		}
	}
	return s, nil
}

// process is one process whose CPU a cell accounts for.
type process struct {
	pid     int
	gateway bool
}

// processes are those that serve contender id's requests: the load
// generator (this process), dockerd, and the gateway last, if any.
func (env *environment) processes(id string) []process {
	ps := []process{{pid: os.Getpid()}, {pid: env.daemon.PID()}}
	if gw := env.gatewayFor(id); gw != nil {
		ps = append(ps, process{pid: gw.pid(), gateway: true})
	}
	return ps
}

// usage is what a process has used so far.
type usage struct {
	cpu      time.Duration
	switches int64
}

func usageOf(ps []process) ([]usage, error) {
	out := make([]usage, len(ps))
	for i, p := range ps {
		cpu, err := cpuTime(p.pid)
		if err != nil {
			return nil, err
		}
		switches, err := contextSwitches(p.pid)
		if err != nil {
			return nil, err
		}
		out[i] = usage{cpu, switches}
	}
	return out, nil
}

// gatewayFor is the gateway process behind contender id, nil for the
// daemon's own listeners.
func (env *environment) gatewayFor(id string) *gatewayProc {
	if name, ok := contenderGateways[id]; ok {
		return env.gateways[name]
	}
	return nil
}

// cellStats are the medians of one cell over the rounds.
type cellStats struct {
	rps, ratio float64 // ratio: x the reference (native TLS) in the same round
	// cpuRatio is the reference's CPU per request over this contender's,
	// in the same round: the ratio req/s would have on an otherwise idle
	// CPU-bound machine.
	cpuRatio     float64
	p50, p99     time.Duration
	addedP50     time.Duration // p50 minus the reference's p50 in the same round
	gatewayCPU   time.Duration
	totalCPU     time.Duration
	switches     float64 // gateway context switches per request
	errors       int
	hasReference bool
	// addedGatewayCPU is the gateway CPU per request minus the
	// reference's in the same round (when both are gateways).
	addedGatewayCPU time.Duration
}

// stats summarises scenario i, contender id, against native TLS.
func (m *matrixResult) stats(i int, id string) cellStats {
	return m.statsVs(i, id, contenderNative)
}

// statsVs summarises scenario i, contender id, with ratios and
// differences taken against contender ref in the same round.
func (m *matrixResult) statsVs(i int, id, ref string) cellStats {
	samples := m.samples[i][id]
	refs := m.samples[i][ref]
	var rps, ratios, cpuRatios, switches []float64
	var p50s, p99s, added, addedCPU, cpu, total []time.Duration
	st := cellStats{hasReference: len(refs) == len(samples)}
	for r, s := range samples {
		rps = append(rps, s.rps)
		p50s, p99s = append(p50s, s.p50), append(p99s, s.p99)
		cpu = append(cpu, s.gatewayCPU)
		total = append(total, s.totalCPU)
		switches = append(switches, s.gatewaySwitches)
		st.errors += s.errors
		if st.hasReference && refs[r].rps > 0 {
			ratios = append(ratios, s.rps/refs[r].rps)
			if s.totalCPU > 0 {
				cpuRatios = append(cpuRatios, float64(refs[r].totalCPU)/float64(s.totalCPU))
			}
			added = append(added, s.p50-refs[r].p50)
			addedCPU = append(addedCPU, s.gatewayCPU-refs[r].gatewayCPU)
		}
	}
	st.rps = load.Median(rps)
	st.p50, st.p99 = load.MedianDuration(p50s), load.MedianDuration(p99s)
	st.gatewayCPU = load.MedianDuration(cpu)
	st.totalCPU = load.MedianDuration(total)
	st.switches = load.Median(switches)
	if len(ratios) > 0 {
		st.ratio = load.Median(ratios)
		st.cpuRatio = load.Median(cpuRatios)
		st.addedP50 = load.MedianDuration(added)
		st.addedGatewayCPU = load.MedianDuration(addedCPU)
	}
	return st
}

// sent counts the requests contender id got over every cell and round.
func (m *matrixResult) sent(id string) int {
	n := 0
	for i := range m.scenarios {
		for _, s := range m.samples[i][id] {
			n += s.sent
		}
	}
	return n
}
