package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dockgate/dockgate/bench/internal/load"
	"github.com/dockgate/dockgate/internal/dockertest"
)

// The fair-share comparison (limits.per_client): client B, the bench
// client, runs the docker CLI's pattern (a new mTLS connection per
// request, GET /_ping, c=8) alone, then while client A, "hog", holds
// each of its caps and keeps asking for more. B's p99 and error rate
// should not move: A's refusals are 429s that cost the gateway a request
// each, and A never holds more than its caps. The caps of A's role are
// the defaults, scaled so that each pressure reaches exactly one of them;
// B is admin, whose rate is unbounded here so that the closed loop
// measures latency rather than B's own bucket.

const (
	hogClient       = "hog"
	fairShareName   = "fairshare"
	hogConnections  = 64
	hogRequests     = 32
	hogStreams      = 16
	hogRetryWorkers = 2 // A's loops asking for more, flat out, as a runaway script does
	// hogSettle is how long A's holds may take to come: its refused
	// retries of the previous measurement spent its tokens (burst 100 at
	// 50/s refills in 2 s), and the gateway frees the slots of A's closed
	// waits and streams as it notices them.
	hogSettle = 5 * time.Second
)

// fairShareLimits are the lines under limits: of the fair-share gateway.
const fairShareLimits = `  max_connections: 256
  per_client: {connections: 64, requests: 64, streams: 32, rate: 1000000, burst: 1000000}
`

// fairSharePolicy gives A its role and B the admin role.
var fairSharePolicy = fmt.Sprintf(`audit:
  path: "off"
roles:
  hog:
    allow: [system.*, container.*]
    limits: {connections: %d, requests: %d, streams: %d, rate: 50, burst: 100}
clients:
  - cn: %s
    role: hog
  - group: %s
    role: admin
`, hogConnections, hogRequests, hogStreams, hogClient, clientGroup)

// pressure is what A does during one measurement of B: hold is opened
// first and kept, then retry runs in hogRetryWorkers loops until the
// measurement ends. name says which cap A is at.
type pressure struct {
	name  string
	hold  func(ctx context.Context, a *hog) error
	retry func(a *hog, c *hogConn) (status int, err error)
}

var pressures = []pressure{
	{name: "nothing"},
	{name: fmt.Sprintf("connections: %d open, more dialled", hogConnections),
		hold: func(ctx context.Context, a *hog) error {
			return a.holdN(hogConnections, "GET", "/_ping", http.StatusOK, true)
		},
		retry: func(a *hog, c *hogConn) (int, error) {
			c.close() // a new connection each time: the connection cap answers it
			return c.ask("GET", "/_ping", "", true)
		}},
	{name: fmt.Sprintf("requests: %d container waits, more asked", hogRequests),
		hold: func(ctx context.Context, a *hog) error {
			return a.holdN(hogRequests, "POST", "/containers/"+a.container+"/wait", http.StatusOK, false)
		},
		retry: func(a *hog, c *hogConn) (int, error) {
			return c.ask("POST", "/containers/"+a.container+"/wait", "", false)
		}},
	{name: fmt.Sprintf("streams: %d attaches, more asked", hogStreams),
		hold: func(ctx context.Context, a *hog) error {
			return a.holdN(hogStreams, "POST", a.attachPath(), http.StatusSwitchingProtocols, false)
		},
		retry: func(a *hog, c *hogConn) (int, error) {
			return c.ask("POST", a.attachPath(), "Connection: Upgrade\r\nUpgrade: tcp\r\n", false)
		}},
	{name: "rate: pings flat out",
		retry: func(a *hog, c *hogConn) (int, error) { return c.ask("GET", "/_ping", "", true) }},
	{name: fmt.Sprintf("every cap at once: %d waits, %d attaches, %d connections in all; more dialled", hogRequests, hogStreams, hogConnections),
		// The waits last: a ping takes a request slot for its answer, and
		// an attach one until it becomes a stream, so neither could start
		// once the waits hold every request slot.
		hold: func(ctx context.Context, a *hog) error {
			if err := a.holdN(hogConnections-hogRequests-hogStreams, "GET", "/_ping", http.StatusOK, true); err != nil {
				return err
			}
			if err := a.holdN(hogStreams, "POST", a.attachPath(), http.StatusSwitchingProtocols, false); err != nil {
				return err
			}
			return a.holdN(hogRequests, "POST", "/containers/"+a.container+"/wait", http.StatusOK, false)
		},
		retry: func(a *hog, c *hogConn) (int, error) {
			c.close() // every connection A may hold is held: a new one is over the cap
			return c.ask("GET", "/_ping", "", true)
		}},
}

