package pki

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Limits on DNS names from RFC 1035 section 2.3.4.
const (
	maxDNSNameLength  = 253 // 255 octets on the wire, less the length byte and root label
	maxDNSLabelLength = 63
)

// opensslSANPrefixes are the type tags of openssl's subjectAltName syntax,
// which the classic Docker TLS recipe uses ("IP:1.2.3.4", "DNS:host").
var opensslSANPrefixes = []string{"IP", "DNS", "email", "URI", "RID", "dirName", "otherName"}

// ParseSAN parses one subject alternative name: an IP address or a DNS name.
// An IPv6 address may be in brackets. DNS names are lower-cased and lose a
// trailing dot; a wildcard is allowed only as a whole leftmost label ("*.").
// The openssl syntax ("IP:1.2.3.4", "DNS=host") is refused with a hint to pass
// the bare value.
func ParseSAN(s string) (dnsName string, ip net.IP, err error) {
	if s == "" {
		return "", nil, errors.New("empty subject alternative name")
	}
	if strings.ContainsAny(s, " \t\r\n") {
		return "", nil, fmt.Errorf("subject alternative name %q contains white space", s)
	}
	if ip := parseIP(s); ip != nil {
		return "", ip, nil
	}
	if err := checkOpensslSyntax(s); err != nil {
		return "", nil, err
	}
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if err := checkDNSName(name); err != nil {
		return "", nil, fmt.Errorf("subject alternative name %q: %w", s, err)
	}
	return name, nil, nil
}

// ParseSANs parses a list of subject alternative names with ParseSAN and
// drops duplicates, keeping the first occurrence.
func ParseSANs(values []string) (dnsNames []string, ips []net.IP, err error) {
	seen := make(map[string]bool)
	for _, v := range values {
		name, ip, err := ParseSAN(v)
		if err != nil {
			return nil, nil, err
		}
		key := name
		if ip != nil {
			key = ip.String()
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		if ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, name)
		}
	}
	return dnsNames, ips, nil
}

func parseIP(s string) net.IP {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if ip := net.ParseIP(s[1 : len(s)-1]); ip != nil && ip.To4() == nil {
			return ip
		}
		return nil
	}
	ip := net.ParseIP(s)
	if v4 := ip.To4(); v4 != nil {
		return v4
	}
	return ip
}

func checkOpensslSyntax(s string) error {
	for _, prefix := range opensslSANPrefixes {
		if len(s) <= len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
			continue
		}
		if sep := s[len(prefix)]; sep == ':' || sep == '=' {
			return fmt.Errorf("subject alternative name %q uses openssl's %s%c syntax: pass the bare value (e.g. --san %s)",
				s, s[:len(prefix)], sep, s[len(prefix)+1:])
		}
	}
	return nil
}

func checkDNSName(name string) error {
	if name == "" {
		return errors.New("not a DNS name or IP address")
	}
	if len(name) > maxDNSNameLength {
		return fmt.Errorf("DNS name is longer than %d characters", maxDNSNameLength)
	}
	labels := strings.Split(name, ".")
	if labels[0] == "*" {
		if len(labels) < 2 {
			return errors.New("a wildcard needs a domain after \"*.\"")
		}
		labels = labels[1:]
	}
	for _, label := range labels {
		if err := checkDNSLabel(label); err != nil {
			return err
		}
	}
	if isNumeric(labels[len(labels)-1]) {
		return errors.New("not a valid IP address, and a DNS name cannot end in a numeric label")
	}
	return nil
}

// checkDNSLabel enforces the RFC 1123 host name rules: letters, digits and
// inner hyphens, 1 to 63 characters.
func checkDNSLabel(label string) error {
	if label == "" {
		return errors.New("DNS name has an empty label")
	}
	if len(label) > maxDNSLabelLength {
		return fmt.Errorf("DNS label %q is longer than %d characters", label, maxDNSLabelLength)
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return fmt.Errorf("DNS label %q starts or ends with a hyphen", label)
	}
	for _, c := range label {
		if !isAlnum(c) && c != '-' {
			if c == '*' {
				return errors.New("a wildcard is only allowed as the whole leftmost label (\"*.example.com\")")
			}
			return fmt.Errorf("DNS label %q contains %q (allowed: letters, digits, hyphens)", label, c)
		}
	}
	return nil
}

func isAlnum(c rune) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

func isNumeric(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}
