package pki_test

import (
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
)

// A CA issues a server certificate for a Docker host; the result verifies as
// a TLS server certificate for the names asked for.
func Example() {
	now := time.Now()
	caKey, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		panic(err)
	}
	ca, err := pki.NewCA("dockgate CA", caKey, 0, now)
	if err != nil {
		panic(err)
	}
	dnsName, _, err := pki.ParseSAN("docker.example.com")
	if err != nil {
		panic(err)
	}
	_, ip, err := pki.ParseSAN("192.0.2.10")
	if err != nil {
		panic(err)
	}
	serverKey, err := pki.GenerateKey(pki.DefaultKeyType)
	if err != nil {
		panic(err)
	}
	cert, err := ca.Issue(pki.LeafRequest{
		Kind: pki.KindServer, Name: "docker1",
		DNSNames: []string{dnsName}, IPs: []net.IP{ip},
		PublicKey: serverKey.Public(), Now: now,
	})
	if err != nil {
		panic(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "192.0.2.10",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	fmt.Println(cert.Subject.CommonName, cert.DNSNames, cert.IPAddresses, err)
	// Output: docker1 [docker.example.com] [192.0.2.10] <nil>
}

// An encrypted CA key needs its passphrase back.
func ExampleParseKeyPEM() {
	key, err := pki.GenerateKey(pki.KeyTypeEd25519)
	if err != nil {
		panic(err)
	}
	data, err := pki.MarshalKeyPEM(key, []byte("correct horse"))
	if err != nil {
		panic(err)
	}
	_, err = pki.ParseKeyPEM(data, nil)
	fmt.Println(err)
	_, err = pki.ParseKeyPEM(data, []byte("wrong horse"))
	fmt.Println(err)
	_, err = pki.ParseKeyPEM(data, []byte("correct horse"))
	fmt.Println(err)
	// Output:
	// key is encrypted and needs a passphrase
	// wrong passphrase
	// <nil>
}

// The openssl recipe's SAN syntax is refused with a hint.
func ExampleParseSAN() {
	_, _, err := pki.ParseSAN("IP:192.168.0.1")
	fmt.Println(err)
	// Output: subject alternative name "IP:192.168.0.1" uses openssl's IP: syntax: pass the bare value (e.g. --san 192.168.0.1)
}
