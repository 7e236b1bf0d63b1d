package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// EndpointOptions say which Docker endpoint to check and with what TLS
// material, as the docker CLI would use them.
type EndpointOptions struct {
	Host   string // tcp://HOST:PORT
	Source string // where the settings come from, e.g. `context "prod"`
	TLS    bool   // TLS at all (--tls, or implied by --tlsverify)
	Verify bool   // verify the server (--tlsverify)
	// CA, Cert and Key are the PEM contents of ca.pem, cert.pem and
	// key.pem; nil when absent.
	CA, Cert, Key []byte
	// Revoked, when set, looks a serial up in the inventory (on the
	// gateway's own machine). Otherwise revocation is inferred from the
	// gateway's refusal of an otherwise valid certificate.
	Revoked func(ctx context.Context, serial string) (bool, error)
	Timeout time.Duration // per network step; 0: DefaultTLSTimeout
	Now     time.Time     // zero: time.Now()
	// Resolver looks the host name up; nil: net.DefaultResolver.
	Resolver *net.Resolver
}

// Check outcomes.
const (
	StatusOK   = "ok"
	StatusFail = "fail"
	StatusSkip = "skip" // not checked: an earlier failure decides it, or it does not apply
)

// Check is one step of CheckEndpoint.
type Check struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// EndpointReport is the outcome of every check, in order.
type EndpointReport struct {
	Host   string  `json:"host"`
	Source string  `json:"source,omitempty"`
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Failed returns the checks that failed.
func (r EndpointReport) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if c.Status == StatusFail {
			out = append(out, c)
		}
	}
	return out
}

// Check IDs, stable for --json.
const (
	CheckResolve       = "resolve"
	CheckConnect       = "connect"
	CheckTLSVersion    = "tls-version"
	CheckServerCA      = "server-ca"
	CheckServerName    = "server-name"
	CheckServerUsage   = "server-usage"
	CheckServerExpiry  = "server-expiry"
	CheckClientCert    = "client-cert"
	CheckClientKey     = "client-key"
	CheckClientUsage   = "client-usage"
	CheckClientExpiry  = "client-expiry"
	CheckClientCA      = "client-ca"
	CheckClientRevoked = "client-revoked"
	CheckAPIPing       = "api-ping"
	CheckIdentity      = "identity"
)

var checkNames = map[string]string{
	CheckResolve:       "name resolution",
	CheckConnect:       "TCP connect",
	CheckTLSVersion:    "TLS version",
	CheckServerCA:      "server CA",
	CheckServerName:    "server name (SAN)",
	CheckServerUsage:   "server key usage",
	CheckServerExpiry:  "server certificate expiry",
	CheckClientCert:    "client certificate",
	CheckClientKey:     "client key",
	CheckClientUsage:   "client key usage",
	CheckClientExpiry:  "client certificate expiry",
	CheckClientCA:      "client certificate issuer",
	CheckClientRevoked: "client certificate revocation",
	CheckAPIPing:       "Docker API ping",
	CheckIdentity:      "identity and role",
}

// checkOrder is the order of the report.
var checkOrder = []string{
	CheckResolve, CheckConnect, CheckTLSVersion,
	CheckServerCA, CheckServerName, CheckServerUsage, CheckServerExpiry,
	CheckClientCert, CheckClientKey, CheckClientUsage, CheckClientExpiry, CheckClientCA, CheckClientRevoked,
	CheckAPIPing, CheckIdentity,
}

// endpointRun is the state of one CheckEndpoint call.
type endpointRun struct {
	opts    EndpointOptions
	host    string // without port
	addr    string // HOST:PORT
	now     time.Time
	results map[string]Check

	ca         *x509.Certificate // the CA in use, if any
	client     *x509.Certificate // the client certificate, if any
	pair       *tls.Certificate  // cert and key, when they match
	serverCA   *x509.Certificate // the CA that verified the server, if any
	serverLeaf *x509.Certificate
	probe      *probeResult
}

