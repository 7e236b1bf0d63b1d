package gateway

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
)

func TestProxiesPingWithDockerHeaders(t *testing.T) {
	tg := startTestGateway(t, nil)
	c := tg.httpClient(tg.pki.client("alice", "admins"))
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		req, _ := http.NewRequest(method, tg.url("/_ping"), nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s /_ping: got %s", method, resp.Status)
		}
		for _, h := range []string{"Api-Version", "Ostype", "Docker-Experimental", "Builder-Version"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s /_ping: header %s lost", method, h)
			}
		}
		if method == http.MethodGet && string(body) != "OK" {
			t.Errorf("GET /_ping body = %q, want OK", body)
		}
	}
}

func TestForwardingHeadersAreNotPassed(t *testing.T) {
	tg := startTestGateway(t, nil)
	seen := make(chan http.Header, 1)
	tg.fake.mux.HandleFunc("GET /v1.41/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		w.Header().Set("Connection", "X-Daemon-Hop")
		w.Header().Set("X-Daemon-Hop", "1")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Api-Version", "1.41")
		io.WriteString(w, `{"Id":"abc"}`)
	})
	c := tg.httpClient(tg.pki.client("alice", "admins"))
	req, _ := http.NewRequest(http.MethodGet, tg.url("/v1.41/containers/abc/json"), nil)
	for k, v := range map[string]string{
		"X-Forwarded-For": "10.9.9.9", "X-Forwarded-Host": "evil", "Forwarded": "for=10.9.9.9",
		"Connection": "X-Client-Hop", "X-Client-Hop": "1", "Proxy-Connection": "keep-alive",
		"X-Registry-Auth": "e30=", // end-to-end: must reach the daemon
	} {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	h := <-seen
	for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded", "X-Client-Hop", "Proxy-Connection"} {
		if v := h.Get(k); v != "" {
			t.Errorf("daemon saw %s: %q, want none", k, v)
		}
	}
	if h.Get("X-Registry-Auth") != "e30=" {
		t.Errorf("daemon did not see X-Registry-Auth: %v", h)
	}
	for _, k := range []string{"X-Daemon-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("client saw %s: %q, want none", k, v)
		}
	}
	if resp.Header.Get("Api-Version") != "1.41" {
		t.Errorf("client did not see Api-Version: %v", resp.Header)
	}
}

