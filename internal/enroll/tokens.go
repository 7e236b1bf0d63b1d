package enroll

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/store"
)

// Token defaults for `dockgate token create`.
const (
	// DefaultTokenTTL is long enough to paste a token into a chat and have
	// it used, short enough that a forgotten one is soon worthless.
	DefaultTokenTTL = 15 * time.Minute
	DefaultUses     = 1
	// DefaultCertDays: a week-long client certificate renews itself with
	// `dockgate renew --watch`, and a lost laptop stops working within days.
	DefaultCertDays = 7
	// DefaultHostTokenTTL: a host token is typed into a new host's setup,
	// which may take longer than a client's login.
	DefaultHostTokenTTL = time.Hour
	// DefaultHostCertDays is the server certificate's default lifetime.
	DefaultHostCertDays = 397
)

// TokenSpec describes a token to create.
type TokenSpec struct {
	Name string
	// Host makes a host token: it yields the server certificate of a host
	// joining the fleet (named Name, no groups), never a client's.
	Host      bool
	Groups    []string
	TTL       time.Duration
	Uses      int
	CertDays  int
	Addresses []string          // HOST:PORT of the enrollment listener
	CA        *x509.Certificate // pinned by its key
	Now       time.Time         // zero: time.Now()
}

// CreateToken records a new token in st (only a hash of its secret) and
// returns it; its String() is what the new client runs `dockgate login`
// with. The secret exists nowhere else afterwards.
func CreateToken(ctx context.Context, st *store.Store, spec TokenSpec) (Token, error) {
	if err := spec.validate(); err != nil {
		return Token{}, fmt.Errorf("failed to create token: %w", err)
	}
	secret, err := NewSecret()
	if err != nil {
		return Token{}, err
	}
	tok := Token{Name: spec.Name, Addresses: spec.Addresses, Secret: secret,
		CAPin: sha256.Sum256(spec.CA.RawSubjectPublicKeyInfo)}
	if _, err := tok.Encode(); err != nil {
		return Token{}, fmt.Errorf("failed to create token: %w", err)
	}
	now := spec.Now
	if now.IsZero() {
		now = time.Now()
	}
	kind := store.KindClient
	if spec.Host {
		kind = store.KindServer
	}
	err = st.AddToken(ctx, store.Token{Name: spec.Name, Kind: kind, SecretHash: tok.SecretHash(), Groups: spec.Groups,
		CertDays: spec.CertDays, UsesLeft: spec.Uses, ExpiresAt: now.Add(spec.TTL), CreatedAt: now})
	if err != nil {
		return Token{}, err
	}
	return tok, nil
}

func (s TokenSpec) validate() error {
	if err := authority.ValidateName(s.Name); err != nil {
		return err
	}
	switch {
	case len(s.Name) > MaxTokenNameLength:
		return fmt.Errorf("name %q is longer than %d characters (room is kept for a -N suffix)", s.Name, MaxTokenNameLength)
	case s.TTL <= 0:
		return fmt.Errorf("lifetime %s must be positive", s.TTL)
	case s.Uses < 1:
		return fmt.Errorf("uses %d must be at least 1", s.Uses)
	case s.CertDays < 1:
		return fmt.Errorf("certificate validity %d days must be at least 1", s.CertDays)
	case s.CA == nil:
		return errors.New("no CA certificate to pin")
	case s.Host && len(s.Groups) > 0:
		return errors.New("a host token has no groups: groups are for client certificates")
	}
	for _, g := range s.Groups {
		// ub-organization-name, RFC 5280 appendix A: groups are O values.
		if g == "" || len(g) > 64 {
			return fmt.Errorf("invalid group %q: use 1 to 64 characters", g)
		}
	}
	return nil
}

// DefaultAddresses are the enrollment addresses a token gets when none are
// given: every name and address in the server certificate with port. Names
// and addresses other machines can reach come first; wildcard names (not
// dialable) and unspecified addresses are left out; loopback ones come last,
// for a client on the gateway's own machine. At most MaxAddresses.
func DefaultAddresses(server *x509.Certificate, port string) []string {
	var first, last []string
	add := func(host string, loopback bool) {
		addr := net.JoinHostPort(host, port)
		if loopback {
			last = append(last, addr)
		} else {
			first = append(first, addr)
		}
	}
	for _, name := range server.DNSNames {
		if !strings.Contains(name, "*") {
			add(name, name == "localhost" || strings.HasSuffix(name, ".localhost"))
		}
	}
	for _, ip := range server.IPAddresses {
		if !ip.IsUnspecified() {
			add(ip.String(), ip.IsLoopback())
		}
	}
	all := append(first, last...)
	if len(all) > MaxAddresses {
		all = all[:MaxAddresses]
	}
	return all
}

// BoundAddresses keeps the addresses (HOST:PORT) at which a listener on
// listen accepts connections: all of them for a wildcard host ("",
// 0.0.0.0 or ::, which Go binds on every interface), else those whose host
// is, or resolves to, an address the listen host is or resolves to. A
// token then never names an address where nothing answers. lookup
// resolves a name (net.DefaultResolver.LookupIP in the CLI); a name it
// cannot resolve is left out.
func BoundAddresses(addrs []string, listen string, lookup func(host string) ([]net.IP, error)) []string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return addrs
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		return addrs
	}
	bound := ipsOf(host, lookup)
	var out []string
	for _, addr := range addrs {
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		for _, ip := range ipsOf(h, lookup) {
			if slices.ContainsFunc(bound, ip.Equal) {
				out = append(out, addr)
				break
			}
		}
	}
	return out
}

func ipsOf(host string, lookup func(string) ([]net.IP, error)) []net.IP {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}
	}
	ips, err := lookup(host)
	if err != nil {
		return nil
	}
	return ips
}
