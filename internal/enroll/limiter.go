package enroll

import (
	"sync"
	"time"
)

// maxTrackedAddresses bounds the limiter's memory. When more addresses have
// recent failures, expired entries are dropped first, then the oldest.
const maxTrackedAddresses = 4096

// Limiter counts failed attempts per source address in a fixed window: the
// first failure opens a window, and an address with max failures in its
// window is refused until the window closes. Successes do not count, so
// people who get it right are never slowed down.
type Limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	seen map[string]*failures
}

type failures struct {
	count int
	since time.Time
}

// NewLimiter allows max failures per address within window.
func NewLimiter(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, seen: map[string]*failures{}}
}

// Allow reports whether addr may try now and, if not, how long it must wait.
func (l *Limiter) Allow(addr string, now time.Time) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(addr, now)
	if f == nil || f.count < l.max {
		return true, 0
	}
	return false, f.since.Add(l.window).Sub(now)
}

// Fail records a failed attempt from addr.
func (l *Limiter) Fail(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(addr, now)
	if f == nil {
		l.makeRoom(now)
		f = &failures{since: now}
		l.seen[addr] = f
	}
	f.count++
}

// current returns addr's failures in an open window, forgetting a closed one.
func (l *Limiter) current(addr string, now time.Time) *failures {
	f := l.seen[addr]
	if f != nil && !now.Before(f.since.Add(l.window)) {
		delete(l.seen, addr)
		return nil
	}
	return f
}

func (l *Limiter) makeRoom(now time.Time) {
	if len(l.seen) < maxTrackedAddresses {
		return
	}
	var oldest string
	for addr, f := range l.seen {
		if !now.Before(f.since.Add(l.window)) {
			delete(l.seen, addr)
		} else if oldest == "" || f.since.Before(l.seen[oldest].since) {
			oldest = addr
		}
	}
	if len(l.seen) >= maxTrackedAddresses && oldest != "" {
		delete(l.seen, oldest)
	}
}
