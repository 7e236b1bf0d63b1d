package load

import (
	"context"
	"crypto/tls"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = ms(i + 1)
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", []time.Duration{ms(7)}, 99, ms(7)},
		{"p50 of 1..100", hundred, 50, ms(50)},
		{"p99 of 1..100", hundred, 99, ms(99)},
		{"p100 of 1..100", hundred, 100, ms(100)},
		{"p1 of 1..100", hundred, 1, ms(1)},
		{"p50 of four rounds up the rank", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 50, ms(2)},
		{"p51 of four", []time.Duration{ms(1), ms(2), ms(3), ms(4)}, 51, ms(3)},
		{"p99 of ten is the maximum", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99, 10},
		{"tiny p is the minimum", []time.Duration{ms(3), ms(4)}, 0.001, ms(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		want float64
	}{
		{"odd count, unsorted", []float64{5, 1, 3}, 3},
		{"even count takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"single", []float64{9}, 9},
		{"outliers do not move it", []float64{1, 100, 2, 3, -50}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := Median(tt.xs); got != tt.want {
				t.Errorf("Median(%v) = %v, want %v", tt.xs, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.xs[i] {
					t.Fatalf("Median modified its input: %v, was %v", tt.xs, in)
				}
			}
		})
	}
	if got := Median(nil); !math.IsNaN(got) {
		t.Errorf("Median(nil) = %v, want NaN", got)
	}
	if got := MedianDuration([]time.Duration{ms(3), ms(1), ms(2), ms(10)}); got != 2500*time.Microsecond {
		t.Errorf("MedianDuration = %v, want 2.5ms", got)
	}
}

func TestResultRPS(t *testing.T) {
	r := Result{Requests: 300, Elapsed: 1500 * time.Millisecond}
	if got := r.RPS(); got != 200 {
		t.Errorf("RPS = %v, want 200", got)
	}
	if got := (Result{Requests: 5}).RPS(); got != 0 {
		t.Errorf("RPS with no elapsed time = %v, want 0", got)
	}
}

// connCounter is an HTTPS test server that counts new connections and
// full (not resumed) TLS handshakes.
type connCounter struct {
	srv        *httptest.Server
	conns      atomic.Int64
	full       atomic.Int64
	mu         sync.Mutex
	paths      map[string]int
	statusCode int
}

func newConnCounter(t *testing.T, status int) *connCounter {
	c := &connCounter{paths: map[string]int{}, statusCode: status}
	c.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.paths[r.URL.RequestURI()]++
		c.mu.Unlock()
		w.WriteHeader(c.statusCode)
		w.Write([]byte("OK"))
	}))
	c.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.srv.TLS = &tls.Config{VerifyConnection: func(cs tls.ConnectionState) error {
		if !cs.DidResume {
			c.full.Add(1)
		}
		return nil
	}}
	c.srv.StartTLS()
	t.Cleanup(c.srv.Close)
	return c
}

func (c *connCounter) endpoint() Endpoint {
	return Endpoint{Name: "test", BaseURL: c.srv.URL, TLS: c.srv.Client().Transport.(*http.Transport).TLSClientConfig}
}

