package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/store"
)

// A revoked or superseded certificate completes its handshake; every
// request on its connection is answered 403 with one sentence naming the
// certificate and the fix, and none reaches the daemon. The refusal is
// counted and audited.
func TestRevokedAndSupersededCertificatesGetTheirRequestsRefused(t *testing.T) {
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	alog, err := audit.Open(auditPath, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.Audit = alog })
	revokedAt := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	revoked := tg.pki.client("ci-7", "admins")
	tg.setStanding(revoked, store.Standing{State: store.StateIssued, RevokedAt: revokedAt})
	supersededAt := time.Now().Add(-time.Minute).Truncate(time.Second)
	superseded := tg.pki.client("ci-8", "admins")
	tg.setStanding(superseded, store.Standing{State: store.StateIssued, SupersededAt: supersededAt})
	if err := tg.refreshRevocations(t.Context()); err != nil {
		t.Fatal(err)
	}
	created := tg.fakeCreates()
	daemonBefore := tg.fake.requests.Load()

	cases := []struct {
		name   string
		cert   tls.Certificate
		reason string
		want   string
	}{
		{"revoked", revoked, reasonRevoked, fmt.Sprintf(`dockgate: certificate "ci-7" (serial %s) was revoked at 2026-12-04T10:00:00Z; `+
			`ask your dockgate administrator for a new token (dockgate token create ci-7), then run: dockgate login TOKEN`, identity.SerialHex(revoked.Leaf))},
		{"superseded", superseded, reasonSuperseded, fmt.Sprintf(`dockgate: certificate "ci-8" (serial %s) was replaced by a renewal at %s; `+
			`use the renewed certificate (the docker context that dockgate renew updated, or clients/ci-8/ in the state directory), `+
			`or ask your dockgate administrator for a new token (dockgate token create ci-8), then run: dockgate login TOKEN`,
			identity.SerialHex(superseded.Leaf), supersededAt.UTC().Format(time.RFC3339))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			handshakesBefore := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(tc.reason))
			refusedBefore := counterValue(t, tg.metrics.refusedCertRequests.WithLabelValues(tc.reason))
			// One connection, three requests: each answered, none forwarded.
			conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(tc.cert))
			if err != nil {
				t.Fatalf("handshake: %v, want it to complete", err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(conn)
			body := `{"Image":"alpine"}`
			for _, req := range []string{
				"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n",
				fmt.Sprintf("POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
				"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
			} {
				if _, err := io.WriteString(conn, req); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("no answer to %q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
				}
				var e struct {
					Message string `json:"message"`
				}
				err = json.NewDecoder(resp.Body).Decode(&e)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusForbidden || e.Message != tc.want {
					t.Errorf("%s: %d %q (%v)\nwant 403 %q", strings.SplitN(req, "\r\n", 2)[0], resp.StatusCode, e.Message, err, tc.want)
				}
				if got := resp.Header.Get(identity.RefusedHeader); got != tc.reason {
					t.Errorf("%s = %q, want %q", identity.RefusedHeader, got, tc.reason)
				}
			}
			if after := counterValue(t, tg.metrics.refusedCertRequests.WithLabelValues(tc.reason)); after != refusedBefore+3 {
				t.Errorf("refused_certificate_requests{reason=%s} = %v, want %v", tc.reason, after, refusedBefore+3)
			}
			if after := counterValue(t, tg.metrics.handshakeFailures.WithLabelValues(tc.reason)); after != handshakesBefore {
				t.Errorf("handshake_failures{reason=%s} = %v, want %v: the handshake completes", tc.reason, after, handshakesBefore)
			}
		})
	}
	if n := tg.fake.requests.Load() - daemonBefore; n != 0 || created.Load() != 0 {
		t.Errorf("the daemon got %d requests (%d creates), want none", n, created.Load())
	}
	// The sweep, which runs every poll, leaves these connections alone: a
	// connection refused from its handshake on forwards nothing.
	if logs := tg.logs.String(); strings.Contains(logs, "closing connection of a certificate no longer valid") {
		t.Errorf("a refused connection was cut:\n%s", logs)
	}

	tg.stop()
	if err := alog.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var rec auditRecord
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Decision != "deny" || rec.Status != http.StatusForbidden {
			t.Errorf("audit record %+v: want a 403 deny", rec)
		}
		reasons[rec.CN+": "+rec.Reason]++
	}
	if reasons["ci-7: certificate revoked"] != 3 || reasons["ci-8: certificate superseded by a renewal"] != 3 {
		t.Errorf("audit reasons %v, want 3 revoked for ci-7 and 3 superseded for ci-8", reasons)
	}
}

