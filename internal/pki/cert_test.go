package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // recomputing RFC 5280 method 1 key identifiers
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCATemplate(t *testing.T) {
	for _, kt := range KeyTypes() {
		t.Run(string(kt), func(t *testing.T) {
			key := testKey(t, kt)
			ca, err := NewCA("Example CA", key, 0, testNow)
			if err != nil {
				t.Fatal(err)
			}
			c := ca.Cert
			if !c.IsCA || !c.BasicConstraintsValid {
				t.Errorf("IsCA=%v BasicConstraintsValid=%v, want true true", c.IsCA, c.BasicConstraintsValid)
			}
			if c.MaxPathLen != 0 || !c.MaxPathLenZero {
				t.Errorf("MaxPathLen=%d MaxPathLenZero=%v, want 0 true", c.MaxPathLen, c.MaxPathLenZero)
			}
			if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; c.KeyUsage != want {
				t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, want)
			}
			if len(c.ExtKeyUsage) != 0 || len(c.UnknownExtKeyUsage) != 0 {
				t.Errorf("ExtKeyUsage = %v %v, want none", c.ExtKeyUsage, c.UnknownExtKeyUsage)
			}
			if !bytes.Equal(c.SubjectKeyId, wantSKI(t, c)) {
				t.Errorf("SubjectKeyId = %x, want %x", c.SubjectKeyId, wantSKI(t, c))
			}
			if !bytes.Equal(c.AuthorityKeyId, c.SubjectKeyId) {
				t.Errorf("AuthorityKeyId = %x, want its own SubjectKeyId %x", c.AuthorityKeyId, c.SubjectKeyId)
			}
			if c.Subject.CommonName != "Example CA" || !bytes.Equal(c.RawSubject, c.RawIssuer) {
				t.Errorf("subject %q issuer %q, want self-signed Example CA", c.Subject, c.Issuer)
			}
			checkValidity(t, c, testNow.Add(-time.Minute), testNow.Add(3650*24*time.Hour))
			checkSerial(t, c.SerialNumber)
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("self-signature: %v", err)
			}
			if !KeyMatchesCert(key, c) {
				t.Error("KeyMatchesCert(CA key, CA cert) = false")
			}
		})
	}
}

func TestLeafTemplates(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	for _, kt := range KeyTypes() {
		for _, kind := range []Kind{KindServer, KindClient} {
			t.Run(string(kind)+"/"+string(kt), func(t *testing.T) {
				req := LeafRequest{Kind: kind, Name: "box1", PublicKey: testKey(t, kt).Public()}
				if kind == KindServer {
					req.DNSNames = []string{"box1.example.com", "localhost"}
					req.IPs = []net.IP{net.ParseIP("192.0.2.7").To4(), net.ParseIP("::1")}
				} else {
					req.Groups = []string{"admins", "ops"}
				}
				c := issueTest(t, ca, req)
				checkLeaf(t, ca, c, req, kt)
			})
		}
	}
}