// fairShareResult is B's load per pressure and round, and what A got.
type fairShareResult struct {
	samples    map[string][]sample // by pressure name
	hogAsked   map[string]int
	hogRefused map[string]int
	// hogOther counts A's retries that were not refused: answered (a
	// token of the rate cap, a slot that came free) or failed; the first
	// of them is described in hogOtherFirst.
	hogOther      map[string]int
	hogOtherFirst map[string]string
}

// runFairShare starts the fair-share gateway and a running container
// for A to wait on and attach to, then measures B under each pressure in
// interleaved rounds.
func runFairShare(ctx context.Context, env *environment, opts options, log io.Writer) (*fairShareResult, error) {
	s := env.states[gatewayPolicy]
	if _, err := s.dockgate(ctx, "issue", "client", hogClient, "--key-type", string(s.keyType)); err != nil {
		return nil, fmt.Errorf("failed to issue the second client: %w", err)
	}
	g, err := startGatewayWith(ctx, env, gatewayPolicy, fairShareName, fairSharePolicy, fairShareLimits)
	if g != nil {
		defer g.stop()
	}
	if err != nil {
		return nil, err
	}
	hogTLS, err := s.clientTLSOf(hogClient)
	if err != nil {
		return nil, err
	}
	bTLS, err := s.clientTLS()
	if err != nil {
		return nil, err
	}
	api := newDaemonAPI(env.daemon.Host())
	defer api.http.CloseIdleConnections()
	id, err := api.runSleeper(ctx, "bench-fairshare")
	if err != nil {
		return nil, err
	}
	defer api.call(context.Background(), http.MethodDelete, "/containers/"+id+"?force=1", "", nil)

	b := load.Endpoint{Name: "client B", BaseURL: "https://" + g.addr, TLS: bTLS}
	res := &fairShareResult{samples: map[string][]sample{}, hogAsked: map[string]int{}, hogRefused: map[string]int{}, hogOther: map[string]int{}, hogOtherFirst: map[string]string{}}
	for round := range opts.rounds {
		for k := range pressures {
			p := pressures[(k+round)%len(pressures)]
			fmt.Fprintf(log, "bench: fair share round %d/%d, A holds %s\n", round+1, opts.rounds, p.name)
			a := &hog{addr: g.addr, tls: hogTLS, container: id}
			smp, err := a.during(ctx, p, func() (sample, error) {
				r, err := load.Run(ctx, b, load.Spec{Path: pathPing, Concurrency: 8, Mode: load.NewConnection,
					Warmup: opts.warmup, Duration: opts.duration, MaxRequests: opts.maxRequests})
				return sample{rps: r.RPS(), p50: r.Percentile(50), p99: r.Percentile(99), errors: r.Errors, firstErr: r.FirstErr}, err
			})
			if err != nil {
				return nil, fmt.Errorf("fair share, A holding %s: %w", p.name, err)
			}
			res.samples[p.name] = append(res.samples[p.name], smp)
			res.hogAsked[p.name] += int(a.asked.Load())
			res.hogRefused[p.name] += int(a.refused.Load())
			res.hogOther[p.name] += int(a.asked.Load() - a.refused.Load())
			if first := a.other(); first != "" && res.hogOtherFirst[p.name] == "" {
				res.hogOtherFirst[p.name] = first
			}
		}
	}
	return res, nil
}

// runSleeper creates and starts a busybox loop that prints a line every
// 100 ms, without a network.
func (a *daemonAPI) runSleeper(ctx context.Context, name string) (string, error) {
	body, err := json.Marshal(map[string]any{
		// A line every 100 ms: an attach whose client has gone ends at
		// the next write, so A's closed streams give their slots back.
		"Image": dockertest.ImageName, "Cmd": []string{"sh", "-c", "while :; do echo .; sleep 0.1; done"},
		"HostConfig": map[string]any{"NetworkMode": "none"},
	})
	if err != nil {
		return "", err
	}
	out, err := a.call(ctx, http.MethodPost, "/containers/create?name="+name, "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	var created struct{ ID string }
	if err := json.Unmarshal(out, &created); err != nil {
		return "", err
	}
	_, err = a.call(ctx, http.MethodPost, "/containers/"+created.ID+"/start", "", nil)
	return created.ID, err
}

// hog is client A during one measurement.
type hog struct {
	addr      string
	tls       *tls.Config
	container string
	held      []*hogConn
	asked     atomic.Int64
	refused   atomic.Int64
	mu        sync.Mutex
	otherMsg  string
}

func (a *hog) attachPath() string {
	return "/containers/" + a.container + "/attach?stream=1&stdout=1"
}

func (a *hog) other() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.otherMsg
}

