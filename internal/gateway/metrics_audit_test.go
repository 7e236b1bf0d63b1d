package gateway

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
)

// The audit log's counters are served on the gateway's /metrics.
func TestMetricsServeAuditRecords(t *testing.T) {
	alog, err := audit.Open(filepath.Join(t.TempDir(), "audit.jsonl"), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.Audit = alog })
	client := tg.httpClient(tg.pki.client("alice", "admins"))
	resp, err := client.Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	const want = `dockgate_audit_records_total{result="written"} 1`
	var body string
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(body, want); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s\n%s", want, body)
		}
		resp, err := http.Get("http://" + tg.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
	}
	for _, result := range []string{"dropped", "failed"} {
		if line := `dockgate_audit_records_total{result="` + result + `"} 0`; !strings.Contains(body, line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
}
