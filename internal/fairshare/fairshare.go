// Package fairshare keeps one client of the gateway from starving the
// others. It counts what each client holds (open connections, requests in
// flight, hijacked streams) against that client's caps, and meters its
// request rate with a token bucket.
//
// # Clients and roles
//
// A client is a key: the gateway uses the identity's CN, which is the
// certificate's name (stable across a renewal, when the old and the new
// certificate briefly overlap) or "uid:N" for a peer of the local socket.
// Caps come with each call, so that a reload that changes them applies to
// the next acquisition without touching what is held. Every holding is
// also counted under the role it was taken with, for the per-role gauges:
// metrics are labelled by role, never by client, to bound their
// cardinality.
//
// # Releasing
//
// Acquire returns a release function that is safe to call more than once
// and from any goroutine; callers defer it, so that a panic or a hijacked
// connection's end gives the slot back.
package fairshare

import (
	"math"
	"sort"
	"sync"
	"time"
)

// Kind is one of the things a client's caps bound.
type Kind uint8

// Kinds, as metrics and config name them.
const (
	Connections Kind = iota
	Requests
	Streams
	Rate
	numKinds
)

// Held are the kinds that are held and released; Rate is metered.
var Held = []Kind{Connections, Requests, Streams}

// Kinds lists every kind, for metrics exported at zero.
var Kinds = []Kind{Connections, Requests, Streams, Rate}

// String is the kind's name in config keys and metric labels.
func (k Kind) String() string {
	switch k {
	case Connections:
		return "connections"
	case Requests:
		return "requests"
	case Streams:
		return "streams"
	case Rate:
		return "rate"
	}
	return "unknown"
}

// Limits are one client's caps. A cap of 0 or less is no cap; a Rate of
// 0 or less is no rate limit.
type Limits struct {
	Connections, Requests, Streams int
	Rate                           float64 // requests per second, refilled continuously
	Burst                          int     // requests allowed at once after a quiet spell
}

func (l Limits) cap(k Kind) int {
	switch k {
	case Connections:
		return l.Connections
	case Requests:
		return l.Requests
	case Streams:
		return l.Streams
	}
	return 0
}

// client is what one key holds, and its bucket.
type client struct {
	held [numKinds]int
	// tokens is the bucket's level at stamp. The bucket is hand-written
	// (golang.org/x/time/rate is not a dependency, and this is a dozen
	// lines): it must take a token only when one is there, never wait,
	// and live in the same map, under the same lock, as the counts.
	tokens float64
	stamp  time.Time
	fresh  bool // the bucket has never been used: it starts full
}

// Limiter counts every client's holdings. The zero value is not usable;
// call New.
type Limiter struct {
	now func() time.Time

	mu        sync.Mutex
	clients   map[string]*client
	roles     map[string]*[numKinds]int
	lastSweep int // len(clients) after the last sweep of idle clients
}

// New returns an empty Limiter; now is its clock (nil: time.Now).
func New(now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{now: now, clients: map[string]*client{}, roles: map[string]*[numKinds]int{}}
}

// Acquire takes one k (Connections, Requests or Streams) for key, counted
// under role, if key holds fewer than lim allows. It returns the release
// function, or ok false and the number held when key is at its cap.
func (l *Limiter) Acquire(key, role string, k Kind, lim Limits) (release func(), held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.client(key)
	if n := lim.cap(k); n > 0 && c.held[k] >= n {
		return nil, c.held[k], false
	}
	c.held[k]++
	r := l.role(role)
	r[k]++
	var once sync.Once
	return func() { once.Do(func() { l.release(key, role, k) }) }, c.held[k], true
}

func (l *Limiter) release(key, role string, k Kind) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[key]; c != nil {
		c.held[k]--
	}
	if r := l.roles[role]; r != nil {
		r[k]--
		if *r == ([numKinds]int{}) {
			delete(l.roles, role) // a role removed by a reload leaves the gauges
		}
	}
}

// Take takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is there.
func (l *Limiter) Take(key string, lim Limits) (ok bool, wait time.Duration) {
	if lim.Rate <= 0 {
		return true, 0
	}
	burst := float64(max(lim.Burst, 1))
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.client(key)
	c.tokens = c.level(now, lim.Rate, burst)
	c.stamp, c.fresh = now, false
	if c.tokens < 1 {
		return false, time.Duration((1 - c.tokens) / lim.Rate * float64(time.Second))
	}
	c.tokens--
	return true, 0
}

// level is the bucket's level at now, refilled at rate and capped at
// burst (a reload may have lowered it).
func (c *client) level(now time.Time, rate, burst float64) float64 {
	if c.fresh {
		return burst
	}
	elapsed := max(now.Sub(c.stamp).Seconds(), 0) // a clock step back refills nothing
	return math.Min(burst, c.tokens+elapsed*rate)
}

// client returns key's entry, creating it; l.mu is held. Entries of
// clients that hold nothing are swept when the map has doubled since the
// last sweep, so that it stays proportional to the clients seen recently.
func (l *Limiter) client(key string) *client {
	if c := l.clients[key]; c != nil {
		return c
	}
	if len(l.clients) >= 2*l.lastSweep+64 {
		l.sweep()
	}
	c := &client{fresh: true}
	l.clients[key] = c
	return c
}

// role returns role's counts, creating them; l.mu is held.
func (l *Limiter) role(name string) *[numKinds]int {
	r := l.roles[name]
	if r == nil {
		r = new([numKinds]int)
		l.roles[name] = r
	}
	return r
}

// sweepAge is how long a client that holds nothing keeps its bucket: a
// client must not get a full burst back by dropping its connections, and
// any bucket with a sane rate refills well within a minute.
const sweepAge = time.Minute

func (l *Limiter) sweep() {
	now := l.now()
	for key, c := range l.clients {
		if c.held == ([numKinds]int{}) && (c.fresh || now.Sub(c.stamp) > sweepAge) {
			delete(l.clients, key)
		}
	}
	l.lastSweep = len(l.clients)
}

// Held returns how many k key holds.
func (l *Limiter) Held(key string, k Kind) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.clients[key]; c != nil {
		return c.held[k]
	}
	return 0
}

// RoleUse is what the clients of one role hold together.
type RoleUse struct {
	Role                           string
	Connections, Requests, Streams int
}

// ByRole returns what every role's clients hold, sorted by role; roles
// whose clients hold nothing are left out.
func (l *Limiter) ByRole() []RoleUse {
	l.mu.Lock()
	out := make([]RoleUse, 0, len(l.roles))
	for name, r := range l.roles {
		out = append(out, RoleUse{Role: name, Connections: r[Connections], Requests: r[Requests], Streams: r[Streams]})
	}
	l.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out
}
