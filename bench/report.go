package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
)

// Targets from the gateway issue (issues show 3, "Benchmark").
const (
	targetKeepAliveRatio = 0.9
	targetAddedP50       = 60 * time.Microsecond
	targetHandshakeRatio = 20.0
	targetStreamRatio    = 0.95
	targetIdleRSS        = 40 << 20
)

// report is everything measured, printed as Markdown.
type report struct {
	opts    options
	env     envDescription
	matrix  *matrixResult
	streams *streamResult
	peakRSS int64 // VmHWM of the main ECDSA gateway after load and streaming
	endRSS  int64
	idle    *idleResult
	restart *restartResult
	policy  *policyResult
	// fairShare is client B's latency with client A at each cap.
	fairShare *fairShareResult
	// fleet is the fleet part: revocation propagation, PostgreSQL vs SQLite.
	fleet    *fleetResult
	profiles []*profileResult
	elapsed  time.Duration
	// 1-minute load averages before set-up and at the end.
	loadBefore, loadAfter string
}

func (r *report) print(w io.Writer) {
	r.printHeader(w)
	r.printMatrix(w)
	if r.streams != nil {
		r.printStreams(w)
	}
	r.printMemory(w)
	if r.restart != nil {
		r.restart.print(w)
	}
	printTargetTable(w, "Targets (issue 3). \"by CPU/req\" is native's CPU per request over dockgate's: the req/s ratio an otherwise idle, CPU-bound machine would show.", r.targets())
	if r.policy != nil {
		fmt.Fprintln(w)
		r.policy.print(w)
	}
	if r.fairShare != nil {
		fmt.Fprintln(w)
		r.fairShare.print(w)
	}
	if r.fleet != nil {
		fmt.Fprintln(w)
		r.fleet.print(w)
	}
	for _, p := range r.profiles {
		p.print(w)
	}
	fmt.Fprintf(w, "\nWhole run: %s; 1-minute load average %s before it, %s at its end.\n",
		r.elapsed.Round(time.Second), r.loadBefore, r.loadAfter)
}

// printFleetOnly is the report of a -fleet run.
func (r *report) printFleetOnly(w io.Writer) {
	e := r.env
	fmt.Fprintf(w, "Machine: %d CPUs (%s), Linux %s, %s, %s. dockerd, the gateways, PostgreSQL and the load generator share these CPUs.\n\n",
		e.cpus, e.cpuModel, e.kernel, e.dockerd, e.goVersion)
	fmt.Fprintf(w, "Method: %d interleaved rounds; each cell %s after a %s warm-up (not recorded); medians over rounds.\n\n",
		r.opts.rounds, r.opts.duration, r.opts.warmup)
	r.fleet.print(w)
	fmt.Fprintf(w, "Whole run: %s; 1-minute load average %s before it, %s at its end.\n",
		r.elapsed.Round(time.Second), r.loadBefore, r.loadAfter)
}

func (r *report) printHeader(w io.Writer) {
	e := r.env
	fmt.Fprintf(w, "Machine: %d CPUs (%s), Linux %s, %s, %s. dockerd, the gateways and the load generator share these CPUs.\n\n",
		e.cpus, e.cpuModel, e.kernel, e.dockerd, e.goVersion)
	fmt.Fprintf(w, "Method: %d interleaved rounds; each cell %s after a %s warm-up (not recorded); medians over rounds. "+
		"\"x native\" is the ratio to dockerd's native TLS listener in the same round (median of the per-round ratios); "+
		"\"p50 vs native\" likewise is the per-round difference of p50s. "+
		"\"CPU/req, all\" is the CPU time of the load generator, dockerd and (for dockgate) the gateway during the window per recorded request; "+
		"unlike req/s it hardly depends on other work on the machine. \"gateway ctx sw/req\" counts the gateway's threads "+
		"put to sleep and woken (voluntary and involuntary context switches) per request.\n\n",
		r.opts.rounds, r.opts.duration, r.opts.warmup)
	fmt.Fprintf(w, "Keep-alive: one http.Transport, MaxIdleConnsPerHost = c, connections opened before the clock starts. "+
		"New conn: keep-alive off and TLS session tickets off in the client, so every request is a TCP connect plus a full handshake "+
		"with client certificate (what every docker CLI command does). Resumed conn: keep-alive off, the client keeps a session "+
		"ticket cache, so every request is a TCP connect plus a resumed handshake.\n\n")
	fmt.Fprintf(w, "Certificates by %s. GET /containers/json?all=1 returns %s (%d containers).\n\n",
		e.certsBy, formatBytes(int64(e.listSize)), r.opts.containers)
	if len(r.opts.gatewayEnv) > 0 {
		fmt.Fprintf(w, "Gateway environment: %s.\n\n", strings.Join(r.opts.gatewayEnv, " "))
	}
	for _, id := range []string{contenderNative, contenderDockgate, contenderRSA} {
		fmt.Fprintf(w, "- %s: %s\n", contenderNames[id], e.tls[id])
	}
	fmt.Fprintln(w)
}

