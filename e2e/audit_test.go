package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startStalledAuditGateway starts a gateway whose audit log is a FIFO that
// nobody reads, with a queue of 4 records: once the pipe's buffer (shrunk
// to one page) is full, the audit writer is stuck in write(2), like on a
// stalled disk, and the queue fills at once.
func startStalledAuditGateway(t *testing.T, onFull string) *policyEnv {
	t.Helper()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "audit.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Opened read-write, so that the gateway's open for writing does not
	// wait for a reader; this end is never read while the test runs.
	pipe, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pipe.Close() }) // after the gateway has stopped
	if _, err := unix.FcntlInt(pipe.Fd(), unix.F_SETPIPE_SZ, os.Getpagesize()); err != nil {
		t.Fatal(err)
	}
	cfg := "audit:\n  path: " + fifo + "\n  on_full: " + onFull + "\n  queue: 4\n"
	cfgPath := filepath.Join(dir, "serve.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayEnv(t, "--config", cfgPath)
	// Before the gateway stops (cleanups run last first): read the pipe,
	// so that its shutdown can write what is queued and exit.
	t.Cleanup(func() { go io.Copy(io.Discard, pipe) })
	return &policyEnv{gatewayEnv: g, certs: map[string]string{"admin": g.certDir}, daemon: newDaemonAPI(g.d.Host())}
}

var auditRecordsRe = regexp.MustCompile(`(?m)^dockgate_audit_records_total\{result="(\w+)"\} (\d+)$`)

// auditRecords reads dockgate_audit_records_total from /metrics.
func (g *gatewayEnv) auditRecords(t *testing.T) map[string]int {
	t.Helper()
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range auditRecordsRe.FindAllStringSubmatch(string(body), -1) {
		got[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(got) != 3 {
		t.Fatalf("/metrics has dockgate_audit_records_total %v, want written, dropped and failed:\n%s", got, body)
	}
	return got
}

// pingUntil sends pings until done says stop, at most n; it returns the
// answers' status codes.
func pingUntil(t *testing.T, client *http.Client, addr string, n int, done func(status int) bool) []int {
	t.Helper()
	var statuses []int
	for range n {
		resp, err := client.Get("https://" + addr + "/_ping")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if done(resp.StatusCode) {
			break
		}
	}
	return statuses
}

// A stalled audit log with on_full: drop loses records, and says so on
// /metrics, while requests are still served.
func TestAuditFullQueueDropsAndCounts(t *testing.T) {
	p := startStalledAuditGateway(t, "drop")
	client := p.gatewayHTTP(t, "admin")
	before := p.auditRecords(t)
	if before["dropped"] != 0 {
		t.Fatalf("records dropped before any request: %v", before)
	}
	// One page of pipe holds about ten lines, the queue four more.
	statuses := pingUntil(t, client, p.addr, 500, func(int) bool { return p.auditRecords(t)["dropped"] > 0 })
	after := p.auditRecords(t)
	if after["dropped"] == 0 {
		t.Fatalf("after %d requests: %v, want records dropped", len(statuses), after)
	}
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("request %d answered %d, want 200 (on_full: drop serves requests)", i, s)
		}
	}
	waitLog(t, p.gatewayEnv, "audit records lost since the last warning")
	t.Logf("%d requests; audit records %v", len(statuses), after)
}

// waitLog waits until the gateway's log has a line containing s.
func waitLog(t *testing.T, g *gatewayEnv, s string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(g.logs.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the gateway's log:\n%s", s, g.logs.String())
		}
	}
}
