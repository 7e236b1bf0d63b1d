package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
)

// auditRecord is one audit line as JSON.
type auditRecord struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	CN        string    `json:"cn"`
	Serial    string    `json:"serial"`
	Groups    []string  `json:"groups"`
	Remote    string    `json:"remote"`
	Method    string    `json:"method"`
	RawPath   string    `json:"raw_path"`
	Path      string    `json:"path"`
	Operation string    `json:"operation"`
	Decision  string    `json:"decision"`
	Role      string    `json:"role"`
	Rule      string    `json:"rule"`
	Reason    string    `json:"reason"`
	Status    int       `json:"status"`
	BytesIn   int64     `json:"bytes_in"`
	BytesOut  int64     `json:"bytes_out"`
	Duration  float64   `json:"duration_ms"`
	Target    string    `json:"target"`
}

// Every field of the audit record is filled from the request the gateway
// served: who (CN, serial, groups, address), what (raw and canonical
// path, operation, target), the decision and what came of it.
func TestAuditRecordFields(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	alog, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.Audit = alog })
	const answer = `{"Warnings":[]}`
	tg.fake.mux.HandleFunc("POST /v1.41/containers/{id}/update", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, answer)
	})
	const body = `{"CpuShares":512}`
	cert := tg.pki.client("alice", "devs", "admins")
	client := tg.httpClient(cert)
	before := time.Now()
	resp, err := client.Post(tg.url("/v1.41/containers/web/update"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	denied, err := tg.httpClient(tg.pki.client("bob", "devs")).Get(tg.url("/v1.41/info"))
	if err != nil {
		t.Fatal(err)
	}
	denied.Body.Close()
	tg.stop()
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 {
		t.Fatalf("audit log has %d lines, want 2:\n%s", len(lines), data)
	}
	var got, refused auditRecord
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &refused); err != nil {
		t.Fatal(err)
	}
	want := auditRecord{
		CN: "alice", Serial: cert.Leaf.SerialNumber.Text(16), Groups: []string{"devs", "admins"},
		Method: "POST", RawPath: "/v1.41/containers/web/update", Path: "/containers/web/update",
		Operation: "container.update", Decision: "allow", Role: "admin", Rule: "built-in role admin",
		Status: http.StatusOK, BytesIn: int64(len(body)), BytesOut: int64(len(answer)), Target: "web",
	}
	if got.CN != want.CN || got.Serial != want.Serial || !slices.Equal(got.Groups, want.Groups) ||
		got.Method != want.Method || got.RawPath != want.RawPath || got.Path != want.Path ||
		got.Operation != want.Operation || got.Decision != want.Decision || got.Role != want.Role ||
		got.Rule != want.Rule || got.Status != want.Status || got.BytesIn != want.BytesIn || got.BytesOut != want.BytesOut ||
		got.Target != want.Target {
		t.Errorf("audit record\n got %+v\nwant %+v", got, want)
	}
	if got.RequestID == "" || got.RequestID == refused.RequestID {
		t.Errorf("request IDs %q and %q: want two different ones", got.RequestID, refused.RequestID)
	}
	if !strings.HasPrefix(got.Remote, "127.0.0.1:") || got.Remote == tg.addr {
		t.Errorf("remote = %q, want the client's address", got.Remote)
	}
	if got.Time.Before(before.Add(-time.Second)) || got.Time.After(time.Now()) || got.Duration <= 0 {
		t.Errorf("time %s, duration %v ms: want the request's", got.Time, got.Duration)
	}
	if refused.CN != "bob" || refused.Decision != "deny" || refused.Status != http.StatusForbidden ||
		refused.Role != "" || !strings.Contains(refused.Reason, "clients") || refused.Operation != "system.info" {
		t.Errorf("refused request's record: %+v", refused)
	}
}
