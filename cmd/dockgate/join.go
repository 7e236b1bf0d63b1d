package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// joinFlags are serve's and up's flags for joining a fleet with a host
// token.
type joinFlags struct {
	token string   // --join
	sans  []string // --san, over authority.DefaultSANs
	tok   *enroll.Token
}

// parseJoin reads --join before the config is loaded: the server
// certificate and the host are named after the token unless --server-cert
// and --host-name say otherwise.
func (a *app) parseJoin(f *serveFlags) error {
	if f.join.token == "" {
		if len(f.join.sans) > 0 {
			return usageErrorf("--san goes with --join: it names this host in the server certificate a join asks for")
		}
		return nil
	}
	tok, err := enroll.ParseToken(f.join.token)
	if err != nil {
		return withHint(&usageError{err: fmt.Errorf("--join: %w", err)}, "pass the host token 'dockgate token create NAME --host' printed on a gateway of the fleet")
	}
	f.join.tok = &tok
	setIf(&f.serverCert, tok.Name)
	setIf(&f.hostName, tok.Name)
	return nil
}

// joinFleet gets this host's server certificate and the CA certificate
// with the host token, unless the state directory already has them: a
// second run reuses them and does not need the (spent) token.
func (a *app) joinFleet(ctx context.Context, st *store.Store, serverCert string, f *joinFlags) error {
	tok := *f.tok
	if st.Backend() == "sqlite" {
		return withHint(errors.New("joining a fleet needs the store the fleet shares, and none is given"),
			"pass --store postgres://... (or set DOCKGATE_STORE), the store the other gateways use")
	}
	dir := st.Dir()
	if ca, err := readCertFile(authority.CACertPath(dir)); err == nil {
		if sha256.Sum256(ca.RawSubjectPublicKeyInfo) != tok.CAPin {
			return withHint(fmt.Errorf("%s holds CA %q, not the CA the host token pins", authority.CACertPath(dir), ca.Subject.CommonName),
				"use another state directory (--state-dir), or a token from this CA's fleet")
		}
		if bundleExists(dir, pki.KindServer, serverCert) {
			fmt.Fprintf(a.stderr, "Joined already: reusing the server certificate %q and the CA certificate in %s\n", serverCert, dir)
			return nil
		}
	}
	sans := slices.Concat(authority.DefaultSANs(ctx), f.sans)
	slices.Sort(sans)
	sans = slices.Compact(sans)
	fmt.Fprintf(a.stderr, "Joining the fleet as %q (names: %s)\n", tok.Name, strings.Join(sans, ", "))
	creds, err := enroll.Join(ctx, tok, sans, enroll.LoginOptions{
		Progress: func(format string, args ...any) { fmt.Fprintf(a.stderr, "  "+format+"\n", args...) },
	})
	if err != nil {
		return a.joinError(ctx, st, tok, err)
	}
	err = authority.InstallJoined(dir, authority.Joined{Name: serverCert, CAPEM: creds.CAPEM, CertPEM: creds.CertPEM, KeyPEM: creds.KeyPEM})
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "Joined through %s: server certificate %q (serial %s, expires %s) in %s; the CA key stays with the gateways that sign\n",
		creds.Via, serverCert, pki.SerialHex(creds.Cert.SerialNumber), creds.Cert.NotAfter.Format(time.DateOnly), authority.BundleDir(dir, pki.KindServer, serverCert))
	return nil
}

// joinError explains a failed join; when no gateway answered it names the
// gateways of the fleet that can sign.
func (a *app) joinError(ctx context.Context, st *store.Store, tok enroll.Token, err error) error {
	switch {
	case errors.Is(err, enroll.ErrTokenUsed), errors.Is(err, enroll.ErrTokenExpired),
		errors.Is(err, enroll.ErrTokenRevoked), errors.Is(err, enroll.ErrUnknownToken):
		return withHint(fmt.Errorf("failed to join: %w", err), "create a new one on a gateway of the fleet: 'dockgate token create %s --host'", tok.Name)
	case errors.Is(err, enroll.ErrTokenKind):
		return withHint(fmt.Errorf("failed to join: %w", err), "a host joins with a host token: 'dockgate token create %s --host'", tok.Name)
	case !errors.Is(err, enroll.ErrNoSigner):
		return fmt.Errorf("failed to join: %w", err)
	}
	hosts, herr := st.Hosts(ctx)
	if herr != nil {
		return fmt.Errorf("failed to join: %w", err)
	}
	now := time.Now()
	var signers []string
	for _, h := range hosts {
		if len(h.EnrollAddresses) > 0 && h.Healthy(now) {
			signers = append(signers, fmt.Sprintf("%s (%s)", h.Name, strings.Join(h.EnrollAddresses, ", ")))
		}
	}
	if len(signers) == 0 {
		return withHint(fmt.Errorf("failed to join: %w, and no gateway of the fleet can sign now", err),
			"only a gateway given the CA passphrase signs: start one ('dockgate up', or 'dockgate serve --passphrase-file FILE'), then run this again")
	}
	return withHint(fmt.Errorf("failed to join: %w; the gateways that can sign (given the CA passphrase) are %s", err, strings.Join(signers, "; ")),
		"check that this host reaches one of them, or create the token there with --address HOST:PORT of its enrollment port")
}

// sansHelp documents --san.
var sansHelp = "with --join: another DNS name or IP address of this host for its server certificate (repeatable; added to the host's names and addresses)"
