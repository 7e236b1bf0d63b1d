package dockerconf

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultTLSPort is the port Docker uses for its TLS-protected API by
// convention (IANA "docker-s"); 2375 is the unencrypted one.
const DefaultTLSPort = 2376

// maxHostnameLen is the longest DNS name in presentation form (RFC 1035, 2.3.4).
const maxHostnameLen = 253

// Host is a Docker TCP endpoint.
type Host struct {
	Hostname string // DNS name or IP address, without brackets
	Port     int
}

// String is the endpoint as DOCKER_HOST and docker contexts spell it.
func (h Host) String() string {
	return "tcp://" + net.JoinHostPort(h.Hostname, strconv.Itoa(h.Port))
}

// Unspecified reports whether h is 0.0.0.0 or ::, the addresses that mean
// "every interface" to a listener and nothing at all to a client.
func (h Host) Unspecified() bool {
	a, err := netip.ParseAddr(h.Hostname)
	return err == nil && a.IsUnspecified()
}

// HostError explains why an address was refused, with a hint to fix it.
type HostError struct {
	Input  string
	Reason string
	Hint   string
}

func (e *HostError) Error() string {
	return fmt.Sprintf("invalid host %q: %s", e.Input, e.Reason)
}

func hostError(input, reason, hint string) *HostError {
	return &HostError{Input: input, Reason: reason, Hint: hint}
}

// ParseClientHost parses the address a docker client dials. It refuses the
// unspecified addresses: a client cannot connect to 0.0.0.0 in any useful
// sense, and the server certificate never names it.
func ParseClientHost(s string) (h Host, defaultedPort bool, err error) {
	h, defaultedPort, err = ParseHost(s)
	if err == nil && h.Unspecified() {
		return Host{}, false, hostError(s,
			h.Hostname+" is where dockerd listens, not an address a client can connect to",
			"use a name or address from the server certificate's SANs, such as tcp://127.0.0.1:"+strconv.Itoa(h.Port))
	}
	return h, defaultedPort, err
}

// ParseHost parses a Docker TCP endpoint: tcp://HOST:PORT, or HOST:PORT as
// DOCKER_HOST also accepts. An IPv6 address needs brackets. Without a port,
// DefaultTLSPort is used and defaultedPort is true.
func ParseHost(s string) (h Host, defaultedPort bool, err error) {
	rest, err := stripScheme(s)
	if err != nil {
		return Host{}, false, err
	}
	if i := strings.IndexAny(rest, "/?#@ \t\r\n"); i >= 0 && rest[i:] != "/" {
		return Host{}, false, hostError(s, "only tcp://HOST:PORT is supported, without a path, user or spaces",
			"write it as tcp://HOST:PORT")
	}
	hostname, port, err := splitHostPort(s, strings.TrimSuffix(rest, "/"))
	if err != nil {
		return Host{}, false, err
	}
	if hostname, err = checkHostname(s, hostname); err != nil {
		return Host{}, false, err
	}
	if port == "" {
		return Host{Hostname: hostname, Port: DefaultTLSPort}, true, nil
	}
	n, err := parsePort(s, port)
	if err != nil {
		return Host{}, false, err
	}
	return Host{Hostname: hostname, Port: n}, false, nil
}

// stripScheme removes tcp:// and refuses every other scheme.
func stripScheme(s string) (string, error) {
	if s == "" {
		return "", hostError(s, "it is empty", "write it as tcp://HOST:PORT")
	}
	scheme, rest, found := strings.Cut(s, "://")
	if !found {
		return s, nil
	}
	switch strings.ToLower(scheme) {
	case "tcp":
		return rest, nil
	case "http", "https":
		return "", hostError(s, "docker endpoints use tcp://, not "+scheme+"://",
			"write tcp://"+rest+"; TLS is turned on by the client certificate, not by the scheme")
	case "unix", "npipe", "fd":
		return "", hostError(s, "it is a local socket; dockgate secures TCP endpoints",
			"give the TCP address of the daemon, such as tcp://HOST:2376")
	case "ssh":
		return "", hostError(s, "ssh:// endpoints authenticate with SSH, not with certificates",
			"give the TCP address of the daemon, such as tcp://HOST:2376")
	}
	return "", hostError(s, "unsupported scheme "+strconv.Quote(scheme), "write it as tcp://HOST:PORT")
}

// splitHostPort splits HOST:PORT, [IPv6]:PORT, HOST or [IPv6]; port may be "".
func splitHostPort(input, hp string) (host, port string, err error) {
	if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
		return hp[1 : len(hp)-1], "", nil
	}
	switch strings.Count(hp, ":") {
	case 0:
		return hp, "", nil
	case 1:
		if strings.HasPrefix(hp, "[") {
			break
		}
		host, port, _ = strings.Cut(hp, ":")
		if port == "" {
			return "", "", hostError(input, "the port after ':' is empty", "write it as tcp://HOST:2376")
		}
		return host, port, nil
	}
	if strings.HasPrefix(hp, "[") {
		if host, port, err = net.SplitHostPort(hp); err == nil && port != "" {
			return host, port, nil
		}
	}
	if _, perr := netip.ParseAddr(hp); perr == nil {
		return "", "", hostError(input, "an IPv6 address needs brackets",
			"write it as tcp://["+hp+"]:2376")
	}
	return "", "", hostError(input, "it is not HOST:PORT", "write it as tcp://HOST:PORT, with brackets around an IPv6 address")
}

// checkHostname accepts an IP address (returned in canonical form) or a DNS
// name (letters, digits, '-', '_' and dots between non-empty labels).
func checkHostname(input, host string) (string, error) {
	if host == "" {
		return "", hostError(input, "it has no host",
			"write tcp://0.0.0.0:PORT for every interface, tcp://127.0.0.1:PORT for this machine, or the server's name")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return "", hostError(input, "IPv6 zones are not supported", "use an address without %zone")
		}
		return a.String(), nil
	}
	if strings.Trim(host, "0123456789.") == "" {
		return "", hostError(input, host+" is not a valid IPv4 address", "write all four parts, such as 127.0.0.1")
	}
	if len(host) > maxHostnameLen || !validDNSName(host) {
		return "", hostError(input, strconv.Quote(host)+" is not a valid host name",
			"use a DNS name or an IP address")
	}
	return host, nil
}

func validDNSName(name string) bool {
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func parsePort(input, port string) (int, error) {
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
		return 0, hostError(input, strconv.Quote(port)+" is not a port number (1-65535)", "write it as tcp://HOST:2376")
	}
	return n, nil
}
