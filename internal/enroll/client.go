package enroll

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
)

// DefaultTimeout bounds one request to the gateway, connection included.
const DefaultTimeout = 30 * time.Second

// maxResponseBytes bounds what the client reads: a certificate and a CA
// in PEM are a few KiB.
const maxResponseBytes = 1 << 20

// ClientKeyType is the key a client makes for itself: ECDSA P-256 is
// what every docker CLI and dockerd accept, and the fastest to handshake.
const ClientKeyType = pki.KeyTypeECDSAP256

// Credentials are what a client holds after enrolling or renewing: the
// material of a docker context.
type Credentials struct {
	Name    string // the certificate's name (CN)
	Host    string // tcp://HOST:PORT of the gateway's Docker API
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte // unencrypted PKCS#8, as the docker CLI reads it
	Cert    *x509.Certificate
}

// LoginOptions tune Login.
type LoginOptions struct {
	Timeout time.Duration // per address; 0: DefaultTimeout
	// Progress, if set, hears about each address tried.
	Progress func(format string, args ...any)
}

// Login enrolls with tok. It tries the token's addresses in order. At each
// it fetches the CA certificate and checks it against the token's pin and
// the server's certificate against that CA; only then does it send the
// token's secret, over a connection verified against the pinned CA, with a
// CSR for a key made here. The key never leaves this machine.
//
// A CA that does not match the pin stops everything with ErrCAMismatch:
// the token is wrong, or someone is in the middle.
func Login(ctx context.Context, tok Token, opts LoginOptions) (*Credentials, error) {
	var failures []string
	for _, addr := range tok.Addresses {
		opts.progress("contacting %s", addr)
		creds, err := loginAt(ctx, tok, addr, opts)
		if err == nil {
			return creds, nil
		}
		var ce *connectError
		if !errors.As(err, &ce) {
			return nil, err
		}
		failures = append(failures, err.Error())
	}
	return nil, fmt.Errorf("failed to reach the gateway at any address in the token: %s", strings.Join(failures, "; "))
}

func (o LoginOptions) progress(format string, args ...any) {
	if o.Progress != nil {
		o.Progress(format, args...)
	}
}

func (o LoginOptions) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// connectError is a failure to talk to one address; Login tries the next.
type connectError struct {
	addr string
	err  error
}

func (e *connectError) Error() string { return e.addr + ": " + e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

func loginAt(ctx context.Context, tok Token, addr string, opts LoginOptions) (*Credentials, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout())
	defer cancel()
	host, _, _ := net.SplitHostPort(addr)
	ca, err := fetchPinnedCA(ctx, addr, host, tok.CAPin)
	if err != nil {
		return nil, err
	}
	key, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(enrollRequest{Secret: base64.RawURLEncoding.EncodeToString(tok.Secret[:]), CSR: string(csrPEM)})
	client := verifiedClient(ca, host, nil)
	defer client.CloseIdleConnections()
	var resp certResponse
	if err := postJSON(ctx, client, "https://"+addr+EnrollPath, body, &resp); err != nil {
		return nil, err
	}
	creds, err := credentialsFrom(resp, ca, key)
	if err != nil {
		return nil, err
	}
	port := resp.GatewayPort
	if port == "" {
		return nil, errors.New("the gateway did not say which port its Docker API is on")
	}
	creds.Host = "tcp://" + net.JoinHostPort(host, port)
	return creds, nil
}

// fetchPinnedCA gets the CA certificate from the enrollment endpoint over
// an unverified connection (nothing secret is sent on it), then checks it
// against the pin and the server's certificate against it.
func fetchPinnedCA(ctx context.Context, addr, host string, pin [PinSize]byte) (*x509.Certificate, error) {
	ca, cs, err := fetchCA(ctx, addr)
	if err != nil {
		return nil, err
	}
	if got := sha256.Sum256(ca.RawSubjectPublicKeyInfo); got != pin {
		return nil, fmt.Errorf("%w: the gateway at %s presents CA %q with key SHA-256 %s, but the token pins %s: "+
			"either this is the wrong token for this gateway, or someone is intercepting the connection; nothing was sent",
			ErrCAMismatch, addr, ca.Subject.CommonName, hex.EncodeToString(got[:]), hex.EncodeToString(pin[:]))
	}
	if err := verifyServer(cs, ca, host); err != nil {
		return nil, fmt.Errorf("%w: the server at %s presents a certificate the pinned CA did not sign for %s (%v): "+
			"someone may be intercepting the connection; nothing was sent", ErrCAMismatch, addr, host, err)
	}
	return ca, nil
}

