package gateway

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/fairshare"
	"github.com/dockgate/dockgate/internal/pki"
)

// startLimitedGateway runs a test gateway where clients "ci-*" have the
// role ci with the given limits, and whose daemon holds every wait on
// container "held" until the test ends.
func startLimitedGateway(t *testing.T, lim config.ClientLimits, mutate func(*config.Config)) *testGateway {
	t.Helper()
	tg := startTestGateway(t, func(c *config.Config) {
		c.Limits.MaxConnections = 100
		c.Roles = map[string]config.RoleSpec{"ci": {
			Allow:  []string{"container.*", "exec.*", "system.ping", "system.version"},
			Limits: lim,
		}}
		c.Clients = []config.ClientRule{{CN: "ci-*", Role: "ci"}}
		if mutate != nil {
			mutate(c)
		}
	})
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	tg.fake.mux.HandleFunc("POST /v1.41/containers/held/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	return tg
}

// holdWait opens a connection as cert and leaves a long-poll wait on it,
// returned once the daemon has registered the wait (its head arrived).
func (tg *testGateway) holdWait(t *testing.T, cert tls.Certificate) *tls.Conn {
	t.Helper()
	conn, resp := tg.send(t, cert, "POST", "/v1.41/containers/held/wait")
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("wait: %s %s", resp.Status, body)
	}
	return conn
}

// send opens a connection as cert and sends one request; it returns the
// connection (closed when t ends) and the answer's head.
func (tg *testGateway) send(t *testing.T, cert tls.Certificate, method, path string) (*tls.Conn, *http.Response) {
	t.Helper()
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n", method, path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return conn, resp
}

// want429 checks a refusal over a cap: 429, Docker's error shape, and a
// message that names the config key.
func want429(t *testing.T, resp *http.Response, key string) string {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status = %s, want 429", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	if !strings.Contains(m.Message, key) {
		t.Errorf("message %q does not name %s", m.Message, key)
	}
	return m.Message
}

func TestClientAtItsConnectionCapDoesNotAffectAnother(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 3}, nil)
	a, b := tg.pki.client("ci-a"), tg.pki.client("ci-b")
	var held []*tls.Conn
	for range 3 {
		held = append(held, tg.holdWait(t, a))
	}
	conn, resp := tg.send(t, a, "POST", "/v1.41/containers/held/wait")
	msg := want429(t, resp, "roles.ci.limits.connections")
	if !strings.Contains(msg, "ci-a") || !strings.Contains(msg, "3 connections") {
		t.Errorf("message %q does not name the client and its count", msg)
	}
	if !resp.Close {
		t.Error("the connection over the cap is not closed after its answer")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("the connection over the cap stays open")
	}
	if got := counterValue(t, tg.metrics.clientLimited.WithLabelValues("ci", "connections")); got != 1 {
		t.Errorf("dockgate_client_limited_total{ci,connections} = %v, want 1", got)
	}

	// Client b, same role, is untouched: its own cap, its own waits.
	for range 2 {
		tg.holdWait(t, b)
	}
	if _, resp := tg.send(t, b, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("client b over its own cap: %s, want 200 (a's connections must not count)", resp.Status)
	}

	// Closing a connection gives its slot back.
	held[0].Close()
	waitFor(t, "a's slot released", func() bool { return tg.share.Held("ci-a", fairshare.Connections) == 2 })
	tg.holdWait(t, a)
}

func TestConnectionCapOfAnUnmatchedOrBuiltinRoleNamesPerClient(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		c.Limits.PerClient = config.ClientLimits{Connections: 1}
	})
	alice := tg.pki.client("alice", "admins")
	first, err := tls.Dial("tcp", tg.addr, tg.clientTLS(alice))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := first.Handshake(); err != nil {
		t.Fatal(err)
	}
	// In TLS 1.3 the client is done before the server has verified it.
	waitFor(t, "the first connection counted", func() bool { return tg.share.Held("alice", fairshare.Connections) == 1 })
	_, resp := tg.send(t, alice, "GET", "/_ping")
	want429(t, resp, "limits.per_client.connections")
}