func checkLeaf(t *testing.T, ca *CA, c *x509.Certificate, req LeafRequest, kt KeyType) {
	t.Helper()
	wantEKU := x509.ExtKeyUsageServerAuth
	if req.Kind == KindClient {
		wantEKU = x509.ExtKeyUsageClientAuth
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{wantEKU}) || len(c.UnknownExtKeyUsage) != 0 {
		t.Errorf("ExtKeyUsage = %v, want exactly [%v]", c.ExtKeyUsage, wantEKU)
	}
	wantKU := x509.KeyUsageDigitalSignature
	if strings.HasPrefix(string(kt), "rsa") {
		wantKU |= x509.KeyUsageKeyEncipherment
	}
	if c.KeyUsage != wantKU {
		t.Errorf("KeyUsage = %b, want %b", c.KeyUsage, wantKU)
	}
	if c.IsCA || !c.BasicConstraintsValid {
		t.Errorf("IsCA=%v BasicConstraintsValid=%v, want false true", c.IsCA, c.BasicConstraintsValid)
	}
	if c.Subject.CommonName != req.Name {
		t.Errorf("CN = %q, want %q", c.Subject.CommonName, req.Name)
	}
	if !slices.Equal(sorted(c.Subject.Organization), sorted(req.Groups)) {
		t.Errorf("O = %q, want %q", c.Subject.Organization, req.Groups)
	}
	if !slices.Equal(c.DNSNames, req.DNSNames) {
		t.Errorf("DNSNames = %q, want %q", c.DNSNames, req.DNSNames)
	}
	if !slices.EqualFunc(c.IPAddresses, req.IPs, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", c.IPAddresses, req.IPs)
	}
	if len(c.EmailAddresses)+len(c.URIs) != 0 {
		t.Errorf("unexpected SANs: %v %v", c.EmailAddresses, c.URIs)
	}
	if !bytes.Equal(c.SubjectKeyId, wantSKI(t, c)) {
		t.Errorf("SubjectKeyId = %x, want %x", c.SubjectKeyId, wantSKI(t, c))
	}
	if !bytes.Equal(c.AuthorityKeyId, ca.Cert.SubjectKeyId) {
		t.Errorf("AuthorityKeyId = %x, want CA SKI %x", c.AuthorityKeyId, ca.Cert.SubjectKeyId)
	}
	if got, _ := KeyTypeOf(c.PublicKey); got != kt {
		t.Errorf("key type = %s, want %s", got, kt)
	}
	now := req.Now
	if now.IsZero() {
		now = testNow // what issueTest uses
	}
	checkValidity(t, c, now.Add(-time.Minute), now.Add(DefaultValidity(req.Kind)))
	checkSerial(t, c.SerialNumber)
}

func TestDefaultValidities(t *testing.T) {
	tests := []struct {
		kind Kind
		days int
	}{
		{KindCA, 3650},
		{KindServer, 397},
		{KindClient, 30},
	}
	for _, tt := range tests {
		if got := DefaultValidity(tt.kind); got != time.Duration(tt.days)*24*time.Hour {
			t.Errorf("DefaultValidity(%s) = %v, want %d days", tt.kind, got, tt.days)
		}
	}
}

func TestLeafVerifiesOnlyForItsUsage(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	other := newTestCAWithKey(t, KeyTypeECDSAP384)
	server := issueTest(t, ca, LeafRequest{Kind: KindServer, Name: "srv", DNSNames: []string{"srv.example"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}, PublicKey: testKey(t, KeyTypeEd25519).Public()})
	client := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "alice", PublicKey: testKey(t, KeyTypeEd25519).Public()})
	at := testNow.Add(time.Hour)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		roots   *CA
		usage   x509.ExtKeyUsage
		dnsName string
		wantOK  bool
	}{
		{"server as server", server, ca, x509.ExtKeyUsageServerAuth, "srv.example", true},
		{"server by IP", server, ca, x509.ExtKeyUsageServerAuth, "127.0.0.1", true},
		{"server wrong name", server, ca, x509.ExtKeyUsageServerAuth, "other.example", false},
		{"server as client", server, ca, x509.ExtKeyUsageClientAuth, "", false},
		{"client as client", client, ca, x509.ExtKeyUsageClientAuth, "", true},
		{"client as server", client, ca, x509.ExtKeyUsageServerAuth, "", false},
		{"client other CA", client, other, x509.ExtKeyUsageClientAuth, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool := x509.NewCertPool()
			pool.AddCert(tt.roots.Cert)
			_, err := tt.cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{tt.usage},
				DNSName: tt.dnsName, CurrentTime: at})
			if (err == nil) != tt.wantOK {
				t.Errorf("Verify: err = %v, want ok=%v", err, tt.wantOK)
			}
		})
	}
}

