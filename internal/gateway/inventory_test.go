package gateway

import (
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// mintOutside signs a client certificate with the test CA's key directly,
// as someone holding the key but not using dockgate would: it is not in the
// inventory. eku nil leaves the extended key usage out altogether.
func mintOutside(t *testing.T, p *testPKI, cn string, eku []x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := pki.GenerateKey(pki.KeyTypeECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := pki.NewSerial()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"admins"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca.Cert, key.Public(), p.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: crypto.PrivateKey(key), Leaf: cert}
}

// setStanding makes the test inventory report st for cert.
func (tg *testGateway) setStanding(cert tls.Certificate, st store.Standing) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.inventoryOverride == nil {
		tg.inventoryOverride = map[string]store.Standing{}
	}
	tg.inventoryOverride[identity.SerialHex(cert.Leaf)] = st
}

func TestVerifyClientAgainstTheInventory(t *testing.T) {
	tg := startTestGateway(t, nil)
	now := time.Now()
	valid := tg.pki.client("alice", "admins")
	noEKUOutside := mintOutside(t, tg.pki, "mallory", nil)
	tg.pki.issued.Store(identity.SerialHex(noEKUOutside.Leaf), true) // known, so only the usage can refuse it
	revoked := tg.pki.client("revoked", "admins")
	tg.revoke(revoked)
	superseded := tg.pki.client("old", "admins")
	tg.setStanding(superseded, store.Standing{State: store.StateIssued, SupersededAt: now.Add(-time.Second)})
	overlap := tg.pki.client("overlap", "admins")
	tg.setStanding(overlap, store.Standing{State: store.StateIssued, SupersededAt: now.Add(time.Hour)})
	pending := tg.pki.client("pending", "admins")
	tg.setStanding(pending, store.Standing{State: store.StatePending})
	if err := tg.refreshRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name  string
		cert  tls.Certificate
		want  string // handshake refusal reason; "" accepted
		final string // for an accepted certificate: why its requests are refused
	}{
		{"valid", valid, "", ""},
		{"superseded, within the overlap", overlap, "", ""},
		{"unknown serial (signed with the CA key outside dockgate)", mintOutside(t, tg.pki, "mallory", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}), reasonUnknownSerial, ""},
		{"no extended key usage at all", noEKUOutside, reasonWrongKeyUsage, ""},
		{"serverAuth only", tg.pki.server(), reasonWrongKeyUsage, ""},
		{"revoked", revoked, "", reasonRevoked},
		{"superseded", superseded, "", reasonSuperseded},
		{"pending", pending, reasonPending, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			final, err := tg.verifyClient(tls.ConnectionState{PeerCertificates: []*x509.Certificate{tc.cert.Leaf}})
			var he *handshakeError
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("verifyClient: %v, want accepted", err)
			case tc.want == "":
				got := ""
				if final != nil {
					got = final.reason
				}
				if got != tc.final {
					t.Errorf("final refusal %q, want %q", got, tc.final)
				}
			case !errors.As(err, &he):
				t.Fatalf("verifyClient: %v, want a refusal with reason %s", err, tc.want)
			case he.reason != tc.want:
				t.Errorf("refusal reason %q (%v), want %q", he.reason, err, tc.want)
			}
		})
	}
}

// A certificate minted with the CA key outside dockgate is refused at a
// real handshake, counted and logged with its reason.
func TestHandshakeRefusesCertificateOutsideTheInventory(t *testing.T) {
	tg := startTestGateway(t, nil)
	minted := mintOutside(t, tg.pki, "mallory", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	before := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonUnknownSerial))
	if err := tg.handshake(tg.clientTLS(minted)); !isRefusal(err) {
		t.Fatalf("handshake: %v, want a refusal", err)
	}
	if after := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonUnknownSerial)); after != before+1 {
		t.Errorf("handshake_failures{reason=unknown_serial} = %v, want %v", after, before+1)
	}
	if logs := tg.logs.String(); !strings.Contains(logs, "reason=unknown_serial") || !strings.Contains(logs, identity.SerialHex(minted.Leaf)) {
		t.Errorf("log does not name the reason and serial:\n%s", logs)
	}
	if err := tg.handshake(tg.clientTLS(tg.pki.client("alice", "admins"))); err != nil {
		t.Errorf("a certificate from the inventory: %v", err)
	}
}

