package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
)

// The policy comparison (issue 4, "Benchmark"): one dockgate binary, one
// state directory, three serve configs, measured in interleaved rounds
// like the main matrix. The admin role with the audit log off is as close
// to "no policy" as the gateway gets (every request is still classified
// and decided, which for admin settles on the path); the bench role is a
// restricted role whose decisions test the operation against its allow
// list, with container guardrails configured, and writes the audit log.
// The third gateway separates the two costs.

// Contender IDs of the policy comparison.
const (
	contenderPolicyOff     = "policy-off"
	contenderPolicyOn      = "policy-on"
	contenderPolicyNoAudit = "policy-on-audit-off"
)

// policyContenders are the three gateways, in the table's order.
var policyContenders = []string{contenderPolicyOff, contenderPolicyOn, contenderPolicyNoAudit}

// benchRole is the restricted role: everything the measured requests
// need (ping, container list) and a few reads beside, with guardrails
// set as a real role would have them, and no owner isolation (which
// would add a label filter to every list).
const benchRole = `roles:
  bench:
    allow: [system.*, container.list, container.inspect, image.list]
    owner_isolation: false
    containers:
      bind_mounts: ["/srv/bench"]
      capabilities: [NET_BIND_SERVICE]
clients:
  - group: ` + clientGroup + `
    role: bench
`

// policyConfigs are the policy sections of each contender's serve config
// (see gatewayConfig). No audit: section means the default, audit.jsonl
// in the state directory.
var policyConfigs = map[string]string{
	contenderPolicyOff: `audit:
  path: "off"
clients:
  - group: ` + clientGroup + `
    role: admin
`,
	contenderPolicyOn: benchRole,
	contenderPolicyNoAudit: `audit:
  path: "off"
` + benchRole,
}

// targetPolicyRatio is issue 4's target: policy-on req/s >= 0.95x policy-off.
const targetPolicyRatio = 0.95

// auditSettle bounds the wait for the audit writer to catch up with the
// last requests before its lines are counted.
const auditSettle = 2 * time.Second

// policyScenarios are the loads of the comparison: keep-alive pings at
// c=8 and c=64 and the container list at c=8, with dockerd's native TLS
// as a reference for the PERFORMANCE.md aim (>= 0.6x native with the
// full policy on).
func policyScenarios() []scenario {
	contenders := append([]string{contenderNative}, policyContenders...)
	return []scenario{
		{pathPing, 8, load.KeepAlive, contenders},
		{pathPing, 64, load.KeepAlive, contenders},
		{pathList, 8, load.KeepAlive, contenders},
	}
}

// policyResult is the comparison and what the policy-on gateway's audit
// log recorded meanwhile.
type policyResult struct {
	*matrixResult
	auditLines int   // lines the audit log gained during the rounds
	auditBytes int64 // bytes it gained
	auditSent  int   // requests the policy-on gateway got meanwhile
}

