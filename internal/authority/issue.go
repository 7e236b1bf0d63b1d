package authority

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// Request describes a server or client certificate to issue.
type Request struct {
	Kind     pki.Kind
	Name     string        // see ValidateName
	Groups   []string      // client only: Subject Organization
	SANs     []string      // server only: DNS names and IP addresses (pki.ParseSAN)
	Validity time.Duration // zero: pki.DefaultValidity(Kind)
	KeyType  pki.KeyType   // empty: pki.DefaultKeyType; SignCSR ignores it
	Now      time.Time     // zero: time.Now()
}

// Issued is a freshly issued certificate with its key, in PEM.
type Issued struct {
	Kind    pki.Kind
	Name    string
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte // unencrypted PKCS#8, as Docker reads key.pem
	CAPEM   []byte
	Dir     string // the bundle directory in the state directory
}

// IssueServer issues a server certificate (serverAuth only) for the given
// DNS names and IP addresses.
func (a *Authority) IssueServer(ctx context.Context, name string, sans []string, validity time.Duration, kt pki.KeyType) (*Issued, error) {
	return a.Issue(ctx, Request{Kind: pki.KindServer, Name: name, SANs: sans, Validity: validity, KeyType: kt})
}

// IssueClient issues a client certificate (clientAuth only) with CN=name
// and the groups in O.
func (a *Authority) IssueClient(ctx context.Context, name string, groups []string, validity time.Duration, kt pki.KeyType) (*Issued, error) {
	return a.Issue(ctx, Request{Kind: pki.KindClient, Name: name, Groups: groups, Validity: validity, KeyType: kt})
}

// Issue generates a key and certificate, writes the bundle to
// servers/NAME/ or clients/NAME/ in the state directory and records the
// certificate. A name that already has a valid (unrevoked, unexpired)
// certificate is refused with ErrNameInUse: renew or revoke it instead. The
// bundle of an expired or revoked certificate of that name is replaced.
func (a *Authority) Issue(ctx context.Context, req Request) (*Issued, error) {
	req.Now = nowOr(req.Now)
	leaf, unlock, err := a.lockNewName(ctx, req)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return a.issueLocked(ctx, req, leaf, nil)
}

// lockNewName checks req, takes the state lock and makes sure the name has
// no valid certificate; the caller must unlock.
func (a *Authority) lockNewName(ctx context.Context, req Request) (pki.LeafRequest, func(), error) {
	leaf, err := a.leafRequest(req)
	if err != nil {
		return leaf, nil, err
	}
	unlock, err := a.lock(ctx)
	if err != nil {
		return leaf, nil, err
	}
	if err := a.checkNameFree(ctx, req.Name, req.Now); err != nil {
		unlock()
		return leaf, nil, err
	}
	return leaf, unlock, nil
}

// leafRequest checks req and turns it into a pki request without a key.
func (a *Authority) leafRequest(req Request) (pki.LeafRequest, error) {
	fail := func(err error) (pki.LeafRequest, error) {
		return pki.LeafRequest{}, fmt.Errorf("failed to issue %s certificate: %w", req.Kind, err)
	}
	if req.Kind != pki.KindServer && req.Kind != pki.KindClient {
		return fail(fmt.Errorf("kind must be %q or %q, not %q", pki.KindServer, pki.KindClient, req.Kind))
	}
	if err := ValidateName(req.Name); err != nil {
		return fail(err)
	}
	dnsNames, ips, err := pki.ParseSANs(req.SANs)
	if err != nil {
		return fail(err)
	}
	return pki.LeafRequest{Kind: req.Kind, Name: req.Name, Groups: req.Groups,
		DNSNames: dnsNames, IPs: ips, Validity: req.Validity, Now: req.Now}, nil
}

// checkNameFree refuses a name that has a valid server or client
// certificate. Must be called with the state lock held.
func (a *Authority) checkNameFree(ctx context.Context, name string, now time.Time) error {
	certs, err := a.st.CertsByName(ctx, name)
	if err != nil {
		return err
	}
	for _, c := range certs {
		if isLeaf(c) && isValid(c, now) {
			return fmt.Errorf("%s %q %w (serial %s, expires %s): renew or revoke it first",
				c.Kind, name, ErrNameInUse, c.Serial, c.NotAfter.Format(time.DateOnly))
		}
	}
	return nil
}