func TestHandshakeRefusals(t *testing.T) {
	tg := startTestGateway(t, nil)
	other := newTestPKI(t)
	expired := tg.pki.issue(pki.LeafRequest{Kind: pki.KindClient, Name: "old", Groups: []string{"admins"},
		Now: time.Now().Add(-48 * time.Hour), Validity: time.Hour})
	serverOnly := tg.pki.server()
	revoked := tg.pki.client("mallory", "admins")
	tg.revoke(revoked)
	if err := tg.refreshRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name   string
		cfg    *tls.Config
		reason string
	}{
		{"no client certificate", tg.clientTLS(), reasonNoCertificate},
		{"certificate from another CA", tg.clientTLS(other.client("alice", "admins")), reasonUnknownAuthority},
		{"expired certificate", tg.clientTLS(expired), reasonExpired},
		{"server certificate used as client", tg.clientTLS(serverOnly), reasonWrongKeyUsage},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(tc.reason))
			err := tg.handshake(tc.cfg)
			if !isRefusal(err) {
				t.Fatalf("handshake: got %v, want a TLS refusal", err)
			}
			if after := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(tc.reason)); after != before+1 {
				t.Errorf("handshake_failures{reason=%q}: got %v, want %v", tc.reason, after, before+1)
			}
		})
	}
	// net/http logs a failed handshake before it closes the connection.
	waitFor(t, "the refused connections to close", func() bool {
		var m dto.Metric
		return tg.metrics.activeConns.Write(&m) == nil && m.GetGauge().GetValue() == 0
	})
	logs := tg.logs.String()
	if !strings.Contains(logs, `msg="client refused at handshake" remote=127.0.0.1:`) {
		t.Errorf("a refusal's log line does not name the client's address:\n%s", logs)
	}
	if got := strings.Count(logs, `msg="client refused at handshake"`); got != len(cases) {
		t.Errorf("got %d refusal lines for %d refused handshakes:\n%s", got, len(cases), logs)
	}
	if strings.Contains(logs, handshakeErrorPrefix) {
		t.Errorf("net/http's line repeats a refusal the gateway logged:\n%s", logs)
	}
	t.Run("TLS 1.1 client", func(t *testing.T) {
		cfg := tg.clientTLS(tg.pki.client("alice", "admins"))
		cfg.MaxVersion = tls.VersionTLS11
		cfg.MinVersion = tls.VersionTLS10
		before := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonProtocolVersion))
		if err := tg.handshake(cfg); !isRefusal(err) {
			t.Fatalf("handshake: got %v, want a protocol version refusal", err)
		}
		if after := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonProtocolVersion)); after != before+1 {
			t.Errorf("handshake_failures{reason=%q}: got %v, want %v", reasonProtocolVersion, after, before+1)
		}
	})
	t.Run("revoked certificate completes the handshake", func(t *testing.T) {
		before := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonRevoked))
		if status, msg := tg.pingAnswer(t, revoked); status != http.StatusForbidden || !strings.Contains(msg, "was revoked at") {
			t.Errorf("revoked certificate: %d %q, want 403 saying it was revoked", status, msg)
		}
		if after := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(reasonRevoked)); after != before {
			t.Errorf("handshake_failures{reason=revoked}: %v, want %v", after, before)
		}
	})
	t.Run("valid client still gets in", func(t *testing.T) {
		if err := tg.handshake(tg.clientTLS(tg.pki.client("alice", "admins"))); err != nil {
			t.Fatalf("handshake: %v", err)
		}
	})
}

func TestUnlistedClientGets403NamingIdentity(t *testing.T) {
	tg := startTestGateway(t, nil) // default rules: group admins only
	resp, err := tg.httpClient(tg.pki.client("bob", "devs")).Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg := decodeMessage(t, resp)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("got %s, want 403", resp.Status)
	}
	for _, want := range []string{`CN="bob"`, "devs", "no clients: entry matches"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

func TestCNGlobRule(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		c.Clients = []config.ClientRule{{CN: "ci-*", Role: "admin"}}
	})
	for cn, want := range map[string]int{"ci-7": 200, "cid": 403, "admin": 403} {
		resp, err := tg.httpClient(tg.pki.client(cn, "admins")).Get(tg.url("/_ping"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("cn %s: got %d, want %d", cn, resp.StatusCode, want)
		}
	}
}

func TestUpstreamDownAnswers502AndRecovers(t *testing.T) {
	tg := startTestGateway(t, nil)
	c := tg.httpClient(tg.pki.client("alice", "admins"))
	// Take the daemon away.
	tg.fake.stop()
	os.Remove(tg.socket)
	resp, err := c.Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	msg := decodeMessage(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("got %s, want 502", resp.Status)
	}
	if !strings.HasPrefix(msg, "dockgate: docker daemon unreachable at unix://"+tg.socket+": ") {
		t.Errorf("message = %q", msg)
	}
	// Bring it back: the next request goes through.
	tg.fake = startFakeDocker(t, tg.socket)
	resp, err = c.Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("after restart: got %s, want 200", resp.Status)
	}
}

func TestHijackHalfClose(t *testing.T) {
	tg := startTestGateway(t, nil)
	for _, upgrade := range []bool{true, false} {
		name := map[bool]string{true: "upgrade tcp", false: "legacy hijack"}[upgrade]
		t.Run(name, func(t *testing.T) {
			conn, br := tg.upgradeExec(t, tg.pki.client("alice", "admins"), upgrade)
			defer conn.Close()
			io.WriteString(conn, "data\n")
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			out, err := io.ReadAll(br)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != "echo:data\n" {
				t.Errorf("stream output = %q, want %q", out, "echo:data\n")
			}
		})
	}
}