// runPolicy measures the comparison and checks that the policy-on gateway
// wrote one audit line per request.
func runPolicy(ctx context.Context, env *environment, opts options, log io.Writer) (*policyResult, error) {
	path := env.policyAuditPath()
	linesBefore, bytesBefore, err := countLines(path)
	if err != nil {
		return nil, err
	}
	m, err := runRounds(ctx, env, opts, policyScenarios(), "policy comparison, ", log)
	if err != nil {
		return nil, err
	}
	res := &policyResult{matrixResult: m, auditSent: m.sent(contenderPolicyOn)}
	deadline := time.Now().Add(auditSettle)
	for {
		lines, size, err := countLines(path)
		if err != nil {
			return nil, err
		}
		res.auditLines, res.auditBytes = lines-linesBefore, size-bytesBefore
		if res.auditLines >= res.auditSent || time.Now().After(deadline) {
			return res, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// policyAuditPath is the default audit log of the policy gateways' state
// directory; only the policy-on gateway writes it.
func (env *environment) policyAuditPath() string {
	return filepath.Join(env.states[gatewayPolicy].dir, "audit.jsonl")
}

// countLines returns the number of lines and bytes in path; a missing
// file has none.
func countLines(path string) (int, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("failed to read the audit log: %w", err)
	}
	defer f.Close()
	var lines int
	var size int64
	buf := make([]byte, 256<<10)
	r := bufio.NewReader(f)
	for {
		n, err := r.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		size += int64(n)
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return 0, 0, fmt.Errorf("failed to read the audit log: %w", err)
		}
	}
}

// targets are issue 4's: policy on against policy off, per load. A miss
// is explained by profiles of both gateways under keep-alive pings, where
// the gateway's own cost weighs most.
func (p *policyResult) targets() []target {
	var out []target
	for i, sc := range p.scenarios {
		st := p.statsVs(i, contenderPolicyOn, contenderPolicyOff)
		out = append(out, target{
			name: fmt.Sprintf("policy on >= %.2fx policy off: %s", targetPolicyRatio, sc),
			measured: fmt.Sprintf("%.3fx (by CPU/req %.3fx; gateway CPU %s per request)",
				st.ratio, st.cpuRatio, formatSignedMicros(st.addedGatewayCPU)),
			pass:    st.ratio >= targetPolicyRatio,
			profile: &policyProfile,
		})
	}
	return out
}

func (p *policyResult) print(w io.Writer) {
	fmt.Fprintln(w, "Policy on vs off (issue 4): one dockgate binary and state directory (ECDSA P-256), three serve configs. "+
		"Policy off: the admin role (every operation, no guardrails), audit: {path: off}. "+
		"Policy on: role bench (allow: [system.*, container.list, container.inspect, image.list], containers: guardrails, owner_isolation: false), "+
		"audit log on (audit.jsonl in the state directory). "+
		"\"x policy off\" and \"gateway CPU vs off\" compare with the policy-off gateway in the same round (median of per-round ratios and differences).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| scenario | gateway | req/s | x policy off | x native | p50 | p99 | CPU/req, all | gateway CPU/req | gateway CPU vs off |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for i, sc := range p.scenarios {
		for _, id := range sc.contenders {
			st := p.statsVs(i, id, contenderPolicyOff)
			native := p.stats(i, id)
			vsOff, vsNative, gwCPU, addedCPU := "-", "-", "-", "-"
			switch id {
			case contenderNative:
				vsNative = "1.00"
			case contenderPolicyOff:
				vsOff, vsNative, gwCPU = "1.00", fmt.Sprintf("%.2fx", native.ratio), formatMicros(st.gatewayCPU)
			default:
				vsOff, vsNative, gwCPU = fmt.Sprintf("%.2fx", st.ratio), fmt.Sprintf("%.2fx", native.ratio), formatMicros(st.gatewayCPU)
				addedCPU = formatSignedMicros(st.addedGatewayCPU)
			}
			errs := ""
			if st.errors > 0 {
				errs = fmt.Sprintf(" (%d errors)", st.errors)
			}
			fmt.Fprintf(w, "| %s | %s | %s%s | %s | %s | %s | %s | %s | %s | %s |\n", sc, contenderNames[id],
				formatCount(st.rps), errs, vsOff, vsNative, formatMicros(st.p50), formatMicros(st.p99),
				formatMicros(st.totalCPU), gwCPU, addedCPU)
		}
	}
	fmt.Fprintln(w)
	perLine := int64(0)
	if p.auditLines > 0 {
		perLine = p.auditBytes / int64(p.auditLines)
	}
	fmt.Fprintf(w, "Audit log of the policy-on gateway during these rounds: %s lines (%s, %d B a line) for %s requests.\n\n",
		formatCount(float64(p.auditLines)), formatBytes(p.auditBytes), perLine, formatCount(float64(p.auditSent)))
	printTargetTable(w, "Targets (issue 4). \"by CPU/req\" is policy off's CPU per request over policy on's.", p.targets())
}