// CheckEndpoint checks a Docker TCP endpoint step by step, from name
// resolution to the identity the gateway sees, and says for each failure
// how to fix it. Every check runs that can: later checks that depend on a
// failed one are skipped. The report is OK only when nothing failed.
func CheckEndpoint(ctx context.Context, opts EndpointOptions) EndpointReport {
	r := &endpointRun{opts: opts, now: opts.Now, results: map[string]Check{}}
	if r.now.IsZero() {
		r.now = time.Now()
	}
	if r.opts.Timeout == 0 {
		r.opts.Timeout = DefaultTLSTimeout
	}
	r.run(ctx)
	return r.report()
}

func (r *endpointRun) run(ctx context.Context) {
	if err := r.parseHost(); err != nil {
		r.fail(CheckResolve, err.Error(), "use -H tcp://HOST:PORT")
		return
	}
	if !r.resolve(ctx) || !r.connect(ctx) {
		return
	}
	r.loadClientMaterial()
	if !r.opts.TLS {
		r.fail(CheckTLSVersion, "the endpoint is used without TLS: whoever reaches this port controls the Docker host",
			"use TLS with client certificates (--tlsverify, or a context from 'dockgate login')")
		return
	}
	r.probe = probeTLS(ctx, r.addr, r.host, r.pair, r.opts.Timeout)
	if !r.checkTLSVersion() {
		return
	}
	r.checkServer()
	r.checkClientIssuer()
	r.checkRevocation(ctx)
	r.checkAPI()
}

func (r *endpointRun) parseHost() error {
	hostport, ok := strings.CutPrefix(r.opts.Host, "tcp://")
	if !ok {
		return fmt.Errorf("%q is not a tcp://HOST:PORT endpoint", r.opts.Host)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || !validPort(port) {
		return fmt.Errorf("%q is not a tcp://HOST:PORT endpoint", r.opts.Host)
	}
	r.host, r.addr = host, hostport
	return nil
}

func (r *endpointRun) resolve(ctx context.Context) bool {
	if net.ParseIP(r.host) != nil {
		r.ok(CheckResolve, r.host+" is an IP address; nothing to resolve")
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.Timeout)
	defer cancel()
	resolver := r.opts.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	addrs, err := resolver.LookupHost(ctx, r.host)
	if err != nil {
		reason := err.Error()
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			reason = "no such host"
		}
		r.fail(CheckResolve, fmt.Sprintf("%s does not resolve (%s)", r.host, reason),
			"check the spelling, or connect by IP address (-H tcp://IP:PORT)")
		return false
	}
	r.ok(CheckResolve, fmt.Sprintf("%s resolves to %s", r.host, strings.Join(addrs, ", ")))
	return true
}

func (r *endpointRun) connect(ctx context.Context) bool {
	d := net.Dialer{Timeout: r.opts.Timeout}
	conn, err := d.DialContext(ctx, "tcp", r.addr)
	if err != nil {
		res := TLSResult{Address: r.addr}
		res.explainDial(err, r.host, r.opts.Timeout)
		fix := "start the gateway ('dockgate serve') or dockerd, or check the host and port"
		if res.Problem != ProblemRefused && len(res.Fixes) > 0 {
			fix = res.Fixes[0]
		}
		r.fail(CheckConnect, res.Explanation, fix)
		return false
	}
	conn.Close()
	r.ok(CheckConnect, r.addr+" accepts connections")
	return true
}

func (r *endpointRun) ok(id, detail string) {
	r.results[id] = Check{ID: id, Name: checkNames[id], Status: StatusOK, Detail: detail}
}

func (r *endpointRun) fail(id, detail, fix string) {
	r.results[id] = Check{ID: id, Name: checkNames[id], Status: StatusFail, Detail: detail, Fix: fix}
}

func (r *endpointRun) skip(id, detail string) {
	r.results[id] = Check{ID: id, Name: checkNames[id], Status: StatusSkip, Detail: detail}
}

// report lists every check in order; those never reached are skipped.
func (r *endpointRun) report() EndpointReport {
	rep := EndpointReport{Host: r.opts.Host, Source: r.opts.Source, OK: true}
	for _, id := range checkOrder {
		c, ok := r.results[id]
		if !ok {
			c = Check{ID: id, Name: checkNames[id], Status: StatusSkip, Detail: "not checked: an earlier step failed"}
		}
		if c.Status == StatusFail {
			rep.OK = false
		}
		rep.Checks = append(rep.Checks, c)
	}
	return rep
}