// A certificate revoked while its connection is open: a request that comes
// after the gateway read the revocation, and before the sweep cut the
// connection, gets the same sentence, and the connection is closed.
func TestRequestAfterALiveRevocationIsRefused(t *testing.T) {
	// No poll during the test: the revocation is read in by hand, without
	// the sweep that would cut the connection.
	tg := startTestGatewayWithOptions(t, nil, func(o *Options) { o.RevocationPoll = time.Hour })
	alice := tg.pki.client("alice", "admins")
	client := tg.httpClient(alice)
	get := func() (*http.Response, string) {
		resp, err := client.Get(tg.url("/v1.41/containers/json"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := get(); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the revocation: %d %s", resp.StatusCode, body)
	}
	tg.revoke(alice)
	inv, err := tg.standings(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	refused := refusedSerials(inv, time.Now())
	tg.Gateway.revoked.Store(&refused)
	daemonBefore := tg.fake.requests.Load()
	resp, body := get()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, `certificate \"alice\" (serial `+identity.SerialHex(alice.Leaf)+`) was revoked at`) ||
		!strings.Contains(body, "dockgate token create alice") || !resp.Close {
		t.Errorf("after the revocation: %d %s (close %v), want 403 naming the certificate and closing the connection", resp.StatusCode, body, resp.Close)
	}
	if n := tg.fake.requests.Load() - daemonBefore; n != 0 {
		t.Errorf("the daemon got %d requests after the revocation, want none", n)
	}
}

// smuggled is a request framed both by Content-Length and chunked, with a
// second request pipelined after it: a front end that trusts the length
// would read the second one as part of the first's body.
const smuggled = "POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n" +
	"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
	"12\r\n{\"Image\":\"alpine\"}\r\n0\r\n\r\n" +
	"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"

// checkClosedAfterOneAnswer sends smuggled on conn and checks that one
// request reaches the daemon and the connection is closed after its answer.
func checkClosedAfterOneAnswer(t *testing.T, tg *testGateway, conn net.Conn) {
	t.Helper()
	created := tg.fakeCreates()
	before := tg.fake.requests.Load()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, smuggled); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !resp.Close {
		t.Errorf("first answer: %s, Connection %q; want 201 with Connection: close", resp.Status, resp.Header.Get("Connection"))
	}
	if extra, err := br.ReadByte(); err == nil {
		t.Errorf("the connection went on after the first answer (read %q)", extra)
	} else {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("the connection is still open after the first answer")
		}
	}
	if n := tg.fake.requests.Load() - before; n != 1 || created.Load() != 1 {
		t.Errorf("the daemon got %d requests (%d creates), want exactly the create", n, created.Load())
	}
}

// A request with a chunked body is answered with the connection closed
// after it (RFC 9112 section 6.1 for Content-Length with Transfer-Encoding,
// which net/http does not let the handler tell apart): nothing pipelined
// after it is served.
func TestChunkedRequestClosesTheConnection(t *testing.T) {
	tg := startTestGateway(t, nil)
	conn, err := tls.Dial("tcp", tg.addr, tg.clientTLS(tg.pki.client("alice", "admins")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkClosedAfterOneAnswer(t, tg, conn)
}

// The local socket closes the connection after a chunked request alike.
func TestChunkedRequestClosesTheLocalSocketConnection(t *testing.T) {
	uid := myUID()
	tg, path := startUnixGateway(t, []config.ClientRule{{UID: &uid, Role: config.RoleAdmin}})
	conn, err := (&net.Dialer{}).DialContext(context.Background(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	checkClosedAfterOneAnswer(t, tg, conn)
}
