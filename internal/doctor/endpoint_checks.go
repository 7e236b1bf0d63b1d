package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
)

// loadClientMaterial checks the client certificate and key on their own.
func (r *endpointRun) loadClientMaterial() {
	if !r.opts.TLS {
		return
	}
	if ca, err := parseCertPEM(r.opts.CA); err == nil {
		r.ca = ca
	}
	if r.opts.Cert == nil {
		r.fail(CheckClientCert, "no client certificate (cert.pem): the gateway requires one",
			"enroll this machine: 'dockgate login TOKEN', with a token from the gateway's admin")
		return
	}
	cert, err := parseCertPEM(r.opts.Cert)
	if err != nil {
		r.fail(CheckClientCert, "cert.pem holds no certificate: "+err.Error(), "enroll again: 'dockgate login TOKEN'")
		return
	}
	r.client = cert
	r.ok(CheckClientCert, fmt.Sprintf("CN=%s groups=[%s] serial %s", cert.Subject.CommonName,
		strings.Join(cert.Subject.Organization, ","), cert.SerialNumber.Text(16)))
	r.checkClientKey()
	r.checkUsage(CheckClientUsage, cert, x509.ExtKeyUsageClientAuth)
	r.checkExpiry(CheckClientExpiry, "client", cert)
}

func (r *endpointRun) checkClientKey() {
	if r.opts.Key == nil {
		r.fail(CheckClientKey, "no private key (key.pem) for the client certificate",
			"use the key.pem made with this cert.pem, or enroll again: 'dockgate login TOKEN'")
		return
	}
	pair, err := tls.X509KeyPair(r.opts.Cert, r.opts.Key)
	if err != nil {
		r.fail(CheckClientKey, "key.pem does not belong to cert.pem ("+strings.TrimPrefix(err.Error(), "tls: ")+")",
			"use the key.pem made together with this cert.pem, or enroll again: 'dockgate login TOKEN'")
		return
	}
	r.pair = &pair
	r.ok(CheckClientKey, "key.pem matches cert.pem")
}

// checkTLSVersion reports the negotiated version, or why there was no
// handshake at all. It returns false when there is nothing to check after.
func (r *endpointRun) checkTLSVersion() bool {
	p := r.probe
	if len(p.chain) == 0 {
		res := TLSResult{Address: r.addr, ServerName: r.host}
		if p.handshakeErr == nil {
			p.handshakeErr = errors.New("the server sent no certificate")
		}
		res.explainHandshake(p.handshakeErr, "", r.opts.Timeout)
		r.fail(CheckTLSVersion, res.Explanation, firstOr(res.Fixes, "check that this port serves the Docker API over TLS"))
		return false
	}
	switch {
	case p.version == 0:
		r.ok(CheckTLSVersion, "TLS 1.2 or newer (the server ended the handshake when it saw the client certificate)")
	case p.version < tls.VersionTLS12:
		r.fail(CheckTLSVersion, fmt.Sprintf("the server negotiated %s; the docker CLI requires TLS 1.2 or newer", tls.VersionName(p.version)),
			"enable TLS 1.2 or 1.3 on the server")
	default:
		r.ok(CheckTLSVersion, fmt.Sprintf("%s (%s)", tls.VersionName(p.version), tls.CipherSuiteName(p.cipher)))
	}
	return true
}

// checkServer checks the server's certificate as the docker CLI will.
func (r *endpointRun) checkServer() {
	leaf := r.probe.chain[0]
	r.serverLeaf = leaf
	r.checkServerCA(leaf)
	r.checkServerName(leaf)
	r.checkUsage(CheckServerUsage, leaf, x509.ExtKeyUsageServerAuth)
	r.checkExpiry(CheckServerExpiry, "server", leaf)
}

