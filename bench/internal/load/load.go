// Package load is the benchmark's HTTP load generator: a fixed number of
// workers send GET requests to one endpoint for a bounded time and count,
// and every request's latency is kept for percentiles.
//
// # Connections
//
// In [KeepAlive] mode one http.Transport serves all workers and keeps up to
// Concurrency idle connections, so after the warm-up every request reuses a
// connection. In [NewConnection] mode the transport disables keep-alive and
// TLS session resumption: every request pays a TCP connect and a full TLS
// handshake, which is what the handshake-rate comparison measures. In
// [Resumed] mode each request opens a connection too, but resumes the TLS
// session from a ticket.
//
// # Measurement
//
// In keep-alive mode the connections are opened first, one request per
// worker at once, before the clock starts. Requests sent during the
// warm-up that follows are not recorded. Throughput is the number of
// requests that started inside the measuring window divided by the
// window's length.
package load

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is where requests go: a base URL and how to reach it.
type Endpoint struct {
	Name string
	// BaseURL is "http://docker" for a unix socket or "https://HOST:PORT".
	BaseURL string
	// Dial opens the raw connection; nil means TCP to the URL's host.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// TLS is the client's TLS configuration for https endpoints.
	TLS *tls.Config
}

// Mode says whether requests share connections.
type Mode int

// The connection modes.
const (
	// KeepAlive reuses one connection per worker.
	KeepAlive Mode = iota
	// NewConnection opens a connection per request with a full TLS
	// handshake: no session resumption.
	NewConnection
	// Resumed opens a connection per request and resumes the TLS session
	// from a ticket, as a long-running client with a session cache does.
	Resumed
)

func (m Mode) String() string {
	switch m {
	case NewConnection:
		return "new conn"
	case Resumed:
		return "resumed conn"
	}
	return "keep-alive"
}

// Spec is one measurement: which path, how many workers, for how long.
type Spec struct {
	Path        string
	Concurrency int
	Mode        Mode
	Warmup      time.Duration
	Duration    time.Duration
	// MaxRequests bounds the recorded requests; the run ends at whichever
	// of Duration and MaxRequests comes first.
	MaxRequests int
	// OnWindow, if set, is called as the measuring window opens (true)
	// and closes (false), for example to read CPU counters that should
	// cover the recorded requests only.
	OnWindow func(open bool)
}

// Result is what one run measured.
type Result struct {
	Requests int // recorded: started inside the measuring window
	// WarmupRequests were sent during the warm-up and not recorded.
	WarmupRequests int
	Errors         int
	FirstErr       error
	Bytes          int64
	Elapsed        time.Duration
	Latencies      []time.Duration // sorted ascending
}

// RPS is requests per second over the measuring window.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Percentile is the p-th percentile latency (nearest rank).
func (r Result) Percentile(p float64) time.Duration { return Percentile(r.Latencies, p) }

// errStatus is a response that was not 2xx.
type errStatus struct{ status string }

func (e errStatus) Error() string { return "unexpected status " + e.status }