// holdN opens n connections that each get want for one request, and
// keeps them; done says the answer ends (a ping) rather than is held.
func (a *hog) holdN(n int, method, path string, want int, done bool) error {
	extra := ""
	if want == http.StatusSwitchingProtocols {
		extra = "Connection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	deadline := time.Now().Add(hogSettle)
	for i := range n {
		c := &hogConn{a: a}
		status, err := c.askHead(method, path, extra, done)
		for status == http.StatusTooManyRequests && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			status, err = c.askHead(method, path, extra, done)
		}
		if err != nil || status != want {
			return fmt.Errorf("hold %d of %d of client A (%s %s): status %d, %v", i+1, n, method, path, status, err)
		}
		a.held = append(a.held, c)
	}
	return nil
}

// during runs measure while A applies p, and releases what A held after.
func (a *hog) during(ctx context.Context, p pressure, measure func() (sample, error)) (sample, error) {
	defer func() {
		for _, c := range a.held {
			c.close()
		}
	}()
	if p.hold != nil {
		if err := p.hold(ctx, a); err != nil {
			return sample{}, err
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if p.retry != nil {
		for range hogRetryWorkers {
			wg.Go(func() {
				c := &hogConn{a: a}
				defer c.close()
				for {
					select {
					case <-stop:
						return
					default:
					}
					status, err := p.retry(a, c)
					a.asked.Add(1)
					if status == http.StatusTooManyRequests {
						a.refused.Add(1)
					} else {
						a.note(status, err)
					}
				}
			})
		}
	}
	s, err := measure()
	close(stop)
	wg.Wait()
	return s, err
}

func (a *hog) note(status int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.otherMsg == "" {
		a.otherMsg = fmt.Sprintf("status %d, %v", status, err)
	}
}

// hogConn is one of A's connections, dialled on first use.
type hogConn struct {
	a    *hog
	conn *tls.Conn
	br   *bufio.Reader
}

func (c *hogConn) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// ask sends one request; whole says its answer ends (a ping). An answer
// that is held instead (a wait, a stream) ends the connection, which
// cannot carry another request.
func (c *hogConn) ask(method, path, extra string, whole bool) (int, error) {
	status, err := c.askHead(method, path, extra, whole)
	if !whole && status < 400 {
		c.close()
	}
	return status, err
}

// askHead sends one request and reads the head of its answer, and the
// body when whole is set or the answer is a refusal.
func (c *hogConn) askHead(method, path, extra string, whole bool) (int, error) {
	if c.conn == nil {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", c.a.addr, c.a.tls)
		if err != nil {
			return 0, err
		}
		c.conn, c.br = conn, bufio.NewReader(conn)
	}
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.conn, "%s /v1.41%s HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n%s\r\n", method, strings.TrimPrefix(path, "/v1.41"), extra); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	c.conn.SetDeadline(time.Time{})
	if whole || resp.StatusCode >= 400 {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Close {
			c.close()
		}
	}
	return resp.StatusCode, err
}

// stats are B's medians over the rounds under pressure name.
func (r *fairShareResult) stats(name string) (rps float64, p50, p99 time.Duration, errRate float64, firstErr error) {
	var rpss []float64
	var p50s, p99s []time.Duration
	var errs, total float64
	for _, s := range r.samples[name] {
		rpss = append(rpss, s.rps)
		p50s, p99s = append(p50s, s.p50), append(p99s, s.p99)
		errs += float64(s.errors)
		total += float64(s.errors) + s.rps
		if firstErr == nil {
			firstErr = s.firstErr
		}
	}
	if total > 0 {
		errRate = errs / total
	}
	return load.Median(rpss), load.MedianDuration(p50s), load.MedianDuration(p99s), errRate, firstErr
}

func (r *fairShareResult) print(w io.Writer) {
	fmt.Fprintf(w, "Fair share: client B (admin) opens a new mTLS connection per GET /_ping at c=8 while client A (role hog: "+
		"%d connections, %d requests, %d streams, 50/s burst 100) holds one of its caps and %d loops of A ask for more, flat out. "+
		"B's error rate should stay 0 and its p99 near the first row's; what moves it is A's loops competing for the CPUs.\n\n",
		hogConnections, hogRequests, hogStreams, hogRetryWorkers)
	fmt.Fprintln(w, "| A holds | B req/s | B p50 | B p99 | B errors | A asked | A refused (429) | A not refused |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, p := range pressures {
		rps, p50, p99, errRate, firstErr := r.stats(p.name)
		errText := fmt.Sprintf("%.2f%%", errRate*100)
		if firstErr != nil {
			errText += " (" + firstErr.Error() + ")"
		}
		other := fmt.Sprint(r.hogOther[p.name])
		if o := r.hogOtherFirst[p.name]; o != "" {
			other += " (first: " + o + ")"
		}
		fmt.Fprintf(w, "| %s | %.0f | %s | %s | %s | %d | %d | %s |\n", p.name, rps, formatMicros(p50), formatMicros(p99), errText,
			r.hogAsked[p.name], r.hogRefused[p.name], other)
	}
}
