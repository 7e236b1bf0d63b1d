package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A stalled audit log with on_full: deny makes the gateway refuse requests
// (503) instead of serving them unrecorded: a docker create through it
// creates nothing on the daemon.
func TestAuditFullQueueDeniesRequests(t *testing.T) {
	p := startStalledAuditGateway(t, "deny")
	client := p.gatewayHTTP(t, "admin")
	stallAndFillAuditQueue(t, p, client)
	if status := ping(t, client, p.addr); status != http.StatusServiceUnavailable {
		t.Fatalf("request with a full audit queue answered %d, want 503", status)
	}
	marker, t0 := newMarker(), time.Now()
	_, errOut, err := p.dockerAs(p.certDir, nil, "create", "--network", "none", "--label", markerLabel+"="+marker, "--name", marker, p.d.Image(), "true")
	if err == nil {
		t.Fatal("docker create succeeded while the audit log was full")
	}
	if !strings.Contains(errOut, "audit log") {
		t.Errorf("docker create's error %q does not say the audit log is why", errOut)
	}
	p.daemon.assertNeverActed(t, marker, t0)
	waitLog(t, p.gatewayEnv, "audit records lost since the last warning")
	if got := p.auditRecords(t); got["dropped"] == 0 || got["written"] != 0 {
		t.Errorf("audit records %v, want the refusals' own records dropped and none written", got)
	}
	t.Logf("docker create said: %s", strings.TrimSpace(errOut))
}