// NewTransport returns the transport for a mode: keep-alive with room for
// concurrency idle connections; one connection per request with TLS
// session tickets off, so that every handshake is a full one; or one
// connection per request resuming TLS sessions from a ticket cache.
func NewTransport(ep Endpoint, mode Mode, concurrency int) *http.Transport {
	t := &http.Transport{
		DialContext:         ep.Dial,
		MaxIdleConns:        concurrency,
		MaxIdleConnsPerHost: concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	if ep.TLS != nil {
		t.TLSClientConfig = ep.TLS.Clone()
	}
	if mode == KeepAlive {
		// Without a cap, requests that queue for a dial at the start take
		// a connection another worker just freed, and the extra dials
		// replace idle connections later on.
		t.MaxConnsPerHost = concurrency
	}
	switch mode {
	case NewConnection:
		t.DisableKeepAlives = true
		if t.TLSClientConfig != nil {
			t.TLSClientConfig.SessionTicketsDisabled = true
			t.TLSClientConfig.ClientSessionCache = nil
		}
	case Resumed:
		t.DisableKeepAlives = true
		if t.TLSClientConfig != nil {
			t.TLSClientConfig.SessionTicketsDisabled = false
			t.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(0)
		}
	}
	return t
}

// Run measures spec against ep.
func Run(ctx context.Context, ep Endpoint, spec Spec) (Result, error) {
	if spec.Concurrency < 1 || spec.Duration <= 0 || spec.MaxRequests < 1 {
		return Result{}, fmt.Errorf("invalid load spec: concurrency %d, duration %s, max requests %d",
			spec.Concurrency, spec.Duration, spec.MaxRequests)
	}
	transport := NewTransport(ep, spec.Mode, spec.Concurrency)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	url := ep.BaseURL + spec.Path

	if spec.Mode == KeepAlive {
		if err := prime(ctx, client, url, spec.Concurrency); err != nil {
			return Result{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, maxWarmup+spec.Warmup+spec.Duration+drainTimeout)
	defer cancel()
	r := newRun(client, url, spec)
	workers := make([]worker, spec.Concurrency)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			workers[i].loop(ctx, r)
		}()
	}
	err := r.clock(ctx, spec)
	wg.Wait()
	if err != nil {
		return Result{}, fmt.Errorf("load run on %s: %w", url, err)
	}
	return r.result(workers), nil
}

const (
	// primeTimeout bounds opening the keep-alive connections: 64 RSA-4096
	// handshakes on a busy 2-core machine take about a second.
	primeTimeout = 30 * time.Second
	// maxWarmup bounds the wait for every worker's first answer.
	maxWarmup = 30 * time.Second
	// drainTimeout bounds how long requests started inside the window may
	// take to finish: at c=64 with RSA-4096 handshakes one request waits
	// about half a second for its turn on a 2-core machine; anything near
	// this bound is a hang.
	drainTimeout = 30 * time.Second
)

// prime opens the keep-alive connections before the clock starts, with one
// request per worker at once, so that the warm-up and the measurement see
// only reused connections whatever the handshake costs.
func prime(ctx context.Context, c *http.Client, url string, concurrency int) error {
	ctx, cancel := context.WithTimeout(ctx, primeTimeout)
	defer cancel()
	errs := make(chan error, concurrency)
	for range concurrency {
		go func() {
			_, err := get(ctx, c, url)
			errs <- err
		}()
	}
	var first error
	for range concurrency {
		// A refused request still opened its connection; the measurement
		// counts refusals as errors.
		err := <-errs
		var status errStatus
		if err != nil && !errors.As(err, &status) && first == nil {
			first = fmt.Errorf("failed to open the keep-alive connections to %s: %w", url, err)
		}
	}
	return first
}

// Phases of a run.
const (
	warming int32 = iota
	measuring
	done
)

// run is the state the workers of one Run share.
type run struct {
	client *http.Client
	url    string
	phase  atomic.Int32
	budget atomic.Int64 // recorded requests left

	// firstPending counts workers whose first request has not answered;
	// firstDone closes when it reaches zero.
	firstPending atomic.Int64
	firstDone    chan struct{}
	spent        chan struct{} // closed when the budget runs out
	spentOnce    sync.Once

	measureFrom, measureTo time.Time
}

func newRun(c *http.Client, url string, spec Spec) *run {
	r := &run{client: c, url: url, firstDone: make(chan struct{}), spent: make(chan struct{})}
	r.budget.Store(int64(spec.MaxRequests))
	r.firstPending.Store(int64(spec.Concurrency))
	return r
}

// clock runs the phases: the warm-up lasts spec.Warmup and at least until
// every worker has had one answer (with one new connection per request
// and c=64, the first answers arrive together after a whole round of
// handshakes); then the window lasts spec.Duration or until the budget
// runs out.
func (r *run) clock(ctx context.Context, spec Spec) error {
	defer r.phase.Store(done)
	select {
	case <-time.After(spec.Warmup):
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.firstDone:
	case <-ctx.Done():
		return fmt.Errorf("warm-up: not every worker got an answer: %w", ctx.Err())
	}
	if spec.OnWindow != nil {
		spec.OnWindow(true)
	}
	r.measureFrom = time.Now()
	r.phase.Store(measuring)
	select {
	case <-time.After(spec.Duration):
	case <-r.spent:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.measureTo = time.Now()
	if spec.OnWindow != nil {
		spec.OnWindow(false)
	}
	return nil
}

// worker sends requests one after another and records their latencies.
type worker struct {
	latencies []time.Duration
	warmup    int
	errors    int
	firstErr  error
	bytes     int64
}

func (w *worker) loop(ctx context.Context, r *run) {
	first := true
	for ctx.Err() == nil {
		phase := r.phase.Load()
		if phase == done {
			return
		}
		measured := phase == measuring
		if measured && r.budget.Add(-1) < 0 {
			r.spentOnce.Do(func() { close(r.spent) })
			return
		}
		start := time.Now()
		n, err := get(ctx, r.client, r.url)
		end := time.Now()
		if first {
			first = false
			if r.firstPending.Add(-1) == 0 {
				close(r.firstDone)
			}
		}
		if !measured {
			w.warmup++
			continue
		}
		w.bytes += n
		if err != nil {
			w.errors++
			if w.firstErr == nil {
				w.firstErr = err
			}
			continue
		}
		w.latencies = append(w.latencies, end.Sub(start))
	}
}

// result merges the workers' records.
func (r *run) result(workers []worker) Result {
	var res Result
	for i := range workers {
		w := &workers[i]
		res.Latencies = append(res.Latencies, w.latencies...)
		res.Errors += w.errors
		res.WarmupRequests += w.warmup
		res.Bytes += w.bytes
		if res.FirstErr == nil {
			res.FirstErr = w.firstErr
		}
	}
	res.Requests = len(res.Latencies) + res.Errors
	res.Elapsed = r.measureTo.Sub(r.measureFrom)
	SortDurations(res.Latencies)
	return res
}

// get sends one GET and reads the whole body.
func get(ctx context.Context, c *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode/100 != 2 {
		err = errStatus{resp.Status}
	}
	return n, err
}

// Stream downloads path once and returns the bytes read and the time taken.
func Stream(ctx context.Context, ep Endpoint, path string) (int64, time.Duration, error) {
	transport := NewTransport(ep, NewConnection, 1)
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport}
	start := time.Now()
	n, err := get(ctx, client, ep.BaseURL+path)
	elapsed := time.Since(start)
	if err != nil {
		return n, elapsed, fmt.Errorf("failed to stream %s from %s: %w", path, ep.Name, err)
	}
	if n == 0 {
		return 0, elapsed, errors.New("stream returned no data")
	}
	return n, elapsed, nil
}
