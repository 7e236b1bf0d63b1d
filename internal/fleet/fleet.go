// Package fleet keeps a gateway's row in the host registry: it registers
// the host when the gateway starts and moves its last_seen at every
// heartbeat, and it says which registered hosts a client may reach under
// the client rules.
package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/store"
)

// Registry is the part of the store the heartbeat uses.
type Registry interface {
	RegisterHost(ctx context.Context, h store.Host, now time.Time) error
	Heartbeat(ctx context.Context, name string, now time.Time) error
}

// Addresses are where clients dial a listener bound at ln: each name and
// IP address of the server certificate with ln's port, the ones a client
// on another machine can use first. A listener bound to one address keeps
// only the names that resolve to it (lookup resolves them).
func Addresses(server *x509.Certificate, ln net.Addr, lookup func(string) ([]net.IP, error)) []string {
	if ln == nil {
		return nil
	}
	tcp, ok := ln.(*net.TCPAddr)
	if !ok {
		return nil
	}
	addrs := enroll.DefaultAddresses(server, strconv.Itoa(tcp.Port))
	return enroll.BoundAddresses(addrs, tcp.String(), lookup)
}

// Heartbeat registers h, then moves its last_seen at every tick until ctx
// ends. A row that vanished (deleted by hand) is registered again. A
// failure is reported once through report(err), and its end through
// report(nil), so an outage of the store logs two lines, not one per
// tick. The first registration's error is returned at once, before any
// tick, through first (nil on success), so the caller can say whether the
// host is in the registry.
func Heartbeat(ctx context.Context, reg Registry, h store.Host, ticks <-chan time.Time, now func() time.Time, first func(error), report func(error)) {
	err := reg.RegisterHost(ctx, h, now())
	registered := err == nil
	first(err)
	failing := err != nil
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
		}
		t := now()
		if registered {
			err = reg.Heartbeat(ctx, h.Name, t)
			if errors.Is(err, store.ErrNotFound) {
				registered = false
			}
		}
		if !registered {
			if err = reg.RegisterHost(ctx, h, t); err == nil {
				registered = true
			}
		}
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil && !failing:
			report(err)
		case err == nil && failing:
			report(nil)
		}
		failing = err != nil
	}
}

// Reachable returns the registered hosts on which the client rules give
// the certificate (cn, groups) a role, with that role: the rules are
// judged with each host's name and labels, as its gateway judges them
// when the fleet's gateways share their client rules.
func Reachable(rules []config.ClientRule, hosts []store.Host, cn string, groups []string) []Reach {
	if identity.IsPeerCN(cn) {
		return nil // as the gateway: such a certificate matches no rule
	}
	var out []Reach
	for _, h := range hosts {
		host := config.Host{Name: h.Name, Labels: h.Labels}
		for _, r := range rules {
			if r.AppliesOn(host) && r.Matches(cn, groups) {
				out = append(out, Reach{Host: h, Role: r.Role})
				break
			}
		}
	}
	return out
}

// Reach is a host a client may use, and its role there.
type Reach struct {
	Host store.Host
	Role string
}

// List is the answer to a client asking which hosts it may use: the hosts
// Reachable gives it, each with its role and health at now. self names
// the answering host.
func List(self string, rules []config.ClientRule, hosts []store.Host, id identity.Identity, now time.Time) enroll.HostsAnswer {
	answer := enroll.HostsAnswer{Self: self, Hosts: []enroll.FleetHost{}}
	if id.Peer != nil {
		return answer // a local socket peer uses the socket, not contexts
	}
	for _, r := range Reachable(rules, hosts, id.CN, id.Groups) {
		answer.Hosts = append(answer.Hosts, enroll.FleetHost{
			Name: r.Host.Name, Addresses: r.Host.Addresses, Role: r.Role, Healthy: r.Host.Healthy(now),
		})
	}
	return answer
}

// Context is a docker context login writes for one host of the fleet.
type Context struct {
	Name      string // the context's name: the prefix and the host's name
	Host      string // tcp://HOST:PORT
	FleetHost enroll.FleetHost
}

// PlanContexts names one docker context per host of the answer, prefix
// followed by the host's name, dialling its first address; the host that
// answered is dialled at self (tcp://HOST:PORT, the address the client
// reached it at), and its context is current. A host without an address
// gets no context.
func PlanContexts(answer enroll.HostsAnswer, prefix, self string) (contexts []Context, current string) {
	for _, h := range answer.Hosts {
		c := Context{Name: prefix + h.Name, FleetHost: h}
		switch {
		case h.Name == answer.Self && self != "":
			c.Host = self
			current = c.Name
		case len(h.Addresses) > 0:
			c.Host = "tcp://" + h.Addresses[0]
		default:
			continue
		}
		contexts = append(contexts, c)
	}
	return contexts, current
}

// Conflict finds, among the registered hosts, a healthy one of h's name
// that is not h (other addresses, or another CA): another gateway
// registered under the same name, which this one's rows would overwrite.
func Conflict(registered []store.Host, h store.Host, now time.Time) (store.Host, bool) {
	for _, r := range registered {
		if r.Name == h.Name && r.Healthy(now) &&
			(!slices.Equal(r.Addresses, h.Addresses) || r.CAFingerprint != h.CAFingerprint) {
			return r, true
		}
	}
	return store.Host{}, false
}
