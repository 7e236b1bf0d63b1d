package dockerconf

import (
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"
)

func kinds(fs []Finding) []FindingKind {
	var k []FindingKind
	for _, f := range fs {
		k = append(k, f.Kind)
	}
	return k
}

func TestCheckServerCert(t *testing.T) {
	p := newTestPKI(t)
	server := p.server("web", []string{"localhost", "web.example", "*.wild.example"}, "127.0.0.1", "::1")
	now := time.Now()
	tests := []struct {
		name         string
		listen       string
		wantKinds    []FindingKind
		wantContains string
	}{
		{"loopback in SANs", "tcp://127.0.0.1:2376", nil, ""},
		{"ipv6 loopback in SANs", "tcp://[::1]:2376", nil, ""},
		{"dns name in SANs", "tcp://web.example:2376", nil, ""},
		{"wildcard covers", "tcp://a.wild.example:2376", nil, ""},
		{"address not in SANs", "tcp://10.0.0.5:2376", []FindingKind{ListenNotInSANs},
			`"certificate is valid for localhost, web.example, *.wild.example, 127.0.0.1, ::1, not 10.0.0.5"`},
		{"all interfaces", "tcp://0.0.0.0:2376", []FindingKind{ListenAllInterfaces},
			"tcp://localhost:2376, tcp://web.example:2376, tcp://127.0.0.1:2376, tcp://[::1]:2376"},
		{"all interfaces v6", "tcp://[::]:9999", []FindingKind{ListenAllInterfaces}, "tcp://[::1]:9999"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			listen, _, err := ParseHost(tt.listen)
			if err != nil {
				t.Fatal(err)
			}
			got := CheckServerCert(server.cert, listen, now)
			if !slices.Equal(kinds(got), tt.wantKinds) {
				t.Fatalf("findings = %+v, want kinds %v", got, tt.wantKinds)
			}
			if tt.wantContains != "" && !strings.Contains(got[0].Message, tt.wantContains) {
				t.Errorf("message %q does not contain %q", got[0].Message, tt.wantContains)
			}
		})
	}
}

func TestCheckServerCertProblems(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	loopback := Host{Hostname: "127.0.0.1", Port: 2376}
	client := p.client("alice")
	noSANs := p.server("web", nil)
	expired := p.issue(leafOpts{cn: "old", usage: x509.ExtKeyUsageServerAuth, ips: client.cert.IPAddresses,
		dnsNames: []string{"localhost"}, notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)})
	future := p.issue(leafOpts{cn: "new", usage: x509.ExtKeyUsageServerAuth, dnsNames: []string{"127.0.0.1.nip.io"},
		notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour)})
	tests := []struct {
		name string
		cert *x509.Certificate
		want []FindingKind
	}{
		{"client certificate as server", client.cert, []FindingKind{WrongUsage, NoSANs}},
		{"no SANs", noSANs.cert, []FindingKind{NoSANs}},
		{"expired", expired.cert, []FindingKind{Expired, ListenNotInSANs}},
		{"not yet valid", future.cert, []FindingKind{NotYetValid, ListenNotInSANs}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckServerCert(tt.cert, loopback, now)
			if !slices.Equal(kinds(got), tt.want) {
				t.Errorf("findings = %+v, want kinds %v", got, tt.want)
			}
			for _, f := range got {
				if !f.Warning() {
					t.Errorf("finding %+v is not a warning", f)
				}
			}
		})
	}
}

func TestCheckClientCert(t *testing.T) {
	p := newTestPKI(t)
	now := time.Now()
	tests := []struct {
		name string
		leaf leaf
		want []FindingKind
	}{
		{"client", p.client("alice"), nil},
		{"server certificate as client", p.server("web", []string{"localhost"}), []FindingKind{WrongUsage}},
		{"expired", p.issue(leafOpts{cn: "a", usage: x509.ExtKeyUsageClientAuth, notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Minute)}), []FindingKind{Expired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckClientCert(tt.leaf.cert, now); !slices.Equal(kinds(got), tt.want) {
				t.Errorf("findings = %+v, want kinds %v", got, tt.want)
			}
		})
	}
}

func TestParseCertPEM(t *testing.T) {
	p := newTestPKI(t)
	l := p.client("alice")
	withKeyFirst := append(append([]byte{}, l.keyPEM...), l.certPEM...)
	cert, err := ParseCertPEM(withKeyFirst)
	if err != nil || cert.Subject.CommonName != "alice" {
		t.Fatalf("ParseCertPEM(key then cert) = %v, %v; want alice", cert, err)
	}
	for _, bad := range [][]byte{nil, []byte("garbage"), l.keyPEM, pemBlock("CERTIFICATE", []byte("not DER"))} {
		if _, err := ParseCertPEM(bad); err == nil {
			t.Errorf("ParseCertPEM(%q) succeeded, want an error", bad)
		}
	}
}

func FuzzParseCertPEM(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cert, err := ParseCertPEM(data)
		if (cert == nil) == (err == nil) {
			t.Fatalf("ParseCertPEM returned cert %v and error %v", cert, err)
		}
	})
}
