package gateway

import (
	"bufio"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store"
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
	tg.Gateway.revoked.Store(&map[string]finalRefusal{alice.Leaf.SerialNumber.Text(16): {reason: reasonRevoked, at: time.Now()}})

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

// A certificate the last poll read as pending (issued while the poll ran)
// is accepted once the inventory says issued: the handshake reads the
// inventory again before refusing it.
func TestHandshakeRereadsAPendingSerial(t *testing.T) {
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.RevocationPoll = time.Hour })
	alice := tg.pki.client("alice", "admins")
	tg.setStanding(alice, store.Standing{State: store.StatePending})
	if err := tg.refreshRevocations(context.Background()); err != nil {
		t.Fatal(err)
	}
	tg.setStanding(alice, store.Standing{State: store.StateIssued})
	if err := tg.handshake(tg.clientTLS(alice)); err != nil {
		t.Fatalf("handshake of a certificate completed since the poll: %v", err)
	}
}
