package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/store"
)

// A change the store announces (InventoryChanged) is read at once: with
// polls an hour apart, a revocation still cuts the live connection.
func TestInventoryChangedCutsWithoutWaitingForThePoll(t *testing.T) {
	changed := make(chan struct{}, 1)
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) {
		o.RevocationPoll = time.Hour
		o.InventoryChanged = changed
	})
	alice := tg.pki.client("alice", "admins")
	conn := tls12Handshake(t, tg, alice)
	tg.revoke(alice)
	changed <- struct{}{}
	waitCut(t, conn, 2*time.Second)
}

// While the inventory cannot be read, the gateway enforces the last one it
// read: known certificates keep working, known revocations stay refused,
// and the outage is logged once. When it answers again, a revocation made
// meanwhile cuts at once.
func TestInventoryOutageKeepsTheLastInventory(t *testing.T) {
	var down atomic.Bool
	var reads atomic.Int64
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) {
		inv := o.Inventory
		o.Inventory = func(ctx context.Context) (map[string]store.Standing, error) {
			reads.Add(1)
			if down.Load() {
				return nil, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
			}
			return inv(ctx)
		}
	})
	alice := tg.pki.client("alice", "admins")
	carol := tg.pki.client("carol", "admins")
	tg.revoke(carol)
	waitFor(t, "carol's revocation to be read", func() bool { return (*tg.Gateway.revoked.Load())[carol.Leaf.SerialNumber.Text(16)].reason != "" })
	conn := tls12Handshake(t, tg, alice)

	down.Store(true)
	tg.revoke(alice) // made while the gateway cannot see it
	n := reads.Load()
	waitFor(t, "five polls during the outage", func() bool { return reads.Load() >= n+5 })
	if status, _ := tg.pingAnswer(t, alice); status != http.StatusOK {
		t.Errorf("alice during the outage: %d, want 200 (the last inventory read knows her as valid)", status)
	}
	if status, _ := tg.pingAnswer(t, carol); status != http.StatusForbidden {
		t.Errorf("carol during the outage: %d, want 403 (revoked before it)", status)
	}
	if c := strings.Count(tg.logs.String(), "failed to read the certificate inventory"); c != 1 {
		t.Errorf("the outage was logged %d times, want once:\n%s", c, tg.logs.String())
	}

	down.Store(false)
	waitCut(t, conn, 2*time.Second)
	// Logged after the read that cut the connection.
	waitFor(t, "the end of the outage to be logged", func() bool {
		return strings.Contains(tg.logs.String(), "the certificate inventory answers again")
	})
}