func TestLiveRevocationCutsHijackedStream(t *testing.T) {
	tg := startTestGateway(t, nil)
	cert := tg.pki.client("eve", "admins")
	conn, br := tg.upgradeExec(t, cert, true)
	defer conn.Close()
	if got := gaugeValue(t, tg.metrics.hijackedStreams); got != 1 {
		t.Fatalf("hijacked streams = %v, want 1", got)
	}
	tg.revoke(cert)
	revokedAt := time.Now()
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := io.ReadAll(br)
	elapsed := time.Since(revokedAt)
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("stream still open %v after revocation", elapsed)
	}
	if elapsed > time.Second {
		t.Errorf("stream cut after %v, want within 1s", elapsed)
	}
	if status, msg := tg.pingAnswer(t, cert); status != http.StatusForbidden || !strings.Contains(msg, "was revoked at") {
		t.Errorf("new connection with revoked cert: %d %q, want 403 saying it was revoked", status, msg)
	}
}

func TestReloadKeepsStreamsAndFailedReloadKeepsState(t *testing.T) {
	tg := startTestGateway(t, nil)
	cert := tg.pki.client("alice", "admins")
	resp, err := tg.httpClient(cert).Get(tg.url("/v1.41/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string)
	go func() {
		buf := make([]byte, 64)
		for {
			n, err := resp.Body.Read(buf)
			if err != nil {
				close(lines)
				return
			}
			lines <- string(buf[:n])
		}
	}()
	<-lines

	// A good reload: new server cert; the stream goes on.
	oldSerial := tg.material.ServerCert.Leaf.SerialNumber
	tg.mu.Lock()
	m := *tg.material
	m.ServerCert = tg.pki.server()
	tg.material = &m
	tg.mu.Unlock()
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := tg.Gateway.material.Load().ServerCert.Leaf.SerialNumber; got.Cmp(oldSerial) == 0 {
		t.Fatal("server certificate not swapped")
	}
	// A failed reload keeps what is there.
	tg.mu.Lock()
	tg.loadErr = errors.New("corrupt cert.pem")
	tg.mu.Unlock()
	if err := tg.Reload(); err == nil {
		t.Fatal("reload with a broken loader succeeded")
	}
	if tg.Gateway.material.Load() != &m {
		t.Fatal("failed reload replaced the material")
	}
	if logs := tg.logs.String(); !strings.Contains(logs, `msg="reload failed, keeping the current certificates and config" err="corrupt cert.pem"`) {
		t.Errorf("the log does not say why the reload failed:\n%s", logs)
	}
	deadline := time.After(2 * time.Second)
	for range 3 {
		select {
		case _, ok := <-lines:
			if !ok {
				t.Fatal("stream ended across reload")
			}
		case <-deadline:
			t.Fatal("stream stalled across reload")
		}
	}
	// New connections see the new certificate.
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(m.ServerCert.Leaf.SerialNumber) != 0 {
		t.Errorf("new connection got server serial %x, want the reloaded one", got)
	}
}

func TestAdminEndpoints(t *testing.T) {
	tg := startTestGateway(t, nil)
	ping, err := tg.httpClient(tg.pki.client("alice", "admins")).Get(tg.url("/_ping"))
	if err != nil {
		t.Fatal(err)
	}
	ping.Body.Close()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + tg.admin + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: got %s", path, resp.Status)
		}
	}
	// The request's metrics are recorded once its handler returns, which
	// can be just after the client has the answer.
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + tg.admin + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), "dockgate_requests_total{") || time.Now().After(deadline) {
			break
		}
	}
	for _, name := range []string{"dockgate_active_connections", "dockgate_hijacked_streams",
		"dockgate_handshake_failures_total", "dockgate_server_cert_expiry_seconds",
		`dockgate_requests_total{operation="system.ping",status="200"} 1`,
		`dockgate_request_duration_seconds_count{operation="system.ping"} 1`} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %s\n%s", name, body)
		}
	}
	tg.fake.stop()
	resp, err := http.Get("http://" + tg.admin + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the daemon down: got %s, want 503", resp.Status)
	}
}

