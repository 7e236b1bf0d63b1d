package gateway

// Per-client fair share (internal/fairshare): each client, by CN (a
// certificate's name, or "uid:N" on the local socket), may hold a capped
// number of connections, requests in flight and hijacked streams, and
// send at a capped rate, so that one client at its caps never affects
// another. The caps come from the client's role in the Material in force
// when each is taken, so a reload applies to the next one.
//
// A connection is counted when its identity is known: at the end of the
// TLS handshake (connTLSConfig), or at accept on the local socket. One
// over its client's cap is not refused at the handshake, which the docker
// CLI would report as a bare TLS error; it is accepted, its first request
// is answered 429 with the reason, and it is closed. It is counted in
// max_connections meanwhile, at most overCapGrace, which is why the
// per-client cap must stay below that global one.

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/dockgate/dockgate/internal/fairshare"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/policy"
)

// overCapGrace is how long a connection over its client's cap stays open
// to be told so: the docker CLI sends its first request within
// milliseconds of the handshake; a client that says nothing gives its
// global slot back after this.
const overCapGrace = 2 * time.Second

// noRole labels the metrics of clients no clients: entry matches; the
// parentheses keep it apart from any role name.
const noRole = "(none)"

// connShare is what a connection holds of its client's fair share.
type connShare struct {
	mu      sync.Mutex
	closed  bool
	release func()
	// over is the 429 message for a connection over its client's cap;
	// empty when it is within it. cut closes such a connection after
	// overCapGrace.
	over string
	cut  *time.Timer
}

// admitConn counts cc against its client's connection cap, or marks it
// over the cap so that its first request is refused.
func (g *Gateway) admitConn(cc *clientConn, id *identity.Identity) {
	pol := g.material.Load().Policy
	role, lim := roleLimits(pol, id)
	cc.share.mu.Lock()
	defer cc.share.mu.Unlock()
	if cc.share.closed || cc.share.release != nil || cc.share.over != "" {
		return // closed meanwhile, or counted by an earlier handshake
	}
	release, held, ok := g.share.Acquire(id.CN, role, fairshare.Connections, fairshare.Limits(lim.ClientLimits))
	if ok {
		cc.share.release = release
		return
	}
	g.metrics.limited(role, fairshare.Connections)
	g.log.Warn("client over its connection cap", "cn", id.CN, "role", role, "remote", cc.remote, "open", held, "cap", lim.Connections)
	cc.share.over = fmt.Sprintf("dockgate: client %s already has %d connections open, the cap for role %s; close some, or raise %s in the gateway config",
		id.CN, held, roleName(role), lim.Key("connections"))
	cc.share.cut = time.AfterFunc(overCapGrace, func() { cc.raw.Close() })
}

// releaseConn gives back cc's connection slot; it runs when cc closes.
func (cc *clientConn) releaseConn() {
	cc.share.mu.Lock()
	cc.share.closed = true
	release := cc.share.release
	if cc.share.cut != nil {
		cc.share.cut.Stop()
	}
	cc.share.mu.Unlock()
	if release != nil {
		release()
	}
}

// overCap is the 429 message of a connection over its client's cap, or "".
func (cc *clientConn) overCap() string {
	if cc == nil {
		return ""
	}
	cc.share.mu.Lock()
	defer cc.share.mu.Unlock()
	return cc.share.over
}

// requestShare is a request's hold on its client's fair share.
type requestShare struct {
	g       *Gateway
	key     string
	role    string
	lim     policy.Limits
	release func()
}

// admitRequest checks the connection, the rate and the requests in flight
// of id's client; it returns the refusal when one is over its cap, or the
// hold, to be released when the request ends.
func (g *Gateway) admitRequest(cc *clientConn, id *identity.Identity, m *Material) (*requestShare, *outcome) {
	role, lim := roleLimits(m.Policy, id)
	if msg := cc.overCap(); msg != "" {
		out := refusedLimit(id, role, msg, "client over its connection cap")
		out.closeConn = true
		return nil, &out
	}
	if ok, wait := g.share.Take(id.CN, fairshare.Limits(lim.ClientLimits)); !ok {
		g.metrics.limited(role, fairshare.Rate)
		out := refusedLimit(id, role, fmt.Sprintf("dockgate: client %s is over the request rate of role %s (%g per second, burst %d); retry in %s, or raise %s in the gateway config",
			id.CN, roleName(role), lim.Rate, max(lim.Burst, 1), wait.Round(time.Millisecond), lim.Key("rate")), "client over its request rate")
		out.retryAfter = wait
		return nil, &out
	}
	release, held, ok := g.share.Acquire(id.CN, role, fairshare.Requests, fairshare.Limits(lim.ClientLimits))
	if !ok {
		g.metrics.limited(role, fairshare.Requests)
		out := refusedLimit(id, role, fmt.Sprintf("dockgate: client %s already has %d requests in flight, the cap for role %s; wait for some to end, or raise %s in the gateway config",
			id.CN, held, roleName(role), lim.Key("requests")), "client over its requests cap")
		return nil, &out
	}
	return &requestShare{g: g, key: id.CN, role: role, lim: lim, release: release}, nil
}

// toStream trades the request's slot for a stream slot, before the
// request may be hijacked: a stream lives as long as the client wants
// and is capped on its own. It returns the refusal when the client holds
// its cap of streams.
func (s *requestShare) toStream(id *identity.Identity) *outcome {
	release, held, ok := s.g.share.Acquire(s.key, s.role, fairshare.Streams, fairshare.Limits(s.lim.ClientLimits))
	if !ok {
		s.g.metrics.limited(s.role, fairshare.Streams)
		out := refusedLimit(id, s.role, fmt.Sprintf("dockgate: client %s already has %d attach/exec streams open, the cap for role %s; end some, or raise %s in the gateway config",
			id.CN, held, roleName(s.role), s.lim.Key("streams")), "client over its streams cap")
		return &out
	}
	s.release()
	s.release = release
	return nil
}

// done releases whatever the request holds; safe more than once.
func (s *requestShare) done() {
	if s != nil {
		s.release()
	}
}

// roleLimits is id's role (noRole when none matches) and its limits.
func roleLimits(p *policy.Policy, id *identity.Identity) (string, policy.Limits) {
	role, ok := p.RoleOf(*id)
	if !ok {
		return noRole, p.Limits("")
	}
	return role, p.Limits(role)
}

func roleName(role string) string {
	if role == noRole {
		return "(no clients: entry matches)"
	}
	return role
}

// refusedLimit is a request refused because its client is over a cap.
func refusedLimit(id *identity.Identity, role, message, reason string) outcome {
	out := refused(id, http.StatusTooManyRequests, message, reason)
	out.label = "limited"
	if role != noRole {
		out.verdict.Role = role
	}
	return out
}

// retryAfterSeconds is the Retry-After value for a wait: whole seconds,
// rounded up, at least 1.
func retryAfterSeconds(wait time.Duration) string {
	return strconv.Itoa(max(int((wait+time.Second-1)/time.Second), 1))
}
