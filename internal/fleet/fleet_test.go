package fleet

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/store"
)

// fakeRegistry records each call on calls and answers with the next error
// of errs (nil once errs is empty).
type fakeRegistry struct {
	calls chan string
	errs  chan error
}

func (f *fakeRegistry) next() error {
	select {
	case err := <-f.errs:
		return err
	default:
		return nil
	}
}

func (f *fakeRegistry) RegisterHost(_ context.Context, h store.Host, _ time.Time) error {
	err := f.next()
	f.calls <- "register " + h.Name
	return err
}

func (f *fakeRegistry) Heartbeat(_ context.Context, name string, _ time.Time) error {
	err := f.next()
	f.calls <- "heartbeat " + name
	return err
}

func TestHeartbeat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	reg := &fakeRegistry{calls: make(chan string, 10), errs: make(chan error, 10)}
	ticks := make(chan time.Time)
	reports := make(chan error, 10)
	firsts := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Heartbeat(ctx, reg, store.Host{Name: "h1"}, ticks, time.Now,
			func(err error) { firsts <- err }, func(err error) { reports <- err })
	}()
	expect := func(want string) {
		t.Helper()
		if got := <-reg.calls; got != want {
			t.Fatalf("call %q, want %q", got, want)
		}
	}
	expect("register h1")
	if err := <-firsts; err != nil {
		t.Fatalf("first registration: %v", err)
	}
	ticks <- time.Now()
	expect("heartbeat h1")

	// The store fails twice: one report; the row is gone: registered
	// again; then it works: one report of the end.
	outage := errors.New("unreachable")
	reg.errs <- outage
	ticks <- time.Now()
	expect("heartbeat h1")
	reg.errs <- outage
	ticks <- time.Now()
	expect("heartbeat h1")
	reg.errs <- store.ErrNotFound
	ticks <- time.Now()
	expect("heartbeat h1")
	expect("register h1")
	ticks <- time.Now()
	expect("heartbeat h1")
	cancel()
	<-done
	close(reports)
	var got []error
	for err := range reports {
		got = append(got, err)
	}
	if len(got) != 2 || !errors.Is(got[0], outage) || got[1] != nil {
		t.Errorf("reports = %v, want the outage once, then nil once", got)
	}
}

func TestAddresses(t *testing.T) {
	cert := &x509.Certificate{DNSNames: []string{"localhost", "dock1.example.net", "*.example.net"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.7")}}
	lookup := func(host string) ([]net.IP, error) {
		if host == "dock1.example.net" {
			return []net.IP{net.ParseIP("192.0.2.7")}, nil
		}
		return nil, errors.New("no such host")
	}
	all := Addresses(cert, &net.TCPAddr{IP: net.IPv6unspecified, Port: 2376}, lookup)
	if want := []string{"dock1.example.net:2376", "192.0.2.7:2376", "localhost:2376", "127.0.0.1:2376"}; !slices.Equal(all, want) {
		t.Errorf("on every interface: %q, want %q", all, want)
	}
	one := Addresses(cert, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}, lookup)
	if want := []string{"dock1.example.net:40000", "192.0.2.7:40000"}; !slices.Equal(one, want) {
		t.Errorf("on 192.0.2.7: %q, want %q", one, want)
	}
	if Addresses(cert, nil, lookup) != nil {
		t.Error("no listener has addresses")
	}
}

func TestReachable(t *testing.T) {
	hosts := []store.Host{
		{Name: "p1", Labels: map[string]string{"env": "prod"}},
		{Name: "s1", Labels: map[string]string{"env": "staging"}},
		{Name: "s2", Labels: map[string]string{"env": "staging"}},
	}
	rules := []config.ClientRule{
		{Group: "dev", Role: config.RoleAdmin, Hosts: []string{"env=staging"}},
		{CN: "ops", Role: config.RoleOperator, Hosts: []string{"name=p1"}},
		{Group: "admins", Role: config.RoleAdmin},
		{CN: "*", Role: config.RoleReadOnly, Hosts: []string{"name=s2"}},
	}
	names := func(rs []Reach) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Host.Name+":"+r.Role)
		}
		return out
	}
	for _, tt := range []struct {
		cn     string
		groups []string
		want   []string
	}{
		{"alice", []string{"dev"}, []string{"s1:admin", "s2:admin"}},
		{"ops", nil, []string{"p1:operator", "s2:read-only"}},
		{"root", []string{"admins"}, []string{"p1:admin", "s1:admin", "s2:admin"}},
		{"bob", nil, []string{"s2:read-only"}},
		{"uid:0", []string{"admins"}, nil}, // a peer-like CN matches nothing
	} {
		if got := names(Reachable(rules, hosts, tt.cn, tt.groups)); !slices.Equal(got, tt.want) {
			t.Errorf("Reachable(%s %v) = %q, want %q", tt.cn, tt.groups, got, tt.want)
		}
	}
}

