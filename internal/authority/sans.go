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
// non-loopback interfaces that are up and not container or VM bridges
// (docker0, br-*, veth*, ...), and localhost, 127.0.0.1 and ::1. Link-local
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

// containerBridgePrefixes name the interfaces of container and VM
// networks on this host: Docker's docker0 and br-<id> bridges, veth pairs,
// libvirt's virbr, CNI and flannel, Podman, LXD. Their addresses (the
// 172.17.0.1 of docker0) are private to the host's containers, so no
// remote client dials them, and a certificate listing them leaks the host's
// layout and goes stale when a network is recreated.
var containerBridgePrefixes = []string{"docker", "br-", "veth", "virbr", "cni", "flannel", "podman", "lxdbr", "lxcbr", "vnet", "tap"}

// isContainerBridge reports whether the interface name is a container or
// VM network's.
func isContainerBridge(name string) bool {
	for _, p := range containerBridgePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func interfaceIPs() []net.IP {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || isContainerBridge(iface.Name) {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		ips = append(ips, dialableIPs(addrs)...)
	}
	return ips
}

// dialableIPs keeps the addresses a remote client could dial.
func dialableIPs(addrs []net.Addr) []net.IP {
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
