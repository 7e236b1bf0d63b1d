package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Problem names why a TLS check failed.
type Problem string

// The failures CheckTLS tells apart.
const (
	ProblemNoCABundle       Problem = "no-ca-bundle"
	ProblemUnknownAuthority Problem = "unknown-authority"
	ProblemExpired          Problem = "expired"
	ProblemNotYetValid      Problem = "not-yet-valid"
	ProblemNameMismatch     Problem = "name-mismatch"
	ProblemKeyUsage         Problem = "wrong-key-usage"
	ProblemTLSVersion       Problem = "tls-version"
	ProblemNotTLS           Problem = "not-tls"
	ProblemHandshake        Problem = "handshake"
	ProblemRefused          Problem = "connection-refused"
	ProblemDNS              Problem = "dns"
	ProblemTimeout          Problem = "timeout"
	ProblemConnect          Problem = "connect"
)

// DefaultTLSTimeout bounds the dial plus handshake: long enough for a slow
// link, short enough that a dropped SYN is reported rather than waited out.
const DefaultTLSTimeout = 10 * time.Second

// TLSOptions configures CheckTLS.
type TLSOptions struct {
	// Roots verifies the server; nil: the system roots, or the embedded
	// fallback roots when those are in use.
	Roots *x509.CertPool
	// Using is where the system roots come from, TrustReport.Using:
	// "system", "fallback" or "none". It words an unknown authority: with
	// no roots at all it means a missing CA bundle, with only the embedded
	// public roots a private CA they cannot cover.
	Using   string
	Timeout time.Duration // 0: DefaultTLSTimeout
	// Dialer connects; nil: a net.Dialer with the system resolver.
	Dialer *net.Dialer
}

// TLSResult is what CheckTLS saw.
type TLSResult struct {
	Address     string     `json:"address"`
	ServerName  string     `json:"server_name"`
	OK          bool       `json:"ok"`
	Version     string     `json:"tls_version,omitempty"`
	CipherSuite string     `json:"cipher_suite,omitempty"`
	Chain       []CertInfo `json:"chain,omitempty"` // as the server sent it, leaf first
	Problem     Problem    `json:"problem,omitempty"`
	Explanation string     `json:"explanation,omitempty"` // one sentence
	Fixes       []string   `json:"fixes,omitempty"`
}

// CertInfo is the part of a certificate that explains a failure.
type CertInfo struct {
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Names     []string  `json:"names,omitempty"` // DNS and IP subject alternative names
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
}

func certInfo(c *x509.Certificate) CertInfo {
	return CertInfo{
		Subject:   c.Subject.String(),
		Issuer:    c.Issuer.String(),
		Names:     certNames(c),
		NotBefore: c.NotBefore,
		NotAfter:  c.NotAfter,
	}
}

func certNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// httpsPort is the port an https:// URL without one means (RFC 9110, 4.2.2).
const httpsPort = "443"

// ParseTarget accepts https://HOST[:PORT][/path], HOST:PORT or HOST and
// returns the address to dial and the name to verify.
func ParseTarget(target string) (addr, serverName string, err error) {
	hostport := target
	if strings.Contains(target, "://") {
		u, err := url.Parse(target)
		if err != nil {
			return "", "", fmt.Errorf("invalid target %q: %w", target, err)
		}
		if u.Scheme != "https" && u.Scheme != "tcp" {
			return "", "", fmt.Errorf("invalid target %q: the scheme must be https or tcp", target)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = hostport, httpsPort
		if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
			host = host[1 : len(host)-1]
		}
	}
	if !validHost(host) || !validPort(port) {
		return "", "", fmt.Errorf("invalid target %q: want https://HOST[:PORT] or HOST:PORT", target)
	}
	return net.JoinHostPort(host, port), host, nil
}

// validHost accepts a DNS name or an IP address; a colon is only allowed
// in an IPv6 address.
func validHost(host string) bool {
	if host == "" || strings.ContainsAny(host, "/[] \t\n") {
		return false
	}
	if strings.Contains(host, ":") {
		_, err := netip.ParseAddr(host)
		return err == nil
	}
	return true
}

func validPort(port string) bool {
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n <= 65535
}

