package dockerconf

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// FindingKind names a problem (or a fact worth telling) about a certificate
// in the place it is about to be used.
type FindingKind int

const (
	// ListenNotInSANs: dockerd would listen on an address the server
	// certificate does not name, so clients dialing it fail verification.
	ListenNotInSANs FindingKind = iota + 1
	// ListenAllInterfaces: dockerd listens on 0.0.0.0 or ::; clients must
	// dial one of the certificate's names, listed in the message.
	ListenAllInterfaces
	// NoSANs: the server certificate names no host at all.
	NoSANs
	// WrongUsage: the certificate's extended key usage does not allow this
	// role (a client certificate for the server, or the reverse).
	WrongUsage
	// Expired: the certificate's NotAfter has passed.
	Expired
	// NotYetValid: the certificate's NotBefore is in the future.
	NotYetValid
)

// Finding is one result of CheckServerCert or CheckClientCert. Everything
// except ListenAllInterfaces is a warning: the command can still go on, but
// the TLS handshake will fail.
type Finding struct {
	Kind    FindingKind
	Message string
}

// Warning reports whether the finding is a problem rather than a note.
func (f Finding) Warning() bool { return f.Kind != ListenAllInterfaces }

// CheckServerCert tells whether clients will be able to verify dockerd's
// certificate when it listens on listen.
func CheckServerCert(cert *x509.Certificate, listen Host, now time.Time) []Finding {
	findings := checkValidity(cert, now)
	if !hasUsage(cert, x509.ExtKeyUsageServerAuth) {
		findings = append(findings, Finding{WrongUsage,
			"the server certificate is not valid for TLS servers (no serverAuth extended key usage)"})
	}
	names := certNames(cert)
	switch {
	case len(names) == 0:
		findings = append(findings, Finding{NoSANs,
			"the server certificate has no subject alternative names, so no client can verify it"})
	case listen.Unspecified():
		reachable := joinHosts(ClientAddresses(cert, listen.Port))
		if reachable == "" {
			reachable = strings.Join(names, ", ")
		}
		findings = append(findings, Finding{ListenAllInterfaces, fmt.Sprintf(
			"dockerd will listen on every interface; clients must connect by a name in the server certificate: %s",
			reachable)})
	case cert.VerifyHostname(listen.Hostname) != nil:
		findings = append(findings, Finding{ListenNotInSANs, fmt.Sprintf(
			"the server certificate is not valid for %s; clients connecting to %s will fail with \"certificate is valid for %s, not %s\"",
			listen.Hostname, listen, strings.Join(names, ", "), listen.Hostname)})
	}
	return findings
}

// CheckClientCert tells whether a certificate can log in to dockerd.
func CheckClientCert(cert *x509.Certificate, now time.Time) []Finding {
	findings := checkValidity(cert, now)
	if !hasUsage(cert, x509.ExtKeyUsageClientAuth) {
		findings = append(findings, Finding{WrongUsage,
			"the certificate is not valid for TLS clients (no clientAuth extended key usage); dockerd will refuse it"})
	}
	return findings
}

func checkValidity(cert *x509.Certificate, now time.Time) []Finding {
	switch {
	case now.After(cert.NotAfter):
		return []Finding{{Expired, "the certificate expired on " + cert.NotAfter.UTC().Format(time.RFC3339)}}
	case now.Before(cert.NotBefore):
		return []Finding{{NotYetValid, "the certificate is not valid before " + cert.NotBefore.UTC().Format(time.RFC3339)}}
	}
	return nil
}

// hasUsage follows crypto/x509's verification: no extended key usage at all
// allows any use.
func hasUsage(cert *x509.Certificate, want x509.ExtKeyUsage) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	return slices.Contains(cert.ExtKeyUsage, want) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny)
}

// certNames are the certificate's DNS names and IP addresses, as Go's
// "certificate is valid for ..." message lists them.
func certNames(cert *x509.Certificate) []string {
	names := slices.Clone(cert.DNSNames)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// ClientAddresses lists the endpoints a client can verify the certificate
// at: its DNS names (without wildcards) and specified IP addresses, on port.
func ClientAddresses(cert *x509.Certificate, port int) []Host {
	var hosts []Host
	for _, name := range cert.DNSNames {
		if !strings.Contains(name, "*") {
			hosts = append(hosts, Host{Hostname: name, Port: port})
		}
	}
	for _, ip := range cert.IPAddresses {
		if a, ok := netip.AddrFromSlice(ip); ok && !a.IsUnspecified() {
			hosts = append(hosts, Host{Hostname: a.Unmap().String(), Port: port})
		}
	}
	return hosts
}

func joinHosts(hosts []Host) string {
	s := make([]string, len(hosts))
	for i, h := range hosts {
		s[i] = h.String()
	}
	return strings.Join(s, ", ")
}