// A client issued after the last poll is accepted at once: the handshake
// reads the inventory again before refusing an unknown serial.
func TestHandshakeRereadsTheInventoryForANewSerial(t *testing.T) {
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.RevocationPoll = time.Hour })
	fresh := tg.pki.client("fresh", "admins")
	if err := tg.handshake(tg.clientTLS(fresh)); err != nil {
		t.Fatalf("a client issued after the last poll: %v", err)
	}
}

// tls12Handshake completes a TLS 1.2 handshake and sends nothing. In TLS
// 1.2 the server sends its Finished after verifying the client certificate,
// so when this returns the gateway has accepted the connection.
func tls12Handshake(t *testing.T, tg *testGateway, cert tls.Certificate) *tls.Conn {
	t.Helper()
	cfg := tg.clientTLS(cert)
	cfg.MaxVersion = tls.VersionTLS12
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", tg.addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitCut fails unless the gateway closes conn within the deadline.
func waitCut(t *testing.T, conn *tls.Conn, within time.Duration) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open %s later", within)
	}
	if err == nil {
		t.Fatal("read data from a connection that should be cut")
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "closed") {
		t.Logf("connection ended with %v", err)
	}
}

// A connection past its handshake that has not sent a request yet is cut
// when its certificate is revoked, like one that has.
func TestRevocationCutsConnectionsBeforeTheirFirstRequest(t *testing.T) {
	tg := startTestGateway(t, nil)
	alice := tg.pki.client("alice", "admins")
	conn := tls12Handshake(t, tg, alice)
	before := counterValue(t, tg.metrics.revokedCuts)
	tg.revoke(alice)
	waitCut(t, conn, 5*time.Second)
	if after := counterValue(t, tg.metrics.revokedCuts); after != before+1 {
		t.Errorf("revoked_connections_closed_total = %v, want %v", after, before+1)
	}
}

// When the overlap window of a superseded certificate ends, its live
// connections are cut without any write to the inventory.
func TestSupersededConnectionsAreCutWhenTheOverlapEnds(t *testing.T) {
	tg := startTestGateway(t, nil)
	old := tg.pki.client("alice", "admins")
	conn := tls12Handshake(t, tg, old)
	tg.setStanding(old, store.Standing{State: store.StateIssued, SupersededAt: time.Now().Add(300 * time.Millisecond)})
	waitCut(t, conn, 5*time.Second)
	if status, msg := tg.pingAnswer(t, old); status != http.StatusForbidden || !strings.Contains(msg, "was replaced by a renewal at") {
		t.Errorf("superseded certificate after the overlap: %d %q, want 403 saying it was replaced", status, msg)
	}
}

// TestRefusedSerialsAreFinalOnly: requests are refused for what cannot
// change back (revoked, superseded), never for a row a poll read while it
// was pending or before it existed.
func TestRefusedSerialsAreFinalOnly(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	inv := map[string]store.Standing{
		"aa": {State: store.StateIssued},
		"bb": {State: store.StatePending},
		"cc": {State: store.StateIssued, RevokedAt: now.Add(-time.Minute)},
		"dd": {State: store.StateIssued, SupersededAt: now.Add(-time.Second)},
		"ee": {State: store.StateIssued, SupersededAt: now.Add(time.Hour)},
	}
	got := refusedSerials(inv, now)
	want := map[string]finalRefusal{"cc": {reasonRevoked, now.Add(-time.Minute)}, "dd": {reasonSuperseded, now.Add(-time.Second)}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("refusedSerials = %v, want %v", got, want)
	}
}