// CheckTLS connects to target, completes a TLS handshake and explains a
// failure. The error is only for a target that cannot be parsed; a failed
// check is a result with OK false.
func CheckTLS(ctx context.Context, target string, opts TLSOptions) (TLSResult, error) {
	addr, serverName, err := ParseTarget(target)
	if err != nil {
		return TLSResult{}, err
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = DefaultTLSTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	res := TLSResult{Address: addr, ServerName: serverName}
	dialer := opts.Dialer
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		res.explainDial(err, serverName, timeout)
		return res, nil
	}
	defer conn.Close()
	tc := tls.Client(conn, &tls.Config{ServerName: serverName, RootCAs: opts.Roots})
	if err := tc.HandshakeContext(ctx); err != nil {
		res.explainHandshake(err, opts.Using, timeout)
		return res, nil
	}
	state := tc.ConnectionState()
	res.OK = true
	res.Version = tls.VersionName(state.Version)
	res.CipherSuite = tls.CipherSuiteName(state.CipherSuite)
	for _, c := range state.PeerCertificates {
		res.Chain = append(res.Chain, certInfo(c))
	}
	return res, nil
}

func (r *TLSResult) fail(p Problem, explanation string, fixes ...string) {
	r.Problem, r.Explanation, r.Fixes = p, explanation, fixes
}

func (r *TLSResult) explainDial(err error, host string, timeout time.Duration) {
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr):
		reason := dnsErr.Err
		if dnsErr.IsNotFound {
			reason = "no such host"
		}
		r.fail(ProblemDNS, fmt.Sprintf("the name %s does not resolve (%s)", host, reason),
			"check the spelling, or connect by IP address")
	case errors.Is(err, syscall.ECONNREFUSED):
		r.fail(ProblemRefused, fmt.Sprintf("nothing listens on %s (connection refused)", r.Address),
			"check the port, and that the server is running and listening on this address")
	case isTimeout(err):
		r.fail(ProblemTimeout, fmt.Sprintf("%s did not answer within %s", r.Address, timeout),
			"check the address, and that no firewall drops the traffic")
	default:
		r.fail(ProblemConnect, fmt.Sprintf("failed to connect to %s: %v", r.Address, err))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func (r *TLSResult) explainHandshake(err error, using string, timeout time.Duration) {
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		for _, c := range verr.UnverifiedCertificates {
			r.Chain = append(r.Chain, certInfo(c))
		}
		r.explainVerification(verr, using)
		return
	}
	var rhe tls.RecordHeaderError
	switch {
	case errors.As(err, &rhe):
		r.fail(ProblemNotTLS, fmt.Sprintf("%s does not speak TLS (its first bytes were %q)", r.Address, rhe.RecordHeader[:]),
			"check the port: this one may serve plain HTTP")
	case isVersionError(err):
		r.fail(ProblemTLSVersion, fmt.Sprintf("%s and this client share no TLS version: Go clients speak TLS 1.2 and 1.3 only", r.Address),
			"enable TLS 1.2 or 1.3 on the server")
	case isTimeout(err):
		r.fail(ProblemTimeout, fmt.Sprintf("%s accepted the connection but did not finish a TLS handshake within %s", r.Address, timeout),
			"check the port: this one may not serve TLS")
	case isRemoteAlert(err, "certificate required"), isRemoteAlert(err, "bad certificate"):
		r.fail(ProblemHandshake, fmt.Sprintf("%s requires a client certificate (mutual TLS)", r.Address),
			"connect with a client certificate (for dockgate's gateway: 'docker --context NAME version')")
	default:
		r.fail(ProblemHandshake, fmt.Sprintf("the TLS handshake with %s failed: %v", r.Address, err))
	}
}

// isRemoteAlert reports an alert the server sent. crypto/tls keeps its alert
// type unexported and wraps it as net.OpError{Op: "remote error"}, so the
// alert's description (RFC 8446, 6) is matched by its text.
func isRemoteAlert(err error, description string) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "remote error" && strings.HasSuffix(oe.Err.Error(), description)
}

func isVersionError(err error) bool {
	return isRemoteAlert(err, "protocol version not supported") ||
		strings.Contains(err.Error(), "unsupported protocol version")
}