// CheckListener reports whether an enrollment listener of the CA ca
// answers at addr, that is whether a gateway that can sign for this CA
// runs there (serve opens the listener only once it has unlocked the CA
// key). Only the CA is compared: addr is how this machine reaches the
// listener, which need not be a name in the server certificate.
func CheckListener(ctx context.Context, addr string, ca *x509.Certificate) error {
	got, _, err := fetchCA(ctx, addr)
	if err != nil {
		return err
	}
	if !bytes.Equal(got.RawSubjectPublicKeyInfo, ca.RawSubjectPublicKeyInfo) {
		return fmt.Errorf("%w: the enrollment listener at %s serves CA %q, not %q", ErrCAMismatch, addr, got.Subject.CommonName, ca.Subject.CommonName)
	}
	return nil
}

// fetchCA gets the CA certificate from the enrollment endpoint over an
// unverified connection; the caller checks it.
func fetchCA(ctx context.Context, addr string) (*x509.Certificate, *tls.ConnectionState, error) {
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{
			// Verified below, against the pinned CA, before use.
			InsecureSkipVerify: true, //nolint:gosec
			MinVersion:         tls.VersionTLS12,
		},
		ForceAttemptHTTP2: false,
	}}
	defer client.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+CAPath, nil)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, &connectError{addr, unwrapURLError(err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, nil, &connectError{addr, err}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, &connectError{addr, fmt.Errorf("no enrollment endpoint here (%s)", resp.Status)}
	}
	ca, err := pki.ParseCertPEM(data)
	if err != nil {
		return nil, nil, &connectError{addr, fmt.Errorf("no CA certificate from the enrollment endpoint: %v", err)}
	}
	return ca, resp.TLS, nil
}

func verifyServer(cs *tls.ConnectionState, ca *x509.Certificate, host string) error {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return errors.New("no server certificate")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		DNSName:   host,
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// verifiedClient verifies the server against ca alone, for host, and
// presents cert when given.
func verifiedClient(ca *x509.Certificate, host string, cert *tls.Certificate) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	cfg := &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
}

// NewKeyAndCSR makes a ClientKeyType key and a CSR for it. The CSR carries
// no identity: the gateway decides it.
func NewKeyAndCSR() (crypto.Signer, []byte, error) {
	key, err := pki.GenerateKey(ClientKeyType)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dockgate client"}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("failed to create a certificate request: %w", err)
	}
	return key, pki.EncodeCSRPEM(der), nil
}

