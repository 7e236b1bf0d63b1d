package enroll

import (
	"crypto/x509"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/store"
)

func TestDefaultAddresses(t *testing.T) {
	cert := &x509.Certificate{
		DNSNames:    []string{"localhost", "dock1", "*.dock.example", "dock1.example"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("192.0.2.7"), net.ParseIP("::1"), net.ParseIP("0.0.0.0"), net.ParseIP("2001:db8::7")},
	}
	got := DefaultAddresses(cert, "2386")
	want := []string{"dock1:2386", "dock1.example:2386", "192.0.2.7:2386", "[2001:db8::7]:2386",
		"localhost:2386", "127.0.0.1:2386", "[::1]:2386"}
	if !slices.Equal(got, want) {
		t.Errorf("DefaultAddresses =\n%v, want\n%v", got, want)
	}
	for _, a := range got {
		if err := ValidateAddress(a); err != nil {
			t.Errorf("default address %q is not valid in a token: %v", a, err)
		}
	}
}

func TestCreateTokenStoresOnlyAHash(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	auth, err := authority.Init(st, authority.InitOptions{CN: "t"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := CreateToken(ctx, st, TokenSpec{Name: "eve", Groups: []string{"devs"}, TTL: time.Hour, Uses: 2, CertDays: 3,
		Addresses: []string{"gw:2386"}, CA: auth.Cert(), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if tok.CAPin != [PinSize]byte(mustDecodeHex(t, spkiHex(auth.Cert()))) {
		t.Error("the token does not pin the CA's key")
	}
	toks, err := st.Tokens(ctx)
	if err != nil || len(toks) != 1 {
		t.Fatalf("tokens %v, %v", toks, err)
	}
	rec := toks[0]
	if string(rec.SecretHash) != string(tok.SecretHash()) || strings.Contains(string(rec.SecretHash), string(tok.Secret[:])) {
		t.Error("the store keeps something other than the secret's hash")
	}
	if rec.UsesLeft != 2 || rec.CertDays != 3 || !slices.Equal(rec.Groups, []string{"devs"}) ||
		rec.ExpiresAt.Unix() != now.Add(time.Hour).Unix() {
		t.Errorf("stored %+v", rec)
	}

	bad := []struct {
		name string
		spec TokenSpec
	}{
		{"long name", TokenSpec{Name: strings.Repeat("a", MaxTokenNameLength+1)}},
		{"bad name", TokenSpec{Name: "../x"}},
		{"no lifetime", TokenSpec{Name: "x", TTL: 0, Uses: 1, CertDays: 1}},
		{"no uses", TokenSpec{Name: "x", TTL: time.Hour, Uses: 0, CertDays: 1}},
		{"no days", TokenSpec{Name: "x", TTL: time.Hour, Uses: 1, CertDays: 0}},
		{"no address", TokenSpec{Name: "x", TTL: time.Hour, Uses: 1, CertDays: 1, CA: auth.Cert()}},
		{"empty group", TokenSpec{Name: "x", TTL: time.Hour, Uses: 1, CertDays: 1, CA: auth.Cert(), Groups: []string{""}, Addresses: []string{"h:1"}}},
		{"duplicate name", TokenSpec{Name: "eve", TTL: time.Hour, Uses: 1, CertDays: 1, CA: auth.Cert(), Addresses: []string{"h:1"}}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := CreateToken(ctx, st, tt.spec); err == nil {
				t.Fatal("CreateToken accepted it")
			}
		})
	}
}

func TestBoundAddresses(t *testing.T) {
	addrs := []string{"dock1.example.net:2386", "192.0.2.10:2386", "localhost:2386", "127.0.0.1:2386", "[::1]:2386"}
	lookup := func(host string) ([]net.IP, error) {
		switch host {
		case "dock1.example.net":
			return []net.IP{net.ParseIP("192.0.2.10")}, nil
		case "localhost":
			return []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}, nil
		}
		return nil, errors.New("no such host")
	}
	tests := []struct {
		listen string
		want   []string
	}{
		{":2386", addrs},
		{"0.0.0.0:2386", addrs},
		{"[::]:2386", addrs},
		{"127.0.0.1:2386", []string{"localhost:2386", "127.0.0.1:2386"}},
		{"192.0.2.10:2386", []string{"dock1.example.net:2386", "192.0.2.10:2386"}},
		{"localhost:2386", []string{"localhost:2386", "127.0.0.1:2386", "[::1]:2386"}},
		{"198.51.100.1:2386", nil},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			if got := BoundAddresses(addrs, tt.listen, lookup); !slices.Equal(got, tt.want) {
				t.Errorf("BoundAddresses(%s) = %v, want %v", tt.listen, got, tt.want)
			}
		})
	}
}