func newTestCAWithKey(t *testing.T, kt KeyType) *CA {
	t.Helper()
	key, err := GenerateKey(kt)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := NewCA("other CA", key, 0, testNow)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestLeafValidity(t *testing.T) {
	ca, err := NewCA("short CA", testKey(t, KeyTypeECDSAP256), 100*24*time.Hour, testNow)
	if err != nil {
		t.Fatal(err)
	}
	pub := testKey(t, KeyTypeECDSAP256).Public()
	tests := []struct {
		name         string
		now          time.Time
		validity     time.Duration
		wantNotAfter time.Time
	}{
		{"explicit", testNow, 48 * time.Hour, testNow.Add(48 * time.Hour)},
		{"default", testNow, 0, testNow.Add(30 * 24 * time.Hour)},
		{"capped at CA expiry", testNow, 365 * 24 * time.Hour, ca.Cert.NotAfter},
		{"late in CA life", testNow.Add(90 * 24 * time.Hour), 30 * 24 * time.Hour, ca.Cert.NotAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "c", PublicKey: pub, Validity: tt.validity, Now: tt.now})
			checkValidity(t, c, tt.now.Add(-time.Minute), tt.wantNotAfter)
		})
	}
}

func TestIssueRefuses(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	pub := testKey(t, KeyTypeECDSAP256).Public()
	smallRSA, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := []string{"srv.example"}
	tests := []struct {
		name    string
		req     LeafRequest
		wantErr string
	}{
		{"CA kind", LeafRequest{Kind: KindCA, Name: "x", PublicKey: pub}, "kind must be"},
		{"empty kind", LeafRequest{Name: "x", PublicKey: pub}, "kind must be"},
		{"empty name", LeafRequest{Kind: KindClient, PublicKey: pub}, "name is empty"},
		{"long name", LeafRequest{Kind: KindClient, Name: strings.Repeat("a", 65), PublicKey: pub}, "longer than 64"},
		{"no key", LeafRequest{Kind: KindClient, Name: "x"}, "no public key"},
		{"RSA-1024", LeafRequest{Kind: KindClient, Name: "x", PublicKey: &smallRSA.PublicKey}, "RSA key size 1024"},
		{"P-521", LeafRequest{Kind: KindClient, Name: "x", PublicKey: &p521.PublicKey}, "curve P-521"},
		{"server without SANs", LeafRequest{Kind: KindServer, Name: "x", PublicKey: pub}, "at least one DNS name"},
		{"server with groups", LeafRequest{Kind: KindServer, Name: "x", DNSNames: srv, Groups: []string{"g"}, PublicKey: pub}, "no groups"},
		{"client with SANs", LeafRequest{Kind: KindClient, Name: "x", DNSNames: srv, PublicKey: pub}, "no DNS names"},
		{"empty group", LeafRequest{Kind: KindClient, Name: "x", Groups: []string{""}, PublicKey: pub}, "group"},
		{"negative validity", LeafRequest{Kind: KindClient, Name: "x", PublicKey: pub, Validity: -time.Hour}, "negative"},
		{"expired CA", LeafRequest{Kind: KindClient, Name: "x", PublicKey: pub, Now: ca.Cert.NotAfter}, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.req.Now.IsZero() {
				tt.req.Now = testNow
			}
			cert, err := ca.Issue(tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Issue: cert=%v err=%v, want error containing %q", cert != nil, err, tt.wantErr)
			}
		})
	}
}

func TestSerials(t *testing.T) {
	const n = 2000
	seen := make(map[string]bool, n)
	long := 0
	for range n {
		s, err := NewSerial()
		if err != nil {
			t.Fatal(err)
		}
		checkSerial(t, s)
		if seen[s.String()] {
			t.Fatalf("serial %s repeated", SerialHex(s))
		}
		seen[s.String()] = true
		if s.BitLen() > 120 {
			long++
		}
	}
	// Random 128-bit serials exceed 120 bits with probability 1-2^-8; a
	// generator with less entropy would not.
	if long < n*9/10 {
		t.Errorf("%d of %d serials exceed 120 bits, want nearly all", long, n)
	}
}

