package enroll

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// ServerCredentials are what a joining host receives: its server
// certificate and key, and the CA certificate (never the CA key).
type ServerCredentials struct {
	Name    string // the certificate's name (CN): the token's name
	CAPEM   []byte
	CertPEM []byte
	KeyPEM  []byte // unencrypted PKCS#8, as Docker reads key.pem
	Cert    *x509.Certificate
	// Via is the enrollment address that signed.
	Via string
}

// Join trades a host token for a server certificate with the given SANs,
// as Login does for a client: at each of the token's addresses it checks
// the CA against the token's pin before sending the secret, with a CSR for
// a key made here. The key never leaves this machine.
func Join(ctx context.Context, tok Token, sans []string, opts LoginOptions) (*ServerCredentials, error) {
	if err := checkJoinSANs(sans); err != nil {
		return nil, fmt.Errorf("failed to join: %w", err)
	}
	var failures []string
	for _, addr := range tok.Addresses {
		opts.progress("contacting %s", addr)
		creds, err := joinAt(ctx, tok, addr, sans, opts)
		if err == nil {
			return creds, nil
		}
		var ce *connectError
		if !errors.As(err, &ce) {
			return nil, err
		}
		failures = append(failures, err.Error())
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSigner, strings.Join(failures, "; "))
}

// ErrNoSigner: no address in the token answered as an enrollment listener.
var ErrNoSigner = errors.New("no gateway that can sign answered at the token's addresses")

func joinAt(ctx context.Context, tok Token, addr string, sans []string, opts LoginOptions) (*ServerCredentials, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.timeout())
	defer cancel()
	host, _, _ := net.SplitHostPort(addr)
	ca, err := fetchPinnedCA(ctx, addr, host, tok.CAPin)
	if err != nil {
		return nil, err
	}
	key, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: tok.Name}}, key)
	if err != nil {
		return nil, fmt.Errorf("failed to create a certificate request: %w", err)
	}
	body, _ := json.Marshal(enrollRequest{Secret: base64.RawURLEncoding.EncodeToString(tok.Secret[:]),
		CSR: string(pki.EncodeCSRPEM(der)), Kind: store.KindServer, SANs: sans})
	client := verifiedClient(ca, host, nil)
	defer client.CloseIdleConnections()
	var resp certResponse
	if err := postJSON(ctx, client, "https://"+addr+EnrollPath, body, &resp); err != nil {
		return nil, err
	}
	creds, err := serverCredentialsFrom(resp, ca, key, sans)
	if err != nil {
		return nil, err
	}
	creds.Via = addr
	return creds, nil
}

// serverCredentialsFrom checks an answer: the certificate is for our key,
// verifies as a server certificate from ca, and carries every name asked
// for.
func serverCredentialsFrom(resp certResponse, ca *x509.Certificate, key crypto.Signer, sans []string) (*ServerCredentials, error) {
	cert, err := pki.ParseCertPEM([]byte(resp.Cert))
	if err != nil {
		return nil, fmt.Errorf("the gateway sent an unusable certificate: %w", err)
	}
	if !pki.KeyMatchesCert(key, cert) {
		return nil, errors.New("the gateway sent a certificate for another key")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("the gateway sent a certificate that does not verify as a server certificate: %w", err)
	}
	for _, san := range sans {
		dns, ip, _ := pki.ParseSAN(san)
		if ip != nil && !slices.ContainsFunc(cert.IPAddresses, ip.Equal) || ip == nil && !slices.Contains(cert.DNSNames, dns) {
			return nil, fmt.Errorf("the gateway sent a server certificate without the name %s", san)
		}
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		return nil, err
	}
	return &ServerCredentials{Name: cert.Subject.CommonName, CAPEM: pki.EncodeCertPEM(ca),
		CertPEM: pki.EncodeCertPEM(cert), KeyPEM: keyPEM, Cert: cert}, nil
}
