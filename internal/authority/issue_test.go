package authority

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

func TestIssueServer(t *testing.T) {
	a := testAuthority(t)
	is, err := a.IssueServer(ctx, "docker1", []string{"Docker1.Example.com", "192.0.2.10", "::1", "192.0.2.10"},
		10*24*time.Hour, pki.KeyTypeRSA2048)
	if err != nil {
		t.Fatal(err)
	}
	dir := a.Store().Dir()
	if is.Dir != filepath.Join(dir, "servers", "docker1") {
		t.Errorf("Dir = %s, want servers/docker1", is.Dir)
	}
	checkMode(t, filepath.Join(dir, "servers"), 0o700)
	checkMode(t, is.Dir, 0o700)
	cert := checkBundle(t, is.Dir, a.Cert(), pki.KindServer)
	if !cert.Equal(is.Cert) {
		t.Error("cert.pem is not the returned certificate")
	}
	if !slices.Equal(cert.DNSNames, []string{"docker1.example.com"}) || len(cert.IPAddresses) != 2 {
		t.Errorf("SANs = %v %v, want docker1.example.com, 192.0.2.10, ::1", cert.DNSNames, cert.IPAddresses)
	}
	if kt, _ := pki.KeyTypeOf(cert.PublicKey); kt != pki.KeyTypeRSA2048 {
		t.Errorf("key type %s, want rsa-2048", kt)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != 10*24*time.Hour+pki.Backdate {
		t.Errorf("validity %v, want 10 days", got)
	}
	rec := recordFor(t, a.Store(), cert)
	want := store.Cert{Serial: pki.SerialHex(cert.SerialNumber), Kind: "server", Name: "docker1",
		SANs: []string{"docker1.example.com", "192.0.2.10", "::1"}, Fingerprint: pki.Fingerprint(cert)}
	if rec.Serial != want.Serial || rec.Kind != want.Kind || rec.Name != want.Name ||
		!slices.Equal(rec.SANs, want.SANs) || rec.Fingerprint != want.Fingerprint || len(rec.Groups) != 0 ||
		!rec.NotAfter.Equal(cert.NotAfter) || rec.Revoked() {
		t.Errorf("record = %+v\nwant %+v", rec, want)
	}
}

func TestIssueClient(t *testing.T) {
	a := testAuthority(t)
	is, err := a.IssueClient(ctx, "alice", []string{"devs", "admins"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	cert := checkBundle(t, is.Dir, a.Cert(), pki.KindClient)
	if is.Dir != BundleDir(a.Store().Dir(), pki.KindClient, "alice") {
		t.Errorf("Dir = %s, want clients/alice", is.Dir)
	}
	if cert.Subject.CommonName != "alice" || len(cert.Subject.Organization) != 2 {
		t.Errorf("subject = %v, want CN=alice with O=admins,devs", cert.Subject)
	}
	if got := cert.NotAfter.Sub(cert.NotBefore); got != pki.DefaultClientValidity+pki.Backdate {
		t.Errorf("validity %v, want the client default", got)
	}
	rec := recordFor(t, a.Store(), cert)
	if !slices.Equal(rec.Groups, []string{"admins", "devs"}) || len(rec.SANs) != 0 || rec.Kind != "client" {
		t.Errorf("record = %+v", rec)
	}
}

func TestIssueRefusesBadRequests(t *testing.T) {
	a := testAuthority(t)
	tests := []struct {
		name    string
		req     Request
		wantErr string
	}{
		{"openssl SAN syntax", Request{Kind: pki.KindServer, Name: "s", SANs: []string{"IP:1.2.3.4"}}, "--san 1.2.3.4"},
		{"server without SANs", Request{Kind: pki.KindServer, Name: "s"}, "at least one DNS name"},
		{"bad name", Request{Kind: pki.KindClient, Name: "../etc"}, "invalid name"},
		{"CA kind", Request{Kind: pki.KindCA, Name: "x"}, "kind must be"},
		{"bad key type", Request{Kind: pki.KindClient, Name: "x", KeyType: "dsa"}, "unknown key type"},
		{"client with SANs", Request{Kind: pki.KindClient, Name: "x", SANs: []string{"h"}}, "no DNS names"},
		{"negative validity", Request{Kind: pki.KindClient, Name: "x", Validity: -time.Hour}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := a.Issue(ctx, tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Issue: %v, want error containing %q", err, tt.wantErr)
			}
			checkNothingIssued(t, a)
		})
	}
}

// checkNothingIssued checks that the inventory holds only the CA and that
// no bundle (or leftover temporary) exists.
func checkNothingIssued(t *testing.T, a *Authority) {
	t.Helper()
	certs, err := a.Store().Certs(ctx)
	if err != nil || len(certs) != 1 {
		t.Errorf("inventory has %d certificates, %v; want only the CA", len(certs), err)
	}
	for _, sub := range []string{"servers", "clients"} {
		entries, _ := os.ReadDir(filepath.Join(a.Store().Dir(), sub))
		if len(entries) != 0 {
			t.Errorf("%s/ holds %v, want nothing", sub, entries)
		}
	}
}

func TestIssueRefusesNameInUse(t *testing.T) {
	a := testAuthority(t)
	first, err := a.IssueClient(ctx, "bob", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	keyBefore := readFile(t, filepath.Join(first.Dir, "key.pem"))
	for _, kind := range []pki.Kind{pki.KindClient, pki.KindServer} {
		_, err := a.Issue(ctx, Request{Kind: kind, Name: "bob", SANs: sansFor(kind)})
		if !errors.Is(err, ErrNameInUse) {
			t.Errorf("second %s named bob: %v, want ErrNameInUse", kind, err)
		}
	}
	if string(readFile(t, filepath.Join(first.Dir, "key.pem"))) != string(keyBefore) {
		t.Error("refused issuance changed the existing key")
	}
	if _, err := Revoke(ctx, a.Store(), "bob", "superseded", time.Now()); err != nil {
		t.Fatal(err)
	}
	second, err := a.IssueClient(ctx, "bob", nil, 0, "")
	if err != nil {
		t.Fatalf("issue after revoke: %v", err)
	}
	cert := checkBundle(t, second.Dir, a.Cert(), pki.KindClient)
	if cert.SerialNumber.Cmp(first.Cert.SerialNumber) == 0 {
		t.Error("the bundle still holds the revoked certificate")
	}
	checkNoLeftovers(t, filepath.Join(a.Store().Dir(), "clients"))
}

func TestIssueAfterExpiry(t *testing.T) {
	a := testAuthority(t)
	past := time.Now().Add(-48 * time.Hour)
	if _, err := a.Issue(ctx, Request{Kind: pki.KindClient, Name: "old", Validity: time.Hour, Now: past}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClient(ctx, "old", nil, 0, ""); err != nil {
		t.Errorf("issuing over an expired certificate: %v", err)
	}
}

func sansFor(kind pki.Kind) []string {
	if kind == pki.KindServer {
		return []string{"localhost"}
	}
	return nil
}

func checkNoLeftovers(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("leftover %s in %s", e.Name(), dir)
		}
	}
}

// TestIssueRollsBackWhenRecordingFails makes the commit point (completing
// the pending row) fail after the bundle is written: the bundle directory
// goes back to what it was and the pending row is removed.
func TestIssueRollsBackWhenRecordingFails(t *testing.T) {
	a := testAuthority(t)
	first, err := a.IssueServer(ctx, "web", []string{"web.example"}, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, first.Dir)
	boom := errors.New("disk full")
	a.complete = func(context.Context, string, []byte, string, *store.Supersession) error { return boom }

	if _, err := a.IssueClient(ctx, "fresh", nil, 0, ""); !errors.Is(err, boom) {
		t.Fatalf("Issue: %v, want the recording error", err)
	}
	if _, err := os.Stat(BundleDir(a.Store().Dir(), pki.KindClient, "fresh")); !os.IsNotExist(err) {
		t.Errorf("bundle of an unrecorded certificate exists: %v", err)
	}
	if _, err := a.Renew(ctx, "web", 0, time.Now()); !errors.Is(err, boom) {
		t.Fatalf("Renew: %v, want the recording error", err)
	}
	if after := snapshot(t, first.Dir); after != before {
		t.Error("failed renewal changed the existing bundle")
	}
	checkNoLeftovers(t, filepath.Join(a.Store().Dir(), "servers"))
	checkNoLeftovers(t, filepath.Join(a.Store().Dir(), "clients"))
	certs, _ := a.Store().Certs(ctx)
	if len(certs) != 2 {
		t.Errorf("inventory has %d certificates, want the CA and web", len(certs))
	}
}

func TestIssueRecordsNothingWhenWritingFails(t *testing.T) {
	a := testAuthority(t)
	// A file where the clients directory should be makes writing fail.
	if err := os.WriteFile(filepath.Join(a.Store().Dir(), "clients"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := a.IssueClient(ctx, "carol", nil, 0, ""); err == nil {
		t.Fatal("Issue succeeded without a place for its bundle")
	}
	certs, err := a.Store().Certs(ctx)
	if err != nil || len(certs) != 1 {
		t.Errorf("inventory has %d certificates, %v; want only the CA", len(certs), err)
	}
}

func TestSignCSR(t *testing.T) {
	a := testAuthority(t)
	key, err := pki.GenerateKey(pki.KeyTypeEd25519)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		IPAddresses: []net.IP{net.ParseIP("10.0.0.1")}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := a.SignCSR(ctx, csr, Request{Kind: pki.KindClient, Name: "laptop", Groups: []string{"devs"}})
	if err != nil {
		t.Fatal(err)
	}
	if !pki.KeyMatchesCert(key, cert) || cert.Subject.CommonName != "laptop" ||
		!slices.Equal(cert.Subject.Organization, []string{"devs"}) || len(cert.IPAddresses) != 0 {
		t.Errorf("certificate = CN %q O %q IPs %v; want the request's identity and the CSR's key",
			cert.Subject.CommonName, cert.Subject.Organization, cert.IPAddresses)
	}
	if rec := recordFor(t, a.Store(), cert); rec.Name != "laptop" || rec.Kind != "client" {
		t.Errorf("record = %+v", rec)
	}
	if _, err := os.Stat(BundleDir(a.Store().Dir(), pki.KindClient, "laptop")); !os.IsNotExist(err) {
		t.Error("SignCSR wrote a bundle; the key belongs to the requester")
	}
	if _, err := a.SignCSR(ctx, csr, Request{Kind: pki.KindClient, Name: "laptop"}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("second SignCSR for laptop: %v, want ErrNameInUse", err)
	}
}

func TestWriteBundle(t *testing.T) {
	a := testAuthority(t)
	is, err := a.IssueClient(ctx, "dave", nil, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out", "certs")
	if err := WriteBundle(out, is, false); err != nil {
		t.Fatal(err)
	}
	checkMode(t, out, 0o700)
	checkBundle(t, out, a.Cert(), pki.KindClient)

	other, err := a.Renew(ctx, "dave", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, out)
	if err := WriteBundle(out, other, false); !errors.Is(err, ErrFileExists) {
		t.Fatalf("WriteBundle over an existing bundle: %v, want ErrFileExists", err)
	}
	if snapshot(t, out) != before {
		t.Error("refused WriteBundle changed the directory")
	}
	if err := WriteBundle(out, other, true); err != nil {
		t.Fatal(err)
	}
	if c := checkBundle(t, out, a.Cert(), pki.KindClient); !c.Equal(other.Cert) {
		t.Error("overwrite did not install the new certificate")
	}
	checkNoLeftovers(t, out)

	shared := t.TempDir()
	os.Chmod(shared, 0o777)
	if err := WriteBundle(shared, is, false); err == nil || !strings.Contains(err.Error(), "other users can write") {
		t.Errorf("WriteBundle into a world-writable directory: %v", err)
	}
	mine := t.TempDir()
	os.Chmod(mine, 0o755)
	if err := WriteBundle(mine, is, false); err != nil {
		t.Fatal(err)
	}
	checkMode(t, mine, 0o755) // the user's directory keeps its mode
}

func TestDefaultSANs(t *testing.T) {
	sans := DefaultSANs(context.Background())
	for _, want := range []string{"localhost", "127.0.0.1", "::1"} {
		if !slices.Contains(sans, want) {
			t.Errorf("DefaultSANs() = %v, lacks %s", sans, want)
		}
	}
	seen := map[string]bool{}
	for _, s := range sans {
		if _, _, err := pki.ParseSAN(s); err != nil {
			t.Errorf("DefaultSANs() has %q: %v", s, err)
		}
		if seen[s] {
			t.Errorf("DefaultSANs() repeats %q", s)
		}
		seen[s] = true
		if ip := net.ParseIP(s); ip != nil && ip.IsLinkLocalUnicast() {
			t.Errorf("DefaultSANs() has link-local %s", s)
		}
	}
	if host, err := os.Hostname(); err == nil {
		if _, _, err := pki.ParseSAN(host); err == nil && !slices.Contains(sans, strings.ToLower(host)) {
			t.Errorf("DefaultSANs() = %v, lacks the host name %s", sans, host)
		}
	}
	// Every address clients on the network can reach this host by: those
	// of its up interfaces, not of the container bridges other tests and
	// tools on the host create and remove (br-<id> is down while empty).
	ifaces, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, iface := range ifaces {
		if iface.Flags&net.FlagUp == 0 || isContainerBridge(iface.Name) {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			ipnet, ok := a.(*net.IPNet)
			if !ok || !ipnet.IP.IsGlobalUnicast() && !ipnet.IP.IsPrivate() {
				continue
			}
			if !slices.Contains(sans, ipnet.IP.String()) {
				t.Errorf("DefaultSANs() = %v, lacks the address %s of interface %s", sans, ipnet.IP, iface.Name)
			}
		}
	}
}