// postJSON posts body and decodes a 200 answer into out; any other answer
// becomes the client's error for it.
func postJSON(ctx context.Context, client *http.Client, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return unwrapURLError(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("failed to read the gateway's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return refusalError(resp.StatusCode, resp.Header, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("failed to decode the gateway's answer: %w", err)
	}
	return nil
}

// unwrapURLError drops net/http's "Post \"https://...\":" prefix; the
// callers name the address themselves.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// credentialsFrom checks an answer: the certificate is for our key, is a
// client certificate, and chains to ca.
func credentialsFrom(resp certResponse, ca *x509.Certificate, key crypto.Signer) (*Credentials, error) {
	cert, err := pki.ParseCertPEM([]byte(resp.Cert))
	if err != nil {
		return nil, fmt.Errorf("the gateway sent an unusable certificate: %w", err)
	}
	if !pki.KeyMatchesCert(key, cert) {
		return nil, errors.New("the gateway sent a certificate for another key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("the gateway sent a certificate that does not verify as a client certificate: %w", err)
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		return nil, err
	}
	return &Credentials{Name: cert.Subject.CommonName, CAPEM: pki.EncodeCertPEM(ca),
		CertPEM: pki.EncodeCertPEM(cert), KeyPEM: keyPEM, Cert: cert}, nil
}

// Gateway talks to a gateway's own API over mutual TLS with a client
// certificate, as the docker CLI would with the same context.
type Gateway struct {
	Host   string // tcp://HOST:PORT
	CA     *x509.Certificate
	Cert   tls.Certificate // Leaf set
	client *http.Client
	base   string
}

// NewGateway prepares a client for host with the context's material.
func NewGateway(host string, caPEM, certPEM, keyPEM []byte) (*Gateway, error) {
	hostport, ok := strings.CutPrefix(host, "tcp://")
	if !ok {
		return nil, fmt.Errorf("host %q is not tcp://HOST:PORT", host)
	}
	name, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, fmt.Errorf("host %q is not tcp://HOST:PORT", host)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("client certificate and key: %w", err)
	}
	return &Gateway{Host: host, CA: ca, Cert: pair, client: verifiedClient(ca, name, &pair), base: "https://" + hostport}, nil
}

// Close releases idle connections.
func (g *Gateway) Close() { g.client.CloseIdleConnections() }

// Whoami asks the gateway how it sees this client.
func (g *Gateway) Whoami(ctx context.Context) (*identity.Whoami, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.base+identity.WhoamiPath, nil)
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, g.explain(unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, refusalError(resp.StatusCode, resp.Header, data)
	}
	var w identity.Whoami
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("failed to decode whoami: %w", err)
	}
	return &w, nil
}

// Renew trades the current certificate for a new one with a new key. The
// gateway keeps the name, groups and lifetime; the old certificate stays
// valid until it expires. An expired certificate cannot renew: the
// handshake would fail, so it is refused here with ErrCertExpired.
func (g *Gateway) Renew(ctx context.Context, now time.Time) (*Credentials, error) {
	if leaf := g.Cert.Leaf; leaf != nil && !now.Before(leaf.NotAfter) {
		return nil, fmt.Errorf("%w on %s: it cannot renew itself; enroll again with a new token ('dockgate token create' on the gateway, then 'dockgate login')",
			ErrCertExpired, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	key, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(renewRequest{CSR: string(csrPEM)})
	var resp certResponse
	if err := postJSON(ctx, g.client, g.base+RenewPath, body, &resp); err != nil {
		return nil, g.explain(err)
	}
	creds, err := credentialsFrom(resp, g.CA, key)
	if err != nil {
		return nil, err
	}
	if g.Cert.Leaf != nil && creds.Name != g.Cert.Leaf.Subject.CommonName {
		return nil, fmt.Errorf("the gateway renewed %q as %q", g.Cert.Leaf.Subject.CommonName, creds.Name)
	}
	creds.Host = g.Host
	return creds, nil
}

// explain turns the gateway's refusal of our certificate at the handshake
// into what it most likely means. crypto/tls servers send the alert "bad
// certificate" for every refusal; with a certificate that is unexpired and
// from the gateway's own CA, the remaining reason is revocation.
func (g *Gateway) explain(err error) error {
	if !IsCertificateRefusal(err) {
		return err
	}
	serial := ""
	if g.Cert.Leaf != nil {
		serial = " (serial " + pki.SerialHex(g.Cert.Leaf.SerialNumber) + ")"
	}
	return fmt.Errorf("%w: the gateway refused the client certificate%s at the handshake although it is unexpired and from the gateway's CA; "+
		"enroll again with a new token (%v)", ErrCertRevoked, serial, err)
}

// IsCertificateRefusal reports the TLS alert a crypto/tls server (the
// gateway) sends when it refuses the client's certificate.
func IsCertificateRefusal(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "remote error" {
		return false
	}
	msg := oe.Err.Error()
	return strings.HasSuffix(msg, "bad certificate") || strings.HasSuffix(msg, "revoked certificate")
}
