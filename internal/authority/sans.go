package authority

import (
	"context"
	"net"
	"os"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
)

// fqdnLookupTimeout bounds the DNS lookup of this host's canonical name, so
// a host with a broken resolver still gets its certificate promptly.
const fqdnLookupTimeout = 2 * time.Second

// DefaultSANs are the names a server certificate gets when none are asked
// for: this host's name and fully qualified name, the addresses of its
// non-loopback interfaces, and localhost, 127.0.0.1 and ::1. Link-local
// addresses are left out (they need a zone to be dialled). Names that are
// not valid SANs (a host name with an underscore) are skipped.
func DefaultSANs(ctx context.Context) []string {
	var sans []string
	seen := map[string]bool{}
	add := func(s string) {
		dns, ip, err := pki.ParseSAN(s)
		if err != nil {
			return
		}
		if ip != nil {
			dns = ip.String()
		}
		if !seen[dns] {
			seen[dns] = true
			sans = append(sans, dns)
		}
	}
	if host, err := os.Hostname(); err == nil {
		add(host)
		add(lookupFQDN(ctx, host))
	}
	for _, ip := range interfaceIPs() {
		add(ip.String())
	}
	for _, s := range []string{"localhost", "127.0.0.1", "::1"} {
		add(s)
	}
	return sans
}

func lookupFQDN(ctx context.Context, host string) string {
	ctx, cancel := context.WithTimeout(ctx, fqdnLookupTimeout)
	defer cancel()
	cname, err := net.DefaultResolver.LookupCNAME(ctx, host)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(cname, ".")
}

func interfaceIPs() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip := ipnet.IP
		if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsMulticast() || ip.IsUnspecified() {
			continue
		}
		ips = append(ips, ip)
	}
	return ips
}