func TestList(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	hosts := []store.Host{
		{Name: "p1", Addresses: []string{"p1:2376"}, Labels: map[string]string{"env": "prod"}, LastSeen: now},
		{Name: "s1", Addresses: []string{"s1:2376"}, Labels: map[string]string{"env": "staging"}, LastSeen: now.Add(-time.Minute)},
	}
	rules := []config.ClientRule{{Group: "dev", Role: config.RoleAdmin, Hosts: []string{"env=staging"}}, {Group: "admins", Role: config.RoleAdmin}}
	got := List("p1", rules, hosts, identity.Identity{CN: "alice", Groups: []string{"dev"}}, now)
	want := enroll.HostsAnswer{Self: "p1", Hosts: []enroll.FleetHost{{Name: "s1", Addresses: []string{"s1:2376"}, Role: config.RoleAdmin, Healthy: false}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List(dev) = %+v, want %+v", got, want)
	}
	if got := List("p1", rules, hosts, identity.Identity{CN: "root", Groups: []string{"admins"}}, now); len(got.Hosts) != 2 || !got.Hosts[0].Healthy {
		t.Errorf("List(admins) = %+v, want both hosts, p1 healthy", got)
	}
	peer := identity.FromPeer(identity.Peer{UID: 0, User: "root", Groups: []string{"admins"}})
	if got := List("p1", rules, hosts, *peer, now); got.Hosts == nil || len(got.Hosts) != 0 {
		t.Errorf("List(peer) = %+v, want no hosts (and [] rather than null)", got)
	}
}

func TestPlanContexts(t *testing.T) {
	answer := enroll.HostsAnswer{Self: "s1", Hosts: []enroll.FleetHost{
		{Name: "p1", Addresses: []string{"p1.example.net:2376", "192.0.2.1:2376"}},
		{Name: "s1", Addresses: []string{"s1.example.net:2376"}},
		{Name: "x1"}, // registered without an address
	}}
	got, current := PlanContexts(answer, "corp-", "tcp://127.0.0.1:40000")
	var names []string
	for _, c := range got {
		names = append(names, c.Name+"="+c.Host)
	}
	if want := []string{"corp-p1=tcp://p1.example.net:2376", "corp-s1=tcp://127.0.0.1:40000"}; !slices.Equal(names, want) || current != "corp-s1" {
		t.Errorf("PlanContexts = %q, current %q; want %q, current corp-s1", names, current, want)
	}
}

func TestConflict(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	me := store.Host{Name: "dock1", Addresses: []string{"a:2376"}, CAFingerprint: "ca"}
	for _, tt := range []struct {
		name string
		row  store.Host
		want bool
	}{
		{"my own row from before a restart", store.Host{Name: "dock1", Addresses: []string{"a:2376"}, CAFingerprint: "ca", LastSeen: now}, false},
		{"another gateway, alive", store.Host{Name: "dock1", Addresses: []string{"b:2376"}, CAFingerprint: "ca", LastSeen: now}, true},
		{"another CA, alive", store.Host{Name: "dock1", Addresses: []string{"a:2376"}, CAFingerprint: "other", LastSeen: now}, true},
		{"another gateway, stale", store.Host{Name: "dock1", Addresses: []string{"b:2376"}, LastSeen: now.Add(-time.Hour)}, false},
		{"another name", store.Host{Name: "dock2", Addresses: []string{"b:2376"}, LastSeen: now}, false},
	} {
		if _, got := Conflict([]store.Host{tt.row}, me, now); got != tt.want {
			t.Errorf("%s: Conflict = %v, want %v", tt.name, got, tt.want)
		}
	}
}
