package e2e

import (
	"fmt"
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
// nobody reads and that is full already: the audit writer is stuck in its
// first write(2), like on a stalled disk, and its queue of 4 records
// fills with the next requests.
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
	fillPipe(t, pipe)
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

// fillPipe fills the pipe's buffer, so that the next write blocks.
func fillPipe(t *testing.T, pipe *os.File) {
	t.Helper()
	raw, err := pipe.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 4096)
	var werr error
	err = raw.Write(func(fd uintptr) bool {
		if werr = unix.SetNonblock(int(fd), true); werr != nil {
			return true
		}
		for {
			if _, werr = unix.Write(int(fd), junk); werr != nil {
				break
			}
		}
		if werr == unix.EAGAIN {
			werr = nil
		}
		return true
	})
	if err != nil || werr != nil {
		t.Fatalf("failed to fill the pipe: %v, %v", err, werr)
	}
}

var auditRecordsRe = regexp.MustCompile(`(?m)^dockgate_audit_(?:records_total\{result="(\w+)"\}|(queued)_records) (\d+)$`)

// auditRecords reads dockgate_audit_records_total (written, dropped,
// failed) and dockgate_audit_queued_records (queued) from /metrics.
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
		got[m[1]+m[2]], _ = strconv.Atoi(m[3])
	}
	if len(got) != 4 {
		t.Fatalf("/metrics has audit records %v, want written, dropped, failed and queued:\n%s", got, body)
	}
	return got
}

// waitAudit polls /metrics until the audit records satisfy ok.
func (g *gatewayEnv) waitAudit(t *testing.T, what string, ok func(map[string]int) bool) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); !ok(g.auditRecords(t)); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("audit records %v, want %s", g.auditRecords(t), what)
		}
	}
}

// ping sends GET /_ping through the gateway and returns the status.
func ping(t *testing.T, client *http.Client, addr string) int {
	t.Helper()
	resp, err := client.Get("https://" + addr + "/_ping")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// stallAndFillAuditQueue sends one request and waits until the audit
// writer has taken its record: the writer is then stuck writing it to the
// full pipe, for good. Four more requests fill the queue; each is
// answered 200 and its record queued before the next is sent.
func stallAndFillAuditQueue(t *testing.T, p *policyEnv, client *http.Client) {
	t.Helper()
	for i := range 5 {
		if status := ping(t, client, p.addr); status != http.StatusOK {
			t.Fatalf("request %d answered %d, want 200 while the queue has room (%v)", i, status, p.auditRecords(t))
		}
		p.waitAudit(t, fmt.Sprintf("%d records queued", i), func(m map[string]int) bool { return m["queued"] == i })
	}
	if got := p.auditRecords(t); got["written"] != 0 || got["dropped"] != 0 {
		t.Fatalf("audit records %v, want none written to the full pipe and none dropped yet", got)
	}
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
	stallAndFillAuditQueue(t, p, client)
	for range 3 {
		if status := ping(t, client, p.addr); status != http.StatusOK {
			t.Errorf("request with a full audit queue answered %d, want 200 (on_full: drop serves requests)", status)
		}
	}
	p.waitAudit(t, "3 dropped", func(m map[string]int) bool { return m["dropped"] == 3 })
	if got := p.auditRecords(t); got["written"] != 0 || got["queued"] != 4 || got["failed"] != 0 {
		t.Errorf("audit records %v, want 4 queued, none written", got)
	}
	waitLog(t, p.gatewayEnv, "audit records lost since the last warning")
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