func TestCertificateSerialsDiffer(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	pub := testKey(t, KeyTypeECDSAP256).Public()
	a := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "a", PublicKey: pub})
	b := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "a", PublicKey: pub})
	if a.SerialNumber.Cmp(b.SerialNumber) == 0 || a.SerialNumber.Cmp(ca.Cert.SerialNumber) == 0 {
		t.Errorf("serials not distinct: %x %x %x", a.SerialNumber, b.SerialNumber, ca.Cert.SerialNumber)
	}
}

func TestSignCSRTakesOnlyTheKey(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	key := testKey(t, KeyTypeEd25519)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: "root", Organization: []string{"system:masters"}},
		DNSNames:       []string{"evil.example"},
		IPAddresses:    []net.IP{net.ParseIP("10.0.0.1")},
		EmailAddresses: []string{"evil@example.com"},
	}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ParseCSRPEM(EncodeCSRPEM(csrDER))
	if err != nil {
		t.Fatal(err)
	}
	req := LeafRequest{Kind: KindClient, Name: "alice", Groups: []string{"devs"}, Now: testNow,
		PublicKey: testKey(t, KeyTypeRSA2048).Public()} // ignored: the CSR's key wins
	c, err := ca.SignCSR(csr, req)
	if err != nil {
		t.Fatal(err)
	}
	if !KeyMatchesCert(key, c) {
		t.Error("certificate does not carry the CSR's public key")
	}
	req.PublicKey = key.Public()
	checkLeaf(t, ca, c, req, KeyTypeEd25519)
	if len(c.DNSNames)+len(c.IPAddresses)+len(c.EmailAddresses) != 0 {
		t.Errorf("SANs copied from CSR: %v %v %v", c.DNSNames, c.IPAddresses, c.EmailAddresses)
	}
}

func TestSignCSRRejectsBadSignature(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "x"}}, testKey(t, KeyTypeECDSAP256))
	if err != nil {
		t.Fatal(err)
	}
	csrDER[len(csrDER)-1] ^= 0x01 // flip a bit in the signature
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.SignCSR(csr, LeafRequest{Kind: KindClient, Name: "x", Now: testNow})
	if err == nil || !strings.Contains(err.Error(), "bad signature") {
		t.Fatalf("SignCSR with a tampered CSR: err = %v, want bad signature", err)
	}
}

func TestParseKind(t *testing.T) {
	for _, s := range []string{"ca", "server", "client"} {
		if k, err := ParseKind(s); err != nil || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, err)
		}
	}
	if _, err := ParseKind("Server"); err == nil {
		t.Error("ParseKind(Server): want error")
	}
}

// wantSKI recomputes RFC 5280 method 1 from the certificate's own SPKI.
func wantSKI(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(c.RawSubjectPublicKeyInfo, &spki); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(spki.PublicKey.Bytes) //nolint:gosec // see import
	return sum[:]
}

func checkValidity(t *testing.T, c *x509.Certificate, notBefore, notAfter time.Time) {
	t.Helper()
	// Certificates store seconds; compare at that resolution.
	if !c.NotBefore.Equal(notBefore.Truncate(time.Second)) {
		t.Errorf("NotBefore = %v, want %v", c.NotBefore, notBefore)
	}
	if !c.NotAfter.Equal(notAfter.Truncate(time.Second)) {
		t.Errorf("NotAfter = %v, want %v", c.NotAfter, notAfter)
	}
}

func checkSerial(t *testing.T, s *big.Int) {
	t.Helper()
	if s.Sign() <= 0 || s.BitLen() > 128 {
		t.Errorf("serial %x: sign %d, %d bits; want positive, at most 128 bits", s, s.Sign(), s.BitLen())
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestClientGroupsAreASet(t *testing.T) {
	ca := newTestCA(t, KeyTypeECDSAP256)
	c := issueTest(t, ca, LeafRequest{Kind: KindClient, Name: "bob", Groups: []string{"ops", "admins", "ops"},
		PublicKey: testKey(t, KeyTypeEd25519).Public()})
	if got := sorted(c.Subject.Organization); !slices.Equal(got, []string{"admins", "ops"}) {
		t.Errorf("O = %q, want [admins ops]", got)
	}
}