func (r *TLSResult) explainVerification(verr *tls.CertificateVerificationError, using string) {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
	)
	switch {
	case errors.As(verr.Err, &unknown):
		r.explainUnknownAuthority(verr.UnverifiedCertificates, using)
	case errors.As(verr.Err, &hostname):
		r.explainNameMismatch(hostname)
	case errors.As(verr.Err, &invalid) && invalid.Reason == x509.Expired:
		r.explainValidity(invalid.Cert)
	case errors.As(verr.Err, &invalid) && invalid.Reason == x509.IncompatibleUsage:
		r.fail(ProblemKeyUsage, fmt.Sprintf("the certificate of %s is not valid for server authentication (extended key usage: %s)",
			r.Address, strings.Join(extKeyUsages(invalid.Cert), ", ")),
			"reissue it as a server certificate, with the serverAuth extended key usage")
	default:
		r.fail(ProblemHandshake, fmt.Sprintf("the certificate of %s does not verify: %v", r.Address, verr.Err))
	}
}

// NoCABundleFixes are the ways to give a FROM scratch image roots.
var NoCABundleFixes = []string{
	"copy the build stage's bundle into the image: COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/",
	"with Nix, put pkgs.cacert in the image and set SSL_CERT_FILE=${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt",
	fmt.Sprintf("in a Go program, import _ %q to embed public roots", FallbackPackage),
}

func (r *TLSResult) explainUnknownAuthority(chain []*x509.Certificate, using string) {
	if using == "none" {
		r.fail(ProblemNoCABundle, "no CA bundle in this environment, so no server certificate can be verified", NoCABundleFixes...)
		return
	}
	top := chain[len(chain)-1]
	issuer := fmt.Sprintf("signed by %q, an authority", top.Issuer.String())
	if len(chain) == 1 && top.Subject.String() == top.Issuer.String() {
		issuer = fmt.Sprintf("self-signed (%q) and", top.Subject.String())
	}
	if using == "fallback" {
		r.fail(ProblemUnknownAuthority, fmt.Sprintf("the certificate of %s is %s not among the embedded public roots, which are all this environment has (no CA bundle)",
			r.Address, issuer),
			"pass --ca FILE with the issuing CA's certificate",
			"give the environment a CA bundle that holds it (/etc/ssl/certs/ca-certificates.crt, or a file named by SSL_CERT_FILE)")
		return
	}
	r.fail(ProblemUnknownAuthority, fmt.Sprintf("the certificate of %s is %s not trusted here", r.Address, issuer),
		"pass --ca FILE with the issuing CA's certificate, or add it to the system bundle")
}

func (r *TLSResult) explainNameMismatch(e x509.HostnameError) {
	names := certNames(e.Certificate)
	if len(names) == 0 {
		r.fail(ProblemNameMismatch, fmt.Sprintf("the certificate of %s has no subject alternative names (Go ignores the common name %q), so it is valid for no host",
			r.Address, e.Certificate.Subject.CommonName),
			"reissue it with the host name as a DNS or IP subject alternative name")
		return
	}
	r.fail(ProblemNameMismatch, fmt.Sprintf("the certificate of %s is valid for %s, not for %s", r.Address, strings.Join(names, ", "), e.Host),
		"connect with one of those names, or reissue the certificate with this one")
}

func (r *TLSResult) explainValidity(c *x509.Certificate) {
	now := time.Now()
	if now.Before(c.NotBefore) {
		r.fail(ProblemNotYetValid, fmt.Sprintf("the certificate %q is not valid until %s; now is %s",
			c.Subject.String(), c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)),
			"check the clocks of this machine and of the machine that issued it")
		return
	}
	r.fail(ProblemExpired, fmt.Sprintf("the certificate %q expired at %s", c.Subject.String(), c.NotAfter.UTC().Format(time.RFC3339)),
		"renew it (for dockgate certificates: 'dockgate renew')")
}

// extKeyUsages names a certificate's extended key usages.
func extKeyUsages(c *x509.Certificate) []string {
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:             "any",
		x509.ExtKeyUsageServerAuth:      "serverAuth",
		x509.ExtKeyUsageClientAuth:      "clientAuth",
		x509.ExtKeyUsageCodeSigning:     "codeSigning",
		x509.ExtKeyUsageEmailProtection: "emailProtection",
		x509.ExtKeyUsageTimeStamping:    "timeStamping",
		x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
	}
	var out []string
	for _, u := range c.ExtKeyUsage {
		name, ok := names[u]
		if !ok {
			name = fmt.Sprintf("usage %d", u)
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		out = append(out, "none")
	}
	return out
}