// issueLocked makes a key, then mints its certificate inventory first,
// writing the bundle before the row is completed; sup, if not nil, is the
// certificate the new one supersedes.
func (a *Authority) issueLocked(ctx context.Context, req Request, leaf pki.LeafRequest, sup *store.Supersession) (*Issued, error) {
	kt := req.KeyType
	if kt == "" {
		kt = pki.DefaultKeyType
	}
	key, err := pki.GenerateKey(kt)
	if err != nil {
		return nil, fmt.Errorf("failed to issue %s certificate: %w", req.Kind, err)
	}
	keyPEM, err := pki.MarshalKeyPEM(key, nil)
	if err != nil {
		return nil, err
	}
	leaf.PublicKey = key.Public()
	draft, err := a.ca.Draft(leaf)
	if err != nil {
		return nil, err
	}
	is := &Issued{Kind: req.Kind, Name: req.Name, KeyPEM: keyPEM, CAPEM: pki.EncodeCertPEM(a.ca.Cert),
		Dir: BundleDir(a.st.Dir(), req.Kind, req.Name)}
	var swap *dirSwap
	writeBundle := func(cert *x509.Certificate) (undo func(), err error) {
		is.Cert, is.CertPEM = cert, pki.EncodeCertPEM(cert)
		if swap, err = installDir(is.Dir, bundleFiles(is)); err != nil {
			return nil, fmt.Errorf("failed to write the %s bundle: %w", is.Kind, err)
		}
		return swap.rollback, nil
	}
	if _, err := a.mint(ctx, req.Kind, req.Name, draft, writeBundle, sup); err != nil {
		return nil, err
	}
	swap.commit()
	return is, nil
}

// mint signs draft inventory first, so that no certificate the CA signs is
// ever unknown to the inventory:
//
//  1. the row is committed as pending (serial, subject, validity);
//  2. the certificate is signed and handed to persist, which writes its
//     files (or nothing, when the certificate goes back over the network);
//  3. the row is completed with the certificate, and sup's certificate
//     marked superseded, in one transaction.
//
// A crash before 3 leaves a pending row, which the gateway refuses, `certs`
// shows and the next issuance (or Recover) revokes. An error is cleaned up
// at once: persist's undo runs and the pending row is deleted, since no copy
// of the certificate is left.
func (a *Authority) mint(ctx context.Context, kind pki.Kind, name string, draft *pki.Draft,
	persist func(*x509.Certificate) (undo func(), err error), sup *store.Supersession) (*x509.Certificate, error) {
	rec := draftRecord(kind, name, draft.Template)
	if err := a.record(ctx, rec); err != nil {
		return nil, err
	}
	cert, err := a.ca.Sign(draft)
	if err != nil {
		a.abandon(ctx, rec.Serial)
		return nil, err
	}
	if a.signed != nil {
		a.signed(cert)
	}
	undo, err := persist(cert)
	if err != nil {
		a.abandon(ctx, rec.Serial)
		return nil, err
	}
	if err := a.complete(ctx, rec.Serial, pki.EncodeCertPEM(cert), pki.Fingerprint(cert), sup); err != nil {
		undo()
		a.abandon(ctx, rec.Serial)
		return nil, err
	}
	return cert, nil
}

// abandon deletes the pending row of an issuance that failed and left no
// copy of its certificate. If that fails too, the row stays pending (and
// refused) until the next issuance revokes it.
func (a *Authority) abandon(ctx context.Context, serial string) {
	if err := a.st.DeletePending(context.WithoutCancel(ctx), serial); err != nil {
		a.log.Warn("failed to remove the pending row of a failed issuance; the next issuance revokes it",
			"serial", serial, "err", err)
	}
}

// noFiles is mint's persist for certificates whose key lives elsewhere.
func noFiles(*x509.Certificate) (func(), error) { return func() {}, nil }

// bundleFiles is Docker's layout; the key first, so that a bundle written
// file by file never has a certificate without its key.
func bundleFiles(is *Issued) []fileSpec {
	return []fileSpec{
		{name: BundleKeyFile, data: is.KeyPEM, perm: keyFileMode},
		{name: BundleCertFile, data: is.CertPEM, perm: certFileMode},
		{name: BundleCAFile, data: is.CAPEM, perm: certFileMode},
	}
}

