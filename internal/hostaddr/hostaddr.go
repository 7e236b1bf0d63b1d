// Package hostaddr finds the names and addresses this host is reachable by,
// which become the subject alternative names of a server certificate when
// none are given.
//
// A Docker client checks the address it dials against the server
// certificate's SANs ("x509: cannot validate certificate for 192.0.2.1
// because it doesn't contain any IP SANs"), so the defaults cover every way a
// client is likely to reach the host: its short host name and FQDN, every
// non-loopback interface address, and the loopback names.
//
// Discovery is best effort and never leaves the machine beyond the local
// resolver: a failing lookup drops that entry, it does not fail the whole.
package hostaddr

import (
	"context"
	"net"
	"os"
	"strings"
	"time"
)

// lookupTimeout bounds the FQDN lookup: the answer normally comes from
// /etc/hosts or a local cache in milliseconds, and a host without a working
// resolver must not stall certificate issuance.
const lookupTimeout = 2 * time.Second

// loopbackSANs are always included, so the gateway or dockerd can be
// reached on the host itself.
var loopbackSANs = []string{"localhost", "127.0.0.1", "::1"}

// Host is the source of host information. The zero value is not usable;
// System returns the real one, tests substitute their own functions.
type Host struct {
	Hostname       func() (string, error)
	LookupCNAME    func(ctx context.Context, host string) (string, error)
	InterfaceAddrs func() ([]net.Addr, error)
}

// System reads this machine's host name, resolver and interfaces.
func System() Host {
	return Host{
		Hostname:       os.Hostname,
		LookupCNAME:    net.DefaultResolver.LookupCNAME,
		InterfaceAddrs: net.InterfaceAddrs,
	}
}

// SANs lists the host name, its FQDN, the non-loopback, non-link-local
// interface addresses and the loopback names, without duplicates, in that
// order.
func (h Host) SANs(ctx context.Context) []string {
	var sans []string
	seen := make(map[string]bool)
	add := func(values ...string) {
		for _, v := range values {
			if v != "" && !seen[v] {
				seen[v] = true
				sans = append(sans, v)
			}
		}
	}
	name := h.hostname()
	add(name, h.fqdn(ctx, name))
	add(h.interfaceIPs()...)
	add(loopbackSANs...)
	return sans
}

func (h Host) hostname() string {
	name, err := h.Hostname()
	if err != nil {
		return ""
	}
	return strings.ToLower(strings.TrimSuffix(name, "."))
}

// fqdn asks the resolver for the canonical name of the host name, as
// `hostname -f` does. It returns "" when that adds nothing.
func (h Host) fqdn(ctx context.Context, name string) string {
	if name == "" || strings.Contains(name, ".") {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	cname, err := h.LookupCNAME(ctx, name)
	if err != nil {
		return ""
	}
	cname = strings.ToLower(strings.TrimSuffix(cname, "."))
	if cname == name || cname == "localhost" || !strings.Contains(cname, ".") {
		return ""
	}
	return cname
}

func (h Host) interfaceIPs() []string {
	addrs, err := h.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []string
	for _, a := range addrs {
		if ip := addrIP(a); usableIP(ip) {
			ips = append(ips, ip.String())
		}
	}
	return ips
}

func addrIP(a net.Addr) net.IP {
	switch v := a.(type) {
	case *net.IPNet:
		return v.IP
	case *net.IPAddr:
		return v.IP
	}
	return nil
}

// usableIP drops loopback (added by name anyway), link-local (it needs a
// zone, which a certificate cannot carry), multicast and unspecified
// addresses.
func usableIP(ip net.IP) bool {
	return ip != nil && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!ip.IsMulticast() && !ip.IsUnspecified()
}
