package pki

import (
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// opensslFixture writes a CA, a server and a client certificate, an
// encrypted key and a CRL revoking a second client, for checks with openssl.
type opensslFixture struct {
	dir                      string
	ca, server, client, crl  string
	revoked, key             string
	revokedSerial            *big.Int
	serverCert, clientSerial string
}

func newOpensslFixture(t *testing.T) *opensslFixture {
	t.Helper()
	openssl(t) // skip early when missing
	now := time.Now()
	ca, err := NewCA("dockgate openssl test CA", testKey(t, KeyTypeECDSAP256), 0, now)
	if err != nil {
		t.Fatal(err)
	}
	server := issueTest(t, ca, LeafRequest{Kind: KindServer, Name: "srv", Now: now,
		DNSNames: []string{"srv.example", "localhost"}, IPs: mustIPs(t, "127.0.0.1", "::1"),
		PublicKey: testKey(t, KeyTypeRSA2048).Public()})
	client := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "alice", Groups: []string{"devs"}, Now: now,
		PublicKey: testKey(t, KeyTypeEd25519).Public()})
	revoked := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "mallory", Now: now,
		PublicKey: testKey(t, KeyTypeECDSAP384).Public()})
	crl, err := ca.CreateCRL([]Revoked{{Serial: revoked.SerialNumber, RevokedAt: now, Reason: "keyCompromise"}},
		big.NewInt(3), now, 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := MarshalKeyPEM(testKey(t, KeyTypeEd25519), []byte("hunter2-but-longer"))
	if err != nil {
		t.Fatal(err)
	}
	f := &opensslFixture{dir: t.TempDir(), revokedSerial: revoked.SerialNumber,
		serverCert: Fingerprint(server), clientSerial: SerialHex(client.SerialNumber)}
	f.ca = f.write(t, "ca.pem", EncodeCertPEM(ca.Cert))
	f.server = f.write(t, "server.pem", EncodeCertPEM(server))
	f.client = f.write(t, "client.pem", EncodeCertPEM(client))
	f.revoked = f.write(t, "revoked.pem", EncodeCertPEM(revoked))
	f.crl = f.write(t, "crl.pem", crl)
	f.key = f.write(t, "key.pem", key)
	return f
}

func (f *opensslFixture) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOpensslText(t *testing.T) {
	f := newOpensslFixture(t)
	tests := []struct {
		name    string
		file    string
		want    []string
		wantNot []string
	}{
		{"server", f.server,
			[]string{"TLS Web Server Authentication", "DNS:srv.example", "DNS:localhost", "IP Address:127.0.0.1",
				"IP Address:0:0:0:0:0:0:0:1", "CA:FALSE", "Digital Signature, Key Encipherment",
				"X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier", "Subject: CN = srv"},
			[]string{"Client Authentication", "Certificate Sign"}},
		{"client", f.client,
			[]string{"TLS Web Client Authentication", "CA:FALSE", "Digital Signature", "O = devs", "CN = alice"},
			[]string{"Server Authentication", "Key Encipherment", "Subject Alternative Name"}},
		{"CA", f.ca,
			[]string{"CA:TRUE, pathlen:0", "Certificate Sign, CRL Sign", "X509v3 Subject Key Identifier"},
			[]string{"Extended Key Usage", "Digital Signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runOpenssl(t, "x509", "-in", tt.file, "-noout", "-text")
			if err != nil {
				t.Fatalf("openssl x509: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("openssl x509 -text lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("openssl x509 -text contains %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestOpensslVerify(t *testing.T) {
	f := newOpensslFixture(t)
	tests := []struct {
		name    string
		args    []string
		cert    string
		wantErr string // empty: must print "OK"
	}{
		{"server", nil, f.server, ""},
		{"client", nil, f.client, ""},
		{"server for TLS server", []string{"-purpose", "sslserver"}, f.server, ""},
		{"client for TLS client", []string{"-purpose", "sslclient"}, f.client, ""},
		{"server as client", []string{"-purpose", "sslclient"}, f.server, "unsuitable certificate purpose"},
		{"client as server", []string{"-purpose", "sslserver"}, f.client, "unsuitable certificate purpose"},
		{"server by name", []string{"-verify_hostname", "srv.example"}, f.server, ""},
		{"server by IP", []string{"-verify_ip", "127.0.0.1"}, f.server, ""},
		{"server wrong name", []string{"-verify_hostname", "other.example"}, f.server, "hostname mismatch"},
		{"CRL, valid client", []string{"-crl_check", "-CRLfile", f.crl}, f.client, ""},
		{"CRL, revoked client", []string{"-crl_check", "-CRLfile", f.crl}, f.revoked, "certificate revoked"},
		{"CA is self-signed", nil, f.ca, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"verify", "-CAfile", f.ca}, tt.args...)
			out, err := runOpenssl(t, append(args, tt.cert)...)
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out, ": OK") {
					t.Errorf("openssl verify: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(out, tt.wantErr) {
				t.Errorf("openssl verify: err=%v, want failure with %q:\n%s", err, tt.wantErr, out)
			}
		})
	}
}

func TestOpensslCRLText(t *testing.T) {
	f := newOpensslFixture(t)
	out, err := runOpenssl(t, "crl", "-in", f.crl, "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl: %v\n%s", err, out)
	}
	serial := strings.ToUpper(SerialHex(f.revokedSerial))
	if !strings.Contains(strings.ReplaceAll(out, ":", ""), serial) {
		t.Errorf("openssl crl -text lacks serial %s:\n%s", serial, out)
	}
	for _, w := range []string{"Key Compromise", "X509v3 CRL Number", "3"} {
		if !strings.Contains(out, w) {
			t.Errorf("openssl crl -text lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(strings.ToLower(out), f.clientSerial) {
		t.Errorf("openssl crl -text lists the valid client's serial %s", f.clientSerial)
	}
}

func TestOpensslFingerprintAndKey(t *testing.T) {
	f := newOpensslFixture(t)
	out, err := runOpenssl(t, "x509", "-in", f.server, "-noout", "-fingerprint", "-sha256")
	if err != nil {
		t.Fatalf("openssl x509 -fingerprint: %v\n%s", err, out)
	}
	got := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(out[strings.Index(out, "=")+1:]), ":", ""))
	if got != f.serverCert {
		t.Errorf("openssl fingerprint %s, Fingerprint %s", got, f.serverCert)
	}
	if out, err := runOpenssl(t, "pkey", "-in", f.key, "-passin", "pass:hunter2-but-longer", "-noout"); err != nil {
		t.Errorf("openssl pkey with the right passphrase: %v\n%s", err, out)
	}
	if out, err := runOpenssl(t, "pkey", "-in", f.key, "-passin", "pass:wrong", "-noout"); err == nil {
		t.Errorf("openssl pkey with a wrong passphrase succeeded:\n%s", out)
	}
}

func openssl(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH")
	}
	return path
}

func runOpenssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(openssl(t), args...).CombinedOutput()
	return string(out), err
}

func mustIPs(t *testing.T, ss ...string) []net.IP {
	t.Helper()
	var ips []net.IP
	for _, s := range ss {
		_, ip, err := ParseSAN(s)
		if err != nil || ip == nil {
			t.Fatalf("ParseSAN(%q) = %v, %v", s, ip, err)
		}
		ips = append(ips, ip)
	}
	return ips
}