func TestRunModes(t *testing.T) {
	const concurrency, requests = 4, 40
	tests := []struct {
		mode Mode
		// connections opened for the recorded requests plus the warm-up
		wantConns func(got int64) bool
		desc      string
	}{
		{KeepAlive, func(got int64) bool { return got <= concurrency }, "at most one per worker"},
		{NewConnection, func(got int64) bool { return got >= requests }, "one per request"},
		{Resumed, func(got int64) bool { return got >= requests }, "one per request"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			c := newConnCounter(t, http.StatusOK)
			res, err := Run(context.Background(), c.endpoint(), Spec{
				Path: "/_ping?x=1", Concurrency: concurrency, Mode: tt.mode,
				Duration: time.Minute, MaxRequests: requests,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != requests || res.Errors != 0 || len(res.Latencies) != requests {
				t.Fatalf("requests %d, errors %d (%v), latencies %d; want %d, 0, %d",
					res.Requests, res.Errors, res.FirstErr, len(res.Latencies), requests, requests)
			}
			want := requests + res.WarmupRequests
			if tt.mode == KeepAlive {
				want += concurrency // one per connection, opened before the clock starts
			}
			if got := c.paths["/_ping?x=1"]; got != want {
				t.Errorf("server saw %d requests for the path, want %d (%d recorded, %d warm-up)", got, want, requests, res.WarmupRequests)
			}
			if res.WarmupRequests < concurrency {
				t.Errorf("%d warm-up requests, want at least one per worker (%d)", res.WarmupRequests, concurrency)
			}
			if got := res.Bytes; got != int64(2*requests) {
				t.Errorf("bytes read %d, want %d", got, 2*requests)
			}
			if got := c.conns.Load(); !tt.wantConns(got) {
				t.Errorf("%s opened %d connections for %d requests, want %s", tt.mode, got, requests, tt.desc)
			}
			if tt.mode == NewConnection && c.full.Load() != c.conns.Load() {
				t.Errorf("%d of %d handshakes were full; want all (no session resumption)", c.full.Load(), c.conns.Load())
			}
			// Workers that start together have no ticket yet; after that,
			// every connection resumes.
			if tt.mode == Resumed && c.full.Load() > concurrency {
				t.Errorf("%d of %d handshakes were full; want at most %d (one per worker before tickets exist)", c.full.Load(), c.conns.Load(), concurrency)
			}
			for i := 1; i < len(res.Latencies); i++ {
				if res.Latencies[i] < res.Latencies[i-1] {
					t.Fatalf("latencies not sorted at %d: %v > %v", i, res.Latencies[i-1], res.Latencies[i])
				}
			}
			if res.Elapsed <= 0 || res.Elapsed >= time.Minute {
				t.Errorf("elapsed %v, want the time until the budget ran out", res.Elapsed)
			}
		})
	}
}

func TestRunCountsErrorStatus(t *testing.T) {
	c := newConnCounter(t, http.StatusForbidden)
	res, err := Run(context.Background(), c.endpoint(), Spec{
		Path: "/", Concurrency: 2, Duration: time.Minute, MaxRequests: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 10 || len(res.Latencies) != 0 {
		t.Errorf("errors %d, latencies %d; want 10 errors and no latencies", res.Errors, len(res.Latencies))
	}
	if res.FirstErr == nil {
		t.Error("FirstErr is nil, want the 403")
	}
}

func TestRunRejectsBadSpec(t *testing.T) {
	for _, spec := range []Spec{
		{Concurrency: 0, Duration: time.Second, MaxRequests: 1},
		{Concurrency: 1, Duration: 0, MaxRequests: 1},
		{Concurrency: 1, Duration: time.Second, MaxRequests: 0},
	} {
		if _, err := Run(context.Background(), Endpoint{BaseURL: "http://127.0.0.1:1"}, spec); err == nil {
			t.Errorf("Run(%+v) succeeded, want an error", spec)
		}
	}
}

func TestStream(t *testing.T) {
	payload := make([]byte, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(payload) }))
	defer srv.Close()
	n, _, err := Stream(context.Background(), Endpoint{Name: "test", BaseURL: srv.URL}, "/images/x/get")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(payload)) {
		t.Errorf("streamed %d bytes, want %d", n, len(payload))
	}
}

func TestRunOnWindow(t *testing.T) {
	c := newConnCounter(t, http.StatusOK)
	var calls []bool
	var atOpen int
	res, err := Run(context.Background(), c.endpoint(), Spec{
		Path: "/", Concurrency: 2, Duration: time.Minute, MaxRequests: 20,
		OnWindow: func(open bool) {
			calls = append(calls, open)
			if open {
				c.mu.Lock()
				atOpen = c.paths["/"]
				c.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 || !calls[0] || calls[1] {
		t.Fatalf("OnWindow calls %v, want [true false]", calls)
	}
	// Before the window opened the server saw the priming (one request
	// per worker) and the warm-up, except warm-up requests still on the
	// way (at most one per worker).
	if most := 2 + res.WarmupRequests; atOpen > most || atOpen < most-2 {
		t.Errorf("server had seen %d requests when the window opened, want %d..%d (priming 2 + warm-up %d, up to 2 in flight)",
			atOpen, most-2, most, res.WarmupRequests)
	}
}
