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
//
// Checking and counting are one step (Reserve): each attempt is counted as
// a failure before it is evaluated and the count is given back if it
// succeeds. Checking first and counting after the evaluation would let
// every attempt that arrives while others are being evaluated through,
// however many there are.
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

// Reserve reports whether addr may make an attempt now and, if not, how
// long it must wait. An allowed attempt is counted as a failure at once;
// call release if it turns out not to be one (it succeeded, or failed on
// our side), to give the count back.
func (l *Limiter) Reserve(addr string, now time.Time) (release func(), ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.current(addr, now)
	if f != nil && f.count >= l.max {
		return func() {}, false, f.since.Add(l.window).Sub(now)
	}
	if f == nil {
		l.makeRoom(now)
		f = &failures{since: now}
		l.seen[addr] = f
	}
	f.count++
	var once sync.Once
	return func() { once.Do(func() { l.giveBack(addr, f) }) }, true, 0
}

// giveBack uncounts one attempt in window f, unless that window has since
// closed or been evicted.
func (l *Limiter) giveBack(addr string, f *failures) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[addr] == f && f.count > 0 {
		f.count--
	}
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