func TestMaxConnections(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) { c.Limits.MaxConnections = 1 })
	cert := tg.pki.client("alice", "admins")
	first, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := tg.handshake(tg.clientTLS(cert)); err == nil {
		t.Fatal("second connection accepted past max_connections=1")
	}
	first.Close()
	waitFor(t, "the first connection's slot to be freed", func() bool { return gaugeValue(t, tg.metrics.activeConns) == 0 })
	if err := tg.handshake(tg.clientTLS(cert)); err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
}

func decodeMessage(t *testing.T, resp *http.Response) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("decode error body: %v", err)
	}
	return m.Message
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}

func TestWhoami(t *testing.T) {
	tg := startTestGateway(t, nil)
	for _, tc := range []struct {
		cn     string
		groups []string
		role   string
	}{
		{"alice", []string{"devs", "admins"}, "admin"},
		{"bob", []string{"devs"}, ""}, // unmatched clients may still ask who they are
	} {
		cert := tg.pki.client(tc.cn, tc.groups...)
		resp, err := tg.httpClient(cert).Get(tg.url(identity.WhoamiPath))
		if err != nil {
			t.Fatal(err)
		}
		var got identity.Whoami
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got.CN != tc.cn || got.Role != tc.role || !slices.Equal(got.Groups, tc.groups) {
			t.Errorf("whoami for %s = %+v, want groups %v and role %q", tc.cn, got, tc.groups, tc.role)
		}
		if got.Serial != cert.Leaf.SerialNumber.Text(16) {
			t.Errorf("serial = %s, want %s", got.Serial, cert.Leaf.SerialNumber.Text(16))
		}
		if sum := sha256.Sum256(cert.Leaf.Raw); got.Fingerprint != hex.EncodeToString(sum[:]) {
			t.Errorf("fingerprint = %s, want the SHA-256 of the certificate %x", got.Fingerprint, sum)
		}
		if !got.NotAfter.Equal(cert.Leaf.NotAfter) {
			t.Errorf("not_after = %s, want %s", got.NotAfter, cert.Leaf.NotAfter)
		}
	}
}

func TestLocalHandlerGetsIdentityAndIsNeverForwarded(t *testing.T) {
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := identity.FromContext(r.Context())
		if !ok {
			http.Error(w, "no identity", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "local:"+id.CN)
	})
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.Local = local })
	// An unmatched client reaches the gateway's own API (renewal must work
	// for it), but still nothing of the daemon's.
	resp, err := tg.httpClient(tg.pki.client("bob", "devs")).Post(tg.url("/dockgate/v1/renew"), "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "local:bob" {
		t.Fatalf("local handler: %s %q", resp.Status, body)
	}

	// Without a Local handler, the prefix is 404 and never reaches the daemon.
	plain := startTestGateway(t, nil)
	resp, err = plain.httpClient(plain.pki.client("alice", "admins")).Get(plain.url("/dockgate/v1/renew"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("got %s, want 404", resp.Status)
	}
}