func (r *endpointRun) checkServerCA(leaf *x509.Certificate) {
	if !r.opts.Verify {
		r.fail(CheckServerCA, "the server is not verified (TLS without --tlsverify): an impostor would go unnoticed",
			"use --tlsverify with the gateway's CA (--tlscacert), or a context from 'dockgate login'")
		return
	}
	roots, err := certPool(r.opts.CA)
	if err != nil {
		r.fail(CheckServerCA, "no CA certificate to verify the server with (ca.pem): "+err.Error(),
			"enroll with 'dockgate login TOKEN', which fetches and pins the gateway's CA, or pass --tlscacert")
		return
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: poolOf(r.probe.chain[1:]),
		CurrentTime: within(leaf, r.now), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	switch {
	case err == nil:
		r.serverCA = chains[0][len(chains[0])-1]
	case r.ca != nil && leaf.CheckSignatureFrom(r.ca) == nil:
		r.serverCA = r.ca // signed by it, outside the CA's own validity: the expiry checks tell
	default:
		r.fail(CheckServerCA, fmt.Sprintf("the server's certificate was signed by %s, but the CA in use is %s",
			issuerOf(leaf), describeCA(r.ca)),
			"use this gateway's CA: enroll with a token from it ('dockgate login TOKEN'), or point --tlscacert at its ca.pem")
		return
	}
	r.ok(CheckServerCA, "signed by "+describeCA(r.serverCA)+", the CA in use")
}

func (r *endpointRun) checkServerName(leaf *x509.Certificate) {
	if err := leaf.VerifyHostname(r.host); err == nil {
		r.ok(CheckServerName, "the certificate is valid for "+r.host)
		return
	}
	names := certNames(leaf)
	if len(names) == 0 {
		r.fail(CheckServerName, "the server certificate has no subject alternative names, so it is valid for no host",
			fmt.Sprintf("reissue it with this host: %s", reissueCommand(leaf, r.host)))
		return
	}
	detail := fmt.Sprintf("the server certificate is valid for %s, not %s", strings.Join(names, ", "), r.host)
	if ip := net.ParseIP(r.host); ip != nil && ip.IsUnspecified() {
		_, port, _ := net.SplitHostPort(r.addr)
		r.fail(CheckServerName, detail, fmt.Sprintf("%s means \"every interface\" to a server, not an address to connect to: use -H tcp://%s",
			r.host, net.JoinHostPort(names[0], port)))
		return
	}
	r.fail(CheckServerName, detail, fmt.Sprintf("reissue the server certificate with --san %s: %s", r.host, reissueCommand(leaf, r.host)))
}

// reissueCommand is the exact command that gives the server certificate
// one more SAN, keeping the ones it has.
func reissueCommand(leaf *x509.Certificate, host string) string {
	name := leaf.Subject.CommonName
	var sans []string
	for _, n := range append(certNames(leaf), host) {
		sans = append(sans, "--san "+n)
	}
	return fmt.Sprintf("dockgate revoke %s && dockgate issue server %s %s", name, name, strings.Join(sans, " "))
}

func (r *endpointRun) checkUsage(id string, c *x509.Certificate, want x509.ExtKeyUsage) {
	wantName, role := "serverAuth", "server"
	if want == x509.ExtKeyUsageClientAuth {
		wantName, role = "clientAuth", "client"
	}
	if hasUsage(c, want) {
		r.ok(id, "extended key usage "+strings.Join(extKeyUsages(c), ", "))
		return
	}
	fix := "issue a server certificate: 'dockgate issue server NAME --san HOST'"
	if role == "client" {
		fix = "use a client certificate: 'dockgate login TOKEN', or 'dockgate issue client NAME' on the gateway"
	}
	r.fail(id, fmt.Sprintf("the %s certificate is not for %s authentication (extended key usage: %s; %s is needed)",
		role, role, strings.Join(extKeyUsages(c), ", "), wantName), fix)
}

func hasUsage(c *x509.Certificate, want x509.ExtKeyUsage) bool {
	if len(c.ExtKeyUsage) == 0 && len(c.UnknownExtKeyUsage) == 0 {
		return true // no EKU extension: any usage, as crypto/x509 reads it
	}
	for _, u := range c.ExtKeyUsage {
		if u == want || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func (r *endpointRun) checkExpiry(id, role string, c *x509.Certificate) {
	switch {
	case r.now.Before(c.NotBefore):
		r.fail(id, fmt.Sprintf("the %s certificate is not valid until %s", role, c.NotBefore.UTC().Format(time.RFC3339)),
			"check the clocks of this machine and of the gateway")
	case !r.now.Before(c.NotAfter):
		fix := "renew it on the gateway: 'dockgate renew " + c.Subject.CommonName + "' ('dockgate serve' renews its own when it has the CA passphrase)"
		if role == "client" {
			fix = "an expired certificate cannot renew itself: enroll again with a new token ('dockgate login TOKEN'); renew in time with 'dockgate renew --context NAME --watch'"
		}
		r.fail(id, fmt.Sprintf("the %s certificate expired at %s", role, c.NotAfter.UTC().Format(time.RFC3339)), fix)
	default:
		r.ok(id, fmt.Sprintf("valid until %s (%s left)", c.NotAfter.UTC().Format(time.RFC3339), roughly(c.NotAfter.Sub(r.now))))
	}
}

// checkClientIssuer compares the client certificate's issuer with the CA
// that signed the server's: the gateway accepts only its own CA's clients.
func (r *endpointRun) checkClientIssuer() {
	c := r.client
	if c == nil {
		return
	}
	// The signature decides, not validity periods: those are the expiry
	// checks' business.
	if r.serverCA != nil {
		if c.CheckSignatureFrom(r.serverCA) == nil {
			r.ok(CheckClientCA, "issued by "+describeCA(r.serverCA)+", which also signed the server's")
			return
		}
	} else if len(c.AuthorityKeyId) > 0 && string(c.AuthorityKeyId) == string(r.serverLeaf.AuthorityKeyId) {
		r.ok(CheckClientCA, "issued by "+issuerOf(c)+", which also signed the server's")
		return
	}
	r.fail(CheckClientCA, fmt.Sprintf("the client certificate was issued by %s, the server's by %s: the gateway accepts only its own CA's clients",
		issuerOf(c), issuerOf(r.serverLeaf)), "enroll with a token from this gateway: 'dockgate login TOKEN'")
}

// checkRevocation reads the gateway's refusal of a revoked or superseded
// certificate (a 403 to every request); otherwise it asks the inventory
// when it is at hand, or reads a refusal at the handshake (gateways before
// the 403) of an otherwise valid certificate.
func (r *endpointRun) checkRevocation(ctx context.Context) {
	c := r.client
	if c == nil {
		return
	}
	serial := c.SerialNumber.Text(16)
	if why := r.probe.certRefused(); why != "" {
		r.fail(CheckClientRevoked, "certificate "+refusedWords(why)+": the gateway completes the TLS handshake and answers every request 403: "+
			dockerMessage(r.probe.ping.body), refusedFix(why, c.Subject.CommonName))
		return
	}
	if r.opts.Revoked != nil {
		if revoked, err := r.opts.Revoked(ctx, serial); err == nil {
			if revoked {
				r.fail(CheckClientRevoked, "certificate serial "+serial+" is revoked (the gateway's inventory says so)", enrollAgainFix)
			} else {
				r.ok(CheckClientRevoked, "not revoked (the gateway's inventory)")
			}
			return
		}
	}
	switch {
	case r.probe.refused == nil && r.probe.ping != nil:
		r.ok(CheckClientRevoked, "not revoked: the gateway accepted the certificate")
	case r.probe.refused == nil:
		r.skip(CheckClientRevoked, "not known: the gateway did not answer")
	case r.clientLooksValid():
		r.fail(CheckClientRevoked, fmt.Sprintf("the gateway refused certificate serial %s at the handshake (%s) although it is unexpired, for client authentication and from its CA: it has been revoked",
			serial, alertText(r.probe.refused)), enrollAgainFix)
	default:
		r.skip(CheckClientRevoked, "not known: the gateway refused the certificate, which has the problems above")
	}
}

const enrollAgainFix = "enroll again with a new token: 'dockgate login TOKEN --context NAME --force'"

// certRefused is why the gateway refuses every request of the client
// certificate (identity.RefusedHeader: "revoked", "superseded"), or "".
func (p *probeResult) certRefused() string {
	if p.ping == nil || p.ping.status != http.StatusForbidden {
		return ""
	}
	return p.ping.header.Get(identity.RefusedHeader)
}

// refusedWords names a refusal reason for people.
func refusedWords(why string) string {
	if why == "superseded" {
		return "superseded by a renewal"
	}
	return why
}

// refusedFix is the way out for certificate cn refused for why.
func refusedFix(why, cn string) string {
	newToken := fmt.Sprintf("ask the gateway's administrator for a new token ('dockgate token create %s'), then run 'dockgate login TOKEN --context NAME --force'", cn)
	if why == "superseded" {
		return "use the renewed certificate (the docker context 'dockgate renew --context NAME' updated, or the new bundle from the gateway's administrator), or " + newToken
	}
	return newToken
}

func (r *endpointRun) clientLooksValid() bool {
	for _, id := range []string{CheckClientKey, CheckClientUsage, CheckClientExpiry, CheckClientCA} {
		if r.results[id].Status != StatusOK {
			return false
		}
	}
	return true
}

// checkAPI reads the answers to GET /_ping and the whoami endpoint.
func (r *endpointRun) checkAPI() {
	p := r.probe
	if failed := r.serverUnverified(); failed != "" {
		// doctor probed without verifying, to look at the server; the
		// docker CLI verifies and would stop at the handshake, so an
		// answer here says nothing about what the CLI gets.
		r.skip(CheckAPIPing, "not checked: the docker CLI would refuse this server ("+failed+" failed above)")
		r.skip(CheckIdentity, "not checked: the docker CLI would refuse this server")
		return
	}
	switch {
	case p.certRefused() != "":
		r.skip(CheckAPIPing, "not checked: the gateway refuses every request of this certificate ("+refusedWords(p.certRefused())+")")
		r.skip(CheckIdentity, "not checked: the gateway refuses every request of this certificate")
		return
	case p.refused != nil:
		r.skip(CheckAPIPing, "not checked: the gateway refused the client certificate ("+alertText(p.refused)+")")
		r.skip(CheckIdentity, "not checked: the gateway refused the client certificate")
		return
	case p.handshakeErr != nil:
		r.fail(CheckAPIPing, "the TLS handshake failed: "+p.handshakeErr.Error(), "see the checks above")
		return
	case p.pingErr != nil:
		r.fail(CheckAPIPing, "no answer to GET /_ping: "+p.pingErr.Error(), "check that this port serves the Docker API")
		return
	}
	r.checkPing(p.ping)
	r.checkIdentity(p.whoami, p.whoErr)
}

// serverUnverified names the first failed check that makes a verifying
// client refuse the server, or "" when there is none (or no verification).
func (r *endpointRun) serverUnverified() string {
	if !r.opts.Verify {
		return ""
	}
	for _, id := range []string{CheckServerCA, CheckServerName, CheckServerUsage, CheckServerExpiry} {
		if c, ok := r.results[id]; ok && c.Status == StatusFail {
			return c.Name
		}
	}
	return ""
}

func (r *endpointRun) checkPing(a *answer) {
	switch {
	case a.status == http.StatusOK:
		r.ok(CheckAPIPing, fmt.Sprintf("the Docker API answers (API version %s, %s)", orUnknown(a.header.Get("Api-Version")), orUnknown(a.header.Get("Ostype"))))
	case a.status >= 500:
		r.fail(CheckAPIPing, fmt.Sprintf("the gateway answers, but not its Docker daemon (%d): %s", a.status, dockerMessage(a.body)),
			"check that dockerd runs on the gateway's machine and that serve's --upstream points at it")
	default:
		r.fail(CheckAPIPing, fmt.Sprintf("GET /_ping answered %d: %s", a.status, dockerMessage(a.body)), "see the message; 'dockgate status' shows the role")
	}
}

func (r *endpointRun) checkIdentity(a *answer, err error) {
	switch {
	case err != nil:
		r.fail(CheckIdentity, "no answer from "+identity.WhoamiPath+": "+err.Error(), "check the gateway's log")
		return
	case a.status == http.StatusNotFound:
		r.skip(CheckIdentity, "not a dockgate gateway (no "+identity.WhoamiPath+"): dockerd itself?")
		return
	case a.status != http.StatusOK:
		r.fail(CheckIdentity, fmt.Sprintf("%s answered %d: %s", identity.WhoamiPath, a.status, dockerMessage(a.body)), "check the gateway's log")
		return
	}
	w, perr := parseWhoami(a.body)
	if perr != nil {
		r.fail(CheckIdentity, "unreadable answer from "+identity.WhoamiPath+": "+perr.Error(), "check that dockgate on both sides is recent")
		return
	}
	id := fmt.Sprintf("CN=%s groups=[%s]", w.CN, strings.Join(w.Groups, ","))
	if w.Role == "" {
		r.fail(CheckIdentity, "the gateway sees "+id+", but no clients: entry matches it, so every Docker API call is refused",
			fmt.Sprintf("add '- cn: %s' (or '- group: GROUP') with a role to the gateway config's clients: list", w.CN))
		return
	}
	r.ok(CheckIdentity, "the gateway sees "+id+", role "+w.Role)
}

// roughly says how long is left in days and hours, or hours and minutes.
func roughly(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day {
		return fmt.Sprintf("%dd %dh", d/day, d%day/time.Hour)
	}
	return fmt.Sprintf("%dh %dm", d/time.Hour, d%time.Hour/time.Minute)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// alertText is the alert's description without Go's prefixes.
func alertText(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return "TLS alert: " + strings.TrimPrefix(oe.Err.Error(), "tls: ")
	}
	return err.Error()
}

// within is now, or the nearest instant inside c's validity: chain checks
// then say nothing about time, which the expiry checks cover.
func within(c *x509.Certificate, now time.Time) time.Time {
	switch {
	case now.Before(c.NotBefore):
		return c.NotBefore
	case now.After(c.NotAfter):
		return c.NotAfter
	}
	return now
}

func parseCertPEM(data []byte) (*x509.Certificate, error) {
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, errors.New("no PEM certificate")
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}

func certPool(data []byte) (*x509.CertPool, error) {
	if len(data) == 0 {
		return nil, errors.New("none given")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

func poolOf(certs []*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool
}

// describeCA names a CA and its key, so two CAs of the same name differ.
func describeCA(c *x509.Certificate) string {
	if c == nil {
		return "unknown"
	}
	return fmt.Sprintf("%q (key id %s)", c.Subject.CommonName, shortKeyID(c.SubjectKeyId))
}

// issuerOf names the CA that signed c, as c records it.
func issuerOf(c *x509.Certificate) string {
	return fmt.Sprintf("%q (key id %s)", c.Issuer.CommonName, shortKeyID(c.AuthorityKeyId))
}

func shortKeyID(id []byte) string {
	if len(id) == 0 {
		return "none"
	}
	if len(id) > 8 {
		id = id[:8]
	}
	return hex.EncodeToString(id)
}
