package gateway

import (
	"bufio"
	"net/http"
	"testing"
	"time"
)

// A certificate revoked between a connection's handshake and its first
// request is refused at that request, even before the sweep that cuts its
// connection: the request path checks the revocations itself. The test
// stores the revocation without a sweep, the window the check closes.
func TestRequestOnARevokedConnectionIsRefused(t *testing.T) {
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.RevocationPoll = time.Hour })
	alice := tg.pki.client("alice", "admins")
	conn := tls12Handshake(t, tg, alice)
	before := tg.fake.conns.Load()
	tg.Gateway.revoked.Store(&map[string]time.Time{alice.Leaf.SerialNumber.Text(16): time.Now()})

	req, _ := http.NewRequest(http.MethodGet, "http://docker/v1.41/containers/json", nil)
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("request after revocation: %d, want 403", resp.StatusCode)
	}
	if !resp.Close {
		t.Error("the refusal does not close the connection")
	}
	if n := tg.fake.conns.Load(); n != before {
		t.Errorf("the daemon got %d new connections for a revoked certificate's request, want 0", n-before)
	}
}