func TestStreamedHeadArrivesBeforeBody(t *testing.T) {
	tg := startTestGateway(t, nil)
	c := tg.httpClient(tg.pki.client("alice", "admins"))
	start := time.Now()
	resp, err := c.Post(tg.url("/v1.41/containers/abc/wait?condition=next-exit"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The docker CLI starts the container only once it has this head.
	if waited := time.Since(start); waited > time.Second {
		t.Fatalf("the wait head took %v: it was held back until the body", waited)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != `{"StatusCode":0}` {
		t.Fatalf("wait body = %q", body)
	}
}

func TestAmbiguousRefCountsAsMissing(t *testing.T) {
	cases := []struct {
		status int
		body   string
		want   bool
	}{
		{500, `{"message":"Multiple IDs found with provided prefix: f"}`, true}, // dockerd 20.10
		{400, `{"message":"multiple IDs found with provided prefix: f"}`, true},
		{500, `{"message":"some other failure"}`, false},
		{200, `{"Id":"multiple IDs found"}`, false},
	}
	for _, tc := range cases {
		if got := isAmbiguousRef(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("isAmbiguousRef(%d, %s) = %v, want %v", tc.status, tc.body, got, tc.want)
		}
	}
}

// A connection is one log line when its client first asks something and
// one when it goes away, naming the certificate.
func TestConnectionEventsAreLogged(t *testing.T) {
	tg := startTestGateway(t, nil)
	cert := tg.pki.client("alice", "admins")
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		io.WriteString(conn, "GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	conn.Close()
	serial := cert.Leaf.SerialNumber.Text(16)
	waitFor(t, "the disconnect's log line", func() bool { return strings.Contains(tg.logs.String(), "client disconnected") })
	logs := tg.logs.String()
	connected := "msg=\"client connected\" remote=" + conn.LocalAddr().String() + " cn=alice serial=" + serial
	if strings.Count(logs, "client connected") != 1 || !strings.Contains(logs, connected) {
		t.Errorf("want one line with %q, got:\n%s", connected, logs)
	}
	disconnected := "msg=\"client disconnected\" remote=" + conn.LocalAddr().String() + " cn=alice serial=" + serial + " duration="
	if !strings.Contains(logs, disconnected) {
		t.Errorf("want a line with %q, got:\n%s", disconnected, logs)
	}
}

// BuildKit's /session and /grpc upgrade to h2c; the gateway relays the
// upgrade, the session headers and then bytes both ways.
func TestBuildKitUpgradesPassThrough(t *testing.T) {
	tg := startTestGateway(t, nil)
	sessionHeaders := make(chan http.Header, 2)
	echoH2C := func(w http.ResponseWriter, r *http.Request) {
		sessionHeaders <- r.Header.Clone()
		if r.Header.Get("Upgrade") != "h2c" {
			http.Error(w, "want h2c", http.StatusBadRequest)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		io.WriteString(conn, "h2:"+line)
	}
	tg.fake.mux.HandleFunc("POST /v1.41/session", echoH2C)
	tg.fake.mux.HandleFunc("POST /v1.41/grpc", echoH2C)
	for _, path := range []string{"/v1.41/session", "/v1.41/grpc"} {
		t.Run(path, func(t *testing.T) {
			conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(tg.pki.client("alice", "admins")))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"+
				"X-Docker-Expose-Session-Uuid: s-1\r\nX-Docker-Expose-Session-Name: build\r\n\r\n", path)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Upgrade") != "h2c" {
				t.Fatalf("got %s %v, want 101 to h2c", resp.Status, resp.Header)
			}
			h := <-sessionHeaders
			if h.Get("X-Docker-Expose-Session-Uuid") != "s-1" || h.Get("X-Docker-Expose-Session-Name") != "build" {
				t.Errorf("the daemon saw session headers %v", h)
			}
			io.WriteString(conn, "PRI * HTTP/2.0\n")
			got, err := br.ReadString('\n')
			if err != nil || got != "h2:PRI * HTTP/2.0\n" {
				t.Errorf("relayed %q (%v), want the daemon's echo", got, err)
			}
		})
	}
}

// A raw request body (an archive, a build context, an image to load) is
// streamed to the daemon as it arrives, not read whole first.
func TestRawBodiesAreStreamed(t *testing.T) {
	tg := startTestGateway(t, nil)
	firstChunk := make(chan struct{})
	var total atomic.Int64
	tg.fake.mux.HandleFunc("PUT /v1.41/containers/{id}/archive", func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 32<<10)
		signalled := false
		for {
			n, err := r.Body.Read(buf)
			total.Add(int64(n))
			if n > 0 && !signalled {
				close(firstChunk)
				signalled = true
			}
			if err != nil {
				break
			}
		}
		w.WriteHeader(http.StatusOK)
	})
	pr, pw := io.Pipe()
	go func() {
		pw.Write(bytes.Repeat([]byte("a"), 1000))
		select {
		case <-firstChunk: // the daemon has the start before the client sends the rest
			pw.Write(bytes.Repeat([]byte("b"), 1<<20))
			pw.Close()
		case <-time.After(5 * time.Second):
			pw.CloseWithError(errors.New("the daemon got nothing while the client held the rest of the body"))
		}
	}()
	req, _ := http.NewRequest(http.MethodPut, tg.url("/v1.41/containers/web/archive?path=/tmp"), pr)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := tg.httpClient(tg.pki.client("alice", "admins")).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || total.Load() != 1000+1<<20 {
		t.Errorf("got %s, daemon read %d bytes; want 200 and %d", resp.Status, total.Load(), 1000+1<<20)
	}
}