func TestRequestsCapCountsRequestsInFlight(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Requests: 2}, nil)
	a := tg.pki.client("ci-a")
	tg.holdWait(t, a)
	tg.holdWait(t, a)
	_, resp := tg.send(t, a, "POST", "/v1.41/containers/held/wait")
	want429(t, resp, "roles.ci.limits.requests")
	if got := counterValue(t, tg.metrics.clientLimited.WithLabelValues("ci", "requests")); got != 1 {
		t.Errorf("dockgate_client_limited_total{ci,requests} = %v, want 1", got)
	}
	if _, resp := tg.send(t, tg.pki.client("ci-b"), "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("client b: %s, want 200", resp.Status)
	}
	// A finished request gives its slot back on the same connection.
	tg.fake.mux.HandleFunc("POST /v1.41/containers/done/wait", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"StatusCode":0}`)
	})
	if _, resp := tg.send(t, tg.pki.client("ci-c"), "POST", "/v1.41/containers/done/wait"); resp.StatusCode != http.StatusOK {
		t.Fatalf("short wait: %s", resp.Status)
	}
	waitFor(t, "ci-c's request released", func() bool { return tg.share.Held("ci-c", fairshare.Requests) == 0 })
}

func TestStreamsHaveTheirOwnCapAndReleaseWhenTheyEnd(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Streams: 1, Requests: 1}, nil)
	a := tg.pki.client("ci-a")
	stream, br := tg.upgradeExec(t, a, true)
	if got := tg.share.Held("ci-a", fairshare.Requests); got != 0 {
		t.Errorf("a live stream holds %d request slots, want 0", got)
	}
	// The stream does not hold a's only request slot...
	if _, resp := tg.send(t, a, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("a request beside a's stream: %s, want 200", resp.Status)
	}
	// ...but a second stream is over the streams cap.
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(a))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"Detach":false,"Tty":false}`
	fmt.Fprintf(conn, "POST /v1.41/exec/e2/start HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	want429(t, resp, "roles.ci.limits.streams")
	if use := tg.share.ByRole(); len(use) != 1 || use[0].Streams != 1 {
		t.Errorf("in use by role = %+v, want one ci stream", use)
	}

	// The stream ends (half-close, echo, close): its slot comes back.
	io.WriteString(stream, "x")
	stream.CloseWrite()
	stream.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.ReadAll(br)
	stream.Close()
	waitFor(t, "stream slot released", func() bool { return tg.share.Held("ci-a", fairshare.Streams) == 0 })
	s2, _ := tg.upgradeExec(t, a, true)
	s2.Close()
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Rate: 0.5, Burst: 2}, nil)
	a := tg.pki.client("ci-a")
	for i := range 2 {
		if _, resp := tg.send(t, a, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d of the burst: %s", i, resp.Status)
		}
	}
	_, resp := tg.send(t, a, "GET", "/v1.41/containers/json")
	want429(t, resp, "roles.ci.limits.rate")
	if ra := resp.Header.Get("Retry-After"); ra != "2" && ra != "1" {
		t.Errorf("Retry-After = %q, want 1 or 2 (seconds to the next token at 0.5/s)", ra)
	}
	if _, resp := tg.send(t, tg.pki.client("ci-b"), "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("client b while a is rate limited: %s, want 200", resp.Status)
	}
}

func TestLimitsApplyOnReload(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 5}, nil)
	a := tg.pki.client("ci-a")
	tg.holdWait(t, a)
	tg.holdWait(t, a)
	tg.mu.Lock()
	m := *tg.material
	cfg := *m.Config
	cfg.Roles = map[string]config.RoleSpec{"ci": {Allow: []string{"container.*"}, Limits: config.ClientLimits{Connections: 2}}}
	m.Config, m.Policy = &cfg, nil // compiled afresh by the reload
	tg.material = &m
	tg.mu.Unlock()
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tg.logs.String(), "restart is needed") {
		t.Error("a change of limits asks for a restart")
	}
	_, resp := tg.send(t, a, "POST", "/v1.41/containers/held/wait")
	want429(t, resp, "roles.ci.limits.connections")
}

func TestRequestSlotIsReleasedWhenTheHandlerPanics(t *testing.T) {
	tg := startTestGatewayWithOptions(t, func(c *config.Config) {
		c.Limits.PerClient = config.ClientLimits{Requests: 1}
	}, func(o *Options) {
		o.Local = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("handler failed") })
	})
	alice := tg.pki.client("alice", "admins")
	for range 2 { // the second would be over the cap if the first kept its slot
		_, err := tg.httpClient(alice).Get(tg.url(LocalPrefix + "panic"))
		if err == nil {
			t.Fatal("a panicking handler answered")
		}
		waitFor(t, "request slot released after a panic", func() bool { return tg.share.Held("alice", fairshare.Requests) == 0 })
	}
	if _, resp := tg.send(t, alice, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("after two panics: %s, want 200", resp.Status)
	}
}