// SignCSR issues a certificate for the key in csr, with the kind, name,
// groups, SANs and validity of req (never the CSR's subject or SANs), and
// records it. No files are written: the private key stays with the
// requester. The name rules of Issue apply.
func (a *Authority) SignCSR(ctx context.Context, csr *x509.CertificateRequest, req Request) (*x509.Certificate, error) {
	req.Now = nowOr(req.Now)
	leaf, unlock, err := a.lockNewName(ctx, req)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return a.signAndRecord(ctx, csr, req, leaf, nil)
}

// signAndRecord signs csr as leaf says and records the certificate.
// The row is complete before the certificate is returned, so the requester
// never holds a certificate the gateway would refuse as pending.
func (a *Authority) signAndRecord(ctx context.Context, csr *x509.CertificateRequest, req Request, leaf pki.LeafRequest, sup *store.Supersession) (*x509.Certificate, error) {
	draft, err := a.ca.DraftCSR(csr, leaf)
	if err != nil {
		return nil, err
	}
	return a.mint(ctx, req.Kind, req.Name, draft, noFiles, sup)
}

// Renew issues a new key and certificate for name with the kind, subject,
// groups, SANs, key type and validity length of its newest unrevoked
// certificate, and replaces its bundle in the state directory. An expired
// certificate can be renewed: that is the usual case for short-lived client
// certificates. The certificate renewed is superseded keepOld after now
// (at once when zero): from then on the gateway refuses it. The new row and
// the old one's supersession are committed together, once the new bundle is
// written.
func (a *Authority) Renew(ctx context.Context, name string, keepOld time.Duration, now time.Time) (*Issued, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if keepOld < 0 {
		return nil, fmt.Errorf("failed to renew %s: the overlap %s is negative", name, keepOld)
	}
	now = nowOr(now)
	unlock, err := a.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	old, req, err := a.renewalRequest(ctx, name, now)
	if err != nil {
		return nil, err
	}
	leaf, err := a.leafRequest(req)
	if err != nil {
		return nil, err
	}
	return a.issueLocked(ctx, req, leaf, &store.Supersession{Serial: old.Serial, At: now.Add(keepOld)})
}

// renewalRequest finds the certificate to renew and the request that
// reproduces it.
func (a *Authority) renewalRequest(ctx context.Context, name string, now time.Time) (store.Cert, Request, error) {
	certs, err := a.st.CertsByName(ctx, name)
	if err != nil {
		return store.Cert{}, Request{}, err
	}
	old, err := newestUnrevoked(name, certs)
	if err != nil {
		return store.Cert{}, Request{}, err
	}
	cert, err := pki.ParseCertPEM(old.PEM)
	if err != nil {
		return store.Cert{}, Request{}, fmt.Errorf("failed to renew %s: certificate %s in the inventory: %w", name, old.Serial, err)
	}
	kt, err := pki.KeyTypeOf(cert.PublicKey)
	if err != nil {
		return store.Cert{}, Request{}, fmt.Errorf("failed to renew %s: %w", name, err)
	}
	validity := cert.NotAfter.Sub(cert.NotBefore) - pki.Backdate
	if validity <= 0 {
		validity = 0 // the kind's default
	}
	return old, Request{
		Kind:     pki.Kind(old.Kind),
		Name:     name,
		Groups:   cert.Subject.Organization,
		SANs:     sanStrings(cert),
		Validity: validity,
		KeyType:  kt,
		Now:      nowOr(now),
	}, nil
}

func newestUnrevoked(name string, certs []store.Cert) (store.Cert, error) {
	var found bool
	var newest store.Cert
	for _, c := range certs { // oldest first
		if isLeaf(c) && !c.Revoked() {
			newest, found = c, true
		}
	}
	if found {
		return newest, nil
	}
	for _, c := range certs {
		if isLeaf(c) {
			return store.Cert{}, fmt.Errorf("failed to renew %s: every certificate of that name is revoked: issue a new one", name)
		}
	}
	return store.Cert{}, fmt.Errorf("failed to renew: no certificate named %q: %w", name, store.ErrNotFound)
}

func isLeaf(c store.Cert) bool { return c.Kind == store.KindServer || c.Kind == store.KindClient }

func isValid(c store.Cert, now time.Time) bool {
	return !c.Revoked() && !c.Superseded(now) && now.Before(c.NotAfter)
}