// Requests from many client connections share the gateway's pooled
// connections to the daemon instead of dialling it each time.
func TestUpstreamConnectionsAreReused(t *testing.T) {
	tg := startTestGateway(t, nil)
	cert := tg.pki.client("alice", "admins")
	for range 10 {
		c := tg.httpClient(cert) // a new client connection each time
		resp, err := c.Get(tg.url("/_ping"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
	}
	// One more: the access check at start (checkAccess), done before the
	// gateway serves its first request.
	if n := tg.fake.conns.Load(); n != 2 {
		t.Errorf("the daemon saw %d connections for the start-up check and 10 sequential requests, want 2", n)
	}
}

// A client that never finishes its request head is cut after
// read_header_timeout; a stream lasts as long as it runs (no deadline).
func TestHeaderTimeoutButNoStreamDeadline(t *testing.T) {
	tg := startTestGateway(t, func(c *config.Config) {
		c.Limits.ReadHeaderTimeout = 200 * time.Millisecond
		c.Limits.IdleTimeout = 300 * time.Millisecond
	})
	cert := tg.pki.client("alice", "admins")
	slow, err := tls.Dial("tcp", tg.addr, tg.clientTLS(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "GET /_ping HTTP/1.1\r\nHost: docker\r\n") // and never the blank line
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := slow.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("slow header: read %v, want the gateway to close the connection", err)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Errorf("slow header cut after %s, want about 200ms", waited)
	}

	resp, err := tg.httpClient(cert).Get(tg.url("/v1.41/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	deadline := time.Now().Add(1500 * time.Millisecond) // well past both timeouts
	lines := 0
	for time.Now().Before(deadline) {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("stream cut after %d lines: %v", lines, err)
		}
		lines++
	}
	if lines < 20 {
		t.Errorf("stream gave %d lines in 1.5 s, want it flowing", lines)
	}
}

// A reload with a new CA trusts that CA's clients on new connections and
// no longer the old one's.
func TestReloadSwapsTheCA(t *testing.T) {
	tg := startTestGateway(t, nil)
	oldClient := tg.pki.client("alice", "admins")
	if err := tg.handshake(tg.clientTLS(oldClient)); err != nil {
		t.Fatalf("before the reload: %v", err)
	}
	next := newTestPKI(t)
	newClient := next.client("bob", "admins")
	tg.pki.issued.Store(identity.SerialHex(newClient.Leaf), true) // in the gateway's inventory
	tg.mu.Lock()
	m := *tg.material
	m.CA = NewCA(next.ca.Cert)
	tg.material = &m
	tg.mu.Unlock()
	if err := tg.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := tg.handshake(tg.clientTLS(oldClient)); !isRefusal(err) {
		t.Errorf("the old CA's client after the reload: %v, want a refusal", err)
	}
	cfg := tg.clientTLS(newClient)
	cfg.RootCAs = tg.pki.pool() // the server certificate is still the old CA's
	if err := tg.handshake(cfg); err != nil {
		t.Errorf("the new CA's client after the reload: %v", err)
	}
}
