package gateway

import (
	"bufio"
	"context"
	"net"
	"sync"
	"time"
)

// Idle daemon connections: how many, and for how long.
const (
	// daemonMaxIdle caps the idle connections kept: the docker CLI and
	// load tools send many requests at once, and a smaller pool would
	// redial the daemon on almost every request under load.
	daemonMaxIdle = 256
	// daemonMinIdle idle connections are kept past the idle timeout, so
	// that a quiet gateway answers the next docker command (a /_ping and
	// the command itself) without dialling.
	daemonMinIdle = 2
)

// daemonConn is one connection to the daemon.
type daemonConn struct {
	conn      net.Conn
	alive     *aliveCheck // nil when the platform cannot check
	br        *bufio.Reader
	bw        *bufio.Writer
	opened    time.Time
	idleSince time.Time
	reused    bool        // taken from the pool, not freshly dialled
	stop      func() bool // set while guarded
	deadline  bool        // guard set a deadline
}

// guard ties the connection to ctx: its deadline, and its end, which makes
// a blocked read or write fail at once (a client that goes away must not
// leave a read of a quiet stream blocked). A guarded connection stays as
// it is.
func (dc *daemonConn) guard(ctx context.Context) {
	if dc.stop != nil {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		dc.conn.SetDeadline(dl)
		dc.deadline = true
	}
	dc.stop = context.AfterFunc(ctx, dc.expire)
}

// unguard undoes guard. It is false when the context ended first: the
// connection may then have failed half-way and must be closed.
func (dc *daemonConn) unguard() bool {
	ok := true
	if dc.stop != nil {
		ok = dc.stop()
		dc.stop = nil
	}
	if dc.deadline {
		dc.conn.SetDeadline(time.Time{})
		dc.deadline = false
	}
	return ok
}

// expire makes reads and writes on the connection fail at once.
func (dc *daemonConn) expire() { dc.conn.SetDeadline(time.Unix(1, 0)) }

// idlePool keeps idle daemon connections. Connections idle longer than
// timeout are closed by a reaper that runs only while more than
// daemonMinIdle connections are idle (a timer, not a goroutine of its
// own); a connection found dead makes every idle connection opened
// before it suspect.
type idlePool struct {
	mu      sync.Mutex
	idle    []*daemonConn // least recently used first
	max     int
	min     int
	timeout time.Duration
	now     func() time.Time
	reaper  *time.Timer // armed while len(idle) > min
	closed  bool
}

func newIdlePool(timeout time.Duration) *idlePool {
	return &idlePool{max: daemonMaxIdle, min: daemonMinIdle, timeout: timeout, now: time.Now}
}

// get takes the most recently used idle connection, or returns nil.
func (p *idlePool) get() *daemonConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	dc := p.idle[n-1]
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return dc
}

// put returns a connection that can carry another request.
func (p *idlePool) put(dc *daemonConn) {
	p.mu.Lock()
	if p.closed || len(p.idle) >= p.max {
		p.mu.Unlock()
		dc.conn.Close()
		return
	}
	dc.idleSince = p.now()
	p.idle = append(p.idle, dc)
	if len(p.idle) > p.min && p.reaper == nil {
		p.reaper = time.AfterFunc(p.timeout, p.reap)
	}
	p.mu.Unlock()
}

// reap closes the connections idle for longer than the timeout, keeping
// the min most recently used, and re-arms itself for the next expiry.
func (p *idlePool) reap() {
	p.mu.Lock()
	now := p.now()
	expired := 0
	for len(p.idle)-expired > p.min && now.Sub(p.idle[expired].idleSince) >= p.timeout {
		expired++
	}
	closing := p.remove(func(i int, _ *daemonConn) bool { return i < expired })
	p.reaper = nil
	if len(p.idle) > p.min && !p.closed {
		next := p.idle[0].idleSince.Add(p.timeout).Sub(now)
		p.reaper = time.AfterFunc(max(next, time.Millisecond), p.reap)
	}
	p.mu.Unlock()
	closeConns(closing)
}

// closeOpenedBefore closes the idle connections opened before t: after
// one of them was found dead, the others lead to the same daemon, which
// has most likely restarted.
func (p *idlePool) closeOpenedBefore(t time.Time) int {
	p.mu.Lock()
	closing := p.remove(func(_ int, dc *daemonConn) bool { return dc.opened.Before(t) })
	p.mu.Unlock()
	closeConns(closing)
	return len(closing)
}

// close closes every idle connection; later puts close theirs.
func (p *idlePool) close() {
	p.mu.Lock()
	p.closed = true
	closing := p.idle
	p.idle = nil
	if p.reaper != nil {
		p.reaper.Stop()
		p.reaper = nil
	}
	p.mu.Unlock()
	closeConns(closing)
}

// len is the number of idle connections (the idle connections gauge).
func (p *idlePool) len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

// remove takes the connections drop selects out of the pool and returns
// them; p.mu must be held.
func (p *idlePool) remove(drop func(int, *daemonConn) bool) []*daemonConn {
	var out []*daemonConn
	kept := p.idle[:0]
	for i, dc := range p.idle {
		if drop(i, dc) {
			out = append(out, dc)
		} else {
			kept = append(kept, dc)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	return out
}

func closeConns(conns []*daemonConn) {
	for _, dc := range conns {
		dc.conn.Close()
	}
}