func TestLocalSocketPeerHasItsOwnConnectionCap(t *testing.T) {
	uid := uint32(os.Getuid())
	path := t.TempDir() + "/run/docker.sock"
	tg := startTestGateway(t, func(c *config.Config) {
		c.ListenUnix = path
		c.Clients = []config.ClientRule{{UID: &uid, Role: config.RoleReadOnly}}
		c.Limits.PerClient = config.ClientLimits{Connections: 1}
	})
	waitFor(t, "the socket exists", func() bool { _, err := os.Lstat(path); return err == nil })
	first, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	cn := fmt.Sprintf("uid:%d", uid)
	waitFor(t, "the first connection is counted", func() bool { return tg.share.Held(cn, fairshare.Connections) == 1 })
	status, body := getUnix(t, path, "/v1.41/containers/json")
	if status != http.StatusTooManyRequests || !strings.Contains(body, "limits.per_client.connections") || !strings.Contains(body, cn) {
		t.Errorf("second local connection: %d %s, want 429 naming %s and limits.per_client.connections", status, body, cn)
	}
	first.Close()
	waitFor(t, "the slot is released", func() bool { return tg.share.Held(cn, fairshare.Connections) == 0 })
	if status, _ := getUnix(t, path, "/v1.41/containers/json"); status != http.StatusOK {
		t.Errorf("after the first closed: %d, want 200", status)
	}
}

func TestInUseGaugesAreServedByRole(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 1}, nil)
	a := tg.pki.client("ci-a")
	tg.holdWait(t, a)
	_, resp := tg.send(t, a, "GET", "/v1.41/containers/json")
	want429(t, resp, "connections")
	r, err := http.Get("http://" + tg.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	body, _ := io.ReadAll(r.Body)
	for _, line := range []string{
		`dockgate_client_in_use{limit="connections",role="ci"} 1`,
		`dockgate_client_in_use{limit="requests",role="ci"} 1`,
		`dockgate_client_limited_total{limit="connections",role="ci"} 1`,
	} {
		if !strings.Contains(string(body), line) {
			t.Errorf("/metrics lacks %s", line)
		}
	}
	if strings.Contains(string(body), "ci-a") {
		t.Error("/metrics names a client; its labels must be roles only")
	}
}

func TestRefusedHandshakeTakesNoSlot(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 1}, nil)
	expired := tg.pki.issue(pki.LeafRequest{Kind: pki.KindClient, Name: "ci-a",
		Now: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	cur := tg.pki.client("ci-a") // the same client, its cap shared
	for range 3 {
		if err := tg.handshake(tg.clientTLS(expired)); !isRefusal(err) {
			t.Fatalf("handshake with an expired certificate: %v, want a refusal", err)
		}
	}
	// Had a refused handshake kept its slot, the cap of 1 would be full.
	waitFor(t, "slots of closed connections released", func() bool { return tg.share.Held("ci-a", fairshare.Connections) == 0 })
	if _, resp := tg.send(t, cur, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("the valid certificate after refused handshakes: %s, want 200", resp.Status)
	}
}

// A revoked certificate's connection completes its handshake to be told
// why; it holds its client's slot while open and gives it back at close.
func TestRevokedConnectionGivesBackItsSlot(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 1}, nil)
	old := tg.pki.client("ci-a")
	tg.revoke(old)
	cur := tg.pki.client("ci-a")
	if err := tg.refreshRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		conn, resp := tg.send(t, old, "GET", "/v1.41/containers/json")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a revoked certificate's request: %s, want 403", resp.Status)
		}
		conn.Close()
	}
	waitFor(t, "slots of closed connections released", func() bool { return tg.share.Held("ci-a", fairshare.Connections) == 0 })
	if _, resp := tg.send(t, cur, "GET", "/v1.41/containers/json"); resp.StatusCode != http.StatusOK {
		t.Errorf("the valid certificate after the revoked one's connections closed: %s, want 200", resp.Status)
	}
}

func TestRevokedStreamGivesBackItsSlots(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{}, nil)
	a := tg.pki.client("ci-a")
	conn, _ := tg.upgradeExec(t, a, true)
	defer conn.Close()
	if got := tg.share.Held("ci-a", fairshare.Streams); got != 1 {
		t.Fatalf("streams held = %d, want 1", got)
	}
	tg.revoke(a)
	waitFor(t, "the cut stream's slots released", func() bool {
		return tg.share.Held("ci-a", fairshare.Streams) == 0 && tg.share.Held("ci-a", fairshare.Connections) == 0
	})
	if use := tg.share.ByRole(); len(use) != 0 {
		t.Errorf("in use by role after the cut = %+v, want nothing", use)
	}
}

func TestSilentConnectionOverTheCapIsClosed(t *testing.T) {
	tg := startLimitedGateway(t, config.ClientLimits{Connections: 1}, nil)
	a := tg.pki.client("ci-a")
	tg.holdWait(t, a)
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(a))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	conn.SetReadDeadline(start.Add(overCapGrace + 5*time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Fatalf("a silent connection over the cap: read %v after %v, want it closed by the gateway", err, time.Since(start))
	}
	waitFor(t, "the global slot freed", func() bool { return tg.conns.count() == 1 })
}