func (r *report) printMatrix(w io.Writer) {
	fmt.Fprintln(w, "| scenario | contender | req/s | x native | p50 | p99 | p50 vs native | CPU/req, all | gateway CPU/req | gateway ctx sw/req |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	m := r.matrix
	for i, sc := range m.scenarios {
		for _, id := range sc.contenders {
			st := m.stats(i, id)
			ratio, added, cpu, switches := "-", "-", "-", "-"
			if id != contenderNative && st.hasReference {
				ratio = fmt.Sprintf("%.2fx", st.ratio)
				added = formatSignedMicros(st.addedP50)
			} else if id == contenderNative {
				ratio = "1.00"
			}
			if r.env.isGateway(id) {
				cpu = formatMicros(st.gatewayCPU)
				switches = fmt.Sprintf("%.1f", st.switches)
			}
			errs := ""
			if st.errors > 0 {
				errs = fmt.Sprintf(" (%d errors)", st.errors)
			}
			fmt.Fprintf(w, "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s |\n", sc, contenderNames[id],
				formatCount(st.rps), errs, ratio, formatMicros(st.p50), formatMicros(st.p99), added,
				formatMicros(st.totalCPU), cpu, switches)
		}
	}
	fmt.Fprintln(w)
}

func (e envDescription) isGateway(id string) bool {
	_, ok := contenderGateways[id]
	return ok
}

func (r *report) printStreams(w io.Writer) {
	fmt.Fprintf(w, "| image export (GET /images/%s/get, %s) | MB/s | x native |\n", blobImage, formatBytes(r.streams.bytes))
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, id := range streamContenders {
		mbps, ratio := r.streams.stats(id)
		fmt.Fprintf(w, "| %s | %.0f | %.2fx |\n", contenderNames[id], mbps, ratio)
	}
	fmt.Fprintln(w)
}

func (r *report) printMemory(w io.Writer) {
	fmt.Fprintf(w, "Gateway memory (ECDSA): peak RSS over the whole load run %s (VmHWM), %s at its end.",
		formatBytes(r.peakRSS), formatBytes(r.endRSS))
	if i := r.idle; i != nil {
		fmt.Fprintf(w, " A fresh gateway: RSS %s idle (%s of it private, the rest pages of the binary), "+
			"%s with %d idle mTLS connections that each made one GET /_ping (%s private, peak %s): %.1f KiB per connection.",
			formatBytes(i.baseRSS), formatBytes(i.baseAnon), formatBytes(i.idleRSS), i.conns, formatBytes(i.idleAnon),
			formatBytes(i.peakRSS), float64(i.idleRSS-i.baseRSS)/1024/float64(i.conns))
	}
	fmt.Fprint(w, "\n\n")
}

// target is one line of the verdict.
type target struct {
	name, measured string
	pass           bool
	// profile is the load under which a CPU profile explains a miss.
	profile *profileSpec
}

// profileSpec is a load to profile gateways under, and which gateways.
type profileSpec struct {
	scenario   scenario
	contenders []string
}

// The loads CPU profiles of the gateways are taken under. A miss of the
// policy target is explained by the difference between the policy-on
// and policy-off gateways under the same load.
var (
	keepAliveProfile = profileSpec{scenario{pathPing, 8, load.KeepAlive, nil}, []string{contenderDockgate}}
	handshakeProfile = profileSpec{scenario{pathPing, 8, load.NewConnection, nil}, []string{contenderDockgate}}
	policyProfile    = profileSpec{scenario{pathPing, 8, load.KeepAlive, nil}, []string{contenderPolicyOn, contenderPolicyOff}}
)

// profileSpecs are the loads and gateways to profile: those behind missed
// targets (-profile auto), or all (-profile always).
func (r *report) profileSpecs() []*profileSpec {
	all := []*profileSpec{&keepAliveProfile, &handshakeProfile}
	if r.policy != nil {
		all = append(all, &policyProfile)
	}
	switch r.opts.profile {
	case "off":
		return nil
	case "always":
		return all
	}
	var out []*profileSpec
	for _, spec := range all {
		missed := slices.ContainsFunc(r.allTargets(), func(t target) bool {
			return !t.pass && t.profile == spec
		})
		if missed {
			out = append(out, spec)
		}
	}
	return out
}

// allTargets are issue 3's and, when measured, issue 4's.
func (r *report) allTargets() []target {
	out := r.targets()
	if r.policy != nil {
		out = append(out, r.policy.targets()...)
	}
	return out
}

func (r *report) targets() []target {
	var out []target
	m := r.matrix
	for i, sc := range m.scenarios {
		st := m.stats(i, contenderDockgate)
		switch {
		case sc.mode == load.KeepAlive && sc.concurrency > 1:
			out = append(out, target{fmt.Sprintf("keep-alive >= %.1fx native TLS: %s", targetKeepAliveRatio, sc),
				fmt.Sprintf("%.2fx (by CPU/req %.2fx)", st.ratio, st.cpuRatio), st.ratio >= targetKeepAliveRatio, &keepAliveProfile})
		case sc.mode == load.NewConnection:
			native := m.stats(i, contenderNative)
			out = append(out, target{fmt.Sprintf("new conn ECDSA >= %.0fx native RSA-4096: %s", targetHandshakeRatio, sc),
				fmt.Sprintf("%.1fx (%s vs %s req/s; by CPU/req %.1fx)", st.ratio, formatCount(st.rps), formatCount(native.rps), st.cpuRatio),
				st.ratio >= targetHandshakeRatio, &handshakeProfile})
		case sc.mode == load.Resumed:
			out = append(out, m.resumedTarget(i, sc))
		}
		if sc.mode == load.KeepAlive && sc.path == pathPing && sc.concurrency <= 8 {
			out = append(out, target{fmt.Sprintf("added p50 <= %s: %s", formatMicros(targetAddedP50), sc),
				formatSignedMicros(st.addedP50), st.addedP50 <= targetAddedP50, &keepAliveProfile})
		}
	}
	if r.streams != nil {
		_, ratio := r.streams.stats(contenderDockgate)
		out = append(out, target{fmt.Sprintf("image export >= %.2fx native TLS", targetStreamRatio),
			fmt.Sprintf("%.2fx", ratio), ratio >= targetStreamRatio, nil})
	}
	if r.idle != nil {
		out = append(out, target{fmt.Sprintf("RSS < %s with %d idle connections", formatBytes(targetIdleRSS), r.idle.conns),
			formatBytes(r.idle.idleRSS), r.idle.idleRSS < targetIdleRSS, nil})
	}
	if r.restart != nil {
		out = append(out, target{"requests failed after a dockerd restart: 0",
			fmt.Sprintf("%d of %d", r.restart.failed, r.restart.sent), r.restart.failed == 0, nil})
	}
	return out
}

// resumedTarget compares dockgate's resumed connections with dockerd's
// full RSA-4096 handshakes at the same concurrency: what a client with a
// session cache gets over the classic setup (where dockerd would resume
// too; the resumed rows of the table compare that).
func (m *matrixResult) resumedTarget(i int, sc scenario) target {
	st := m.stats(i, contenderDockgate)
	name := fmt.Sprintf("with session tickets: %s ECDSA >= %.0fx native RSA-4096 %s", sc, targetHandshakeRatio, load.NewConnection)
	for j, full := range m.scenarios {
		if full.mode == load.NewConnection && full.path == sc.path && full.concurrency == sc.concurrency {
			native := m.stats(j, contenderNative)
			ratio := st.rps / native.rps
			cpuRatio := float64(native.totalCPU) / float64(st.totalCPU)
			return target{name, fmt.Sprintf("%.1fx (%s vs %s req/s; by CPU/req %.1fx)", ratio, formatCount(st.rps), formatCount(native.rps), cpuRatio),
				ratio >= targetHandshakeRatio, nil}
		}
	}
	return target{name, "no new-connection cell to compare", false, nil}
}

func printTargetTable(w io.Writer, heading string, targets []target) {
	fmt.Fprintln(w, heading)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| target | measured | |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, t := range targets {
		verdict := "MISS"
		if t.pass {
			verdict = "PASS"
		}
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.name, t.measured, verdict)
	}
}

// formatCount prints a rate with thousands separators: 28,914.
func formatCount(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	s := fmt.Sprintf("%.0f", x)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func formatMicros(d time.Duration) string {
	us := float64(d) / float64(time.Microsecond)
	if us >= 10_000 {
		return fmt.Sprintf("%.1f ms", us/1000)
	}
	return fmt.Sprintf("%.0f us", us)
}

func formatSignedMicros(d time.Duration) string {
	if d >= 0 {
		return "+" + formatMicros(d)
	}
	return "-" + formatMicros(-d)
}

// formatBytes prints sizes in binary units, as /proc reports memory.
func formatBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (p *profileResult) print(w io.Writer) {
	fmt.Fprintf(w, "\nGateway CPU profile: perf record -g on the gateway process of %s under %s, %d requests.\n",
		contenderNames[p.contender], p.scenario, p.requests)
	for _, part := range []struct {
		title string
		lines []string
	}{
		{"By binary (self)", p.dso},
		{"By function, including callees", p.cumulative},
		{"By function (self)", p.flat},
		{"dockgate's own functions, including callees", p.own},
	} {
		fmt.Fprintf(w, "\n%s:\n\n```\n%s\n```\n", part.title, strings.Join(part.lines, "\n"))
	}
}
