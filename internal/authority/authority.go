package authority

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// Errors callers can test with errors.Is.
var (
	ErrNoCA       = errors.New("no CA in the state directory: run 'dockgate init' first")
	ErrCAExists   = errors.New("a CA already exists")
	ErrNameInUse  = errors.New("name already has a valid certificate")
	ErrFileExists = errors.New("already exists")
)

// Authority is a loaded CA bound to its state directory.
type Authority struct {
	st *store.Store
	ca *pki.CA

	log *slog.Logger

	// record adds a pending row and complete marks it issued; tests replace
	// them to make either step fail.
	record   func(context.Context, store.Cert) error
	complete func(ctx context.Context, serial string, pem []byte, fingerprint string, sup *store.Supersession) error
	// signed, when set, sees each certificate right after it is signed
	// (the crash tests use it to tell where a killed issuance stopped).
	signed func(*x509.Certificate)
}

func newAuthority(st *store.Store, ca *pki.CA) *Authority {
	return &Authority{st: st, ca: ca, log: slog.New(slog.DiscardHandler),
		record: st.AddCert, complete: st.CompleteCert}
}

// SetLogger makes the authority report what it cleans up after an
// interrupted issuance; by default it reports nothing.
func (a *Authority) SetLogger(l *slog.Logger) {
	if l != nil {
		a.log = l
	}
}

// Cert is the CA certificate.
func (a *Authority) Cert() *x509.Certificate { return a.ca.Cert }

// Store is the state directory the authority works in.
func (a *Authority) Store() *store.Store { return a.st }

// InitOptions configures a new CA.
type InitOptions struct {
	CN         string        // empty: DefaultCN()
	KeyType    pki.KeyType   // empty: pki.DefaultKeyType
	Validity   time.Duration // zero: pki.DefaultCAValidity
	Passphrase []byte        // nil stores the key unencrypted (insecure)
	Now        time.Time     // zero: time.Now()
}

// DefaultCN names a CA after the host it was made on, so CAs from
// different hosts are told apart in trust stores and `openssl x509` output.
func DefaultCN() string {
	cn := "dockgate CA"
	if h, err := os.Hostname(); err == nil && h != "" {
		cn += " " + h
	}
	if len(cn) > 64 { // ub-common-name, RFC 5280 appendix A
		cn = cn[:64]
	}
	return cn
}

// Init creates the CA: ca/ca-key.pem (0600) and then ca/ca.pem (0644), each
// written atomically and never over an existing file, and records the CA
// certificate in the inventory. If either file exists it returns
// ErrCAExists and changes nothing.
func Init(st *store.Store, opts InitOptions) (*Authority, error) {
	// Checked first so that nobody waits for an RSA key before hearing no;
	// writeCAFiles checks again, atomically.
	if err := refuseExistingCA(st.Dir()); err != nil {
		return nil, err
	}
	ca, err := newCA(opts)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.MarshalKeyPEM(ca.Key, opts.Passphrase)
	if err != nil {
		return nil, err
	}
	unlock, err := lockState(st.Dir())
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := writeCAFiles(st.Dir(), keyPEM, pki.EncodeCertPEM(ca.Cert)); err != nil {
		return nil, err
	}
	if err := st.AddCert(context.Background(), certRecord(pki.KindCA, ca.Cert.Subject.CommonName, ca.Cert)); err != nil {
		os.Remove(CACertPath(st.Dir()))
		os.Remove(CAKeyPath(st.Dir()))
		return nil, fmt.Errorf("failed to create the CA: %w", err)
	}
	return newAuthority(st, ca), nil
}

func newCA(opts InitOptions) (*pki.CA, error) {
	kt := opts.KeyType
	if kt == "" {
		kt = pki.DefaultKeyType
	}
	cn := opts.CN
	if cn == "" {
		cn = DefaultCN()
	}
	key, err := pki.GenerateKey(kt)
	if err != nil {
		return nil, fmt.Errorf("failed to create the CA: %w", err)
	}
	ca, err := pki.NewCA(cn, key, opts.Validity, nowOr(opts.Now))
	if err != nil {
		return nil, fmt.Errorf("failed to create the CA: %w", err)
	}
	return ca, nil
}

func writeCAFiles(stateDir string, keyPEM, certPEM []byte) error {
	dir := filepath.Dir(CACertPath(stateDir))
	if err := store.EnsureDir(dir); err != nil {
		return fmt.Errorf("failed to create the CA: %w", err)
	}
	// The key goes first: a crash in between leaves a key without a
	// certificate, which Init refuses to overwrite and Load reports.
	err := writeFilesExclusive(dir, []fileSpec{
		{name: filepath.Base(CAKeyPath(stateDir)), data: keyPEM, perm: keyFileMode},
		{name: filepath.Base(CACertPath(stateDir)), data: certPEM, perm: certFileMode},
	})
	if errors.Is(err, ErrFileExists) {
		return caExistsError(stateDir, err)
	}
	return err
}

func refuseExistingCA(stateDir string) error {
	for _, p := range []string{CAKeyPath(stateDir), CACertPath(stateDir)} {
		if err := refuseExisting(p); err != nil {
			if errors.Is(err, ErrFileExists) {
				return caExistsError(stateDir, err)
			}
			return err
		}
	}
	return nil
}

func caExistsError(stateDir string, err error) error {
	return fmt.Errorf("%w in %s (%v)", ErrCAExists, stateDir, err)
}

// Load reads the CA certificate and key. A wrong passphrase gives an error
// wrapping pki.ErrWrongPassphrase; an encrypted key without a passphrase one
// wrapping pki.ErrPassphraseRequired.
func Load(st *store.Store, passphrase []byte) (*Authority, error) {
	cert, err := LoadCert(st)
	if err != nil {
		return nil, err
	}
	keyPEM, err := readCAFile(st.Dir(), CAKeyPath(st.Dir()))
	if err != nil {
		return nil, err
	}
	key, err := pki.ParseKeyPEM(keyPEM, passphrase)
	if err != nil {
		return nil, fmt.Errorf("failed to load the CA key %s: %w", CAKeyPath(st.Dir()), err)
	}
	if !pki.KeyMatchesCert(key, cert) {
		return nil, fmt.Errorf("failed to load the CA: %s does not belong to %s", CAKeyPath(st.Dir()), CACertPath(st.Dir()))
	}
	return newAuthority(st, &pki.CA{Cert: cert, Key: key}), nil
}

// LoadCert reads the CA certificate alone; it needs no passphrase.
func LoadCert(st *store.Store) (*x509.Certificate, error) {
	data, err := readCAFile(st.Dir(), CACertPath(st.Dir()))
	if err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertPEM(data)
	if err != nil {
		return nil, fmt.Errorf("failed to load the CA certificate %s: %w", CACertPath(st.Dir()), err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("failed to load the CA certificate %s: not a CA certificate", CACertPath(st.Dir()))
	}
	return cert, nil
}

// KeyIsEncrypted reports whether the CA key needs a passphrase, so the CLI
// knows whether to ask for one.
func KeyIsEncrypted(st *store.Store) (bool, error) {
	data, err := readCAFile(st.Dir(), CAKeyPath(st.Dir()))
	if err != nil {
		return false, err
	}
	enc, err := pki.IsEncryptedKeyPEM(data)
	if err != nil {
		return false, fmt.Errorf("failed to read the CA key %s: %w", CAKeyPath(st.Dir()), err)
	}
	return enc, nil
}

// readCAFile reads a CA file. When neither CA file exists the error is
// ErrNoCA; when only one does, the error says which one is missing.
func readCAFile(stateDir, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		return data, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	if !exists(CACertPath(stateDir)) && !exists(CAKeyPath(stateDir)) {
		return nil, fmt.Errorf("%w (state directory %s)", ErrNoCA, stateDir)
	}
	return nil, fmt.Errorf("the CA is incomplete: %s is missing", path)
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// draftRecord is the pending inventory row for a certificate about to be
// signed from tmpl: everything but its PEM and fingerprint.
func draftRecord(kind pki.Kind, name string, tmpl *x509.Certificate) store.Cert {
	return store.Cert{
		Serial:    pki.SerialHex(tmpl.SerialNumber),
		Kind:      string(kind),
		Name:      name,
		Groups:    sortedCopy(tmpl.Subject.Organization),
		SANs:      sanStrings(tmpl),
		NotBefore: tmpl.NotBefore,
		NotAfter:  tmpl.NotAfter,
		State:     store.StatePending,
	}
}

// certRecord is the inventory row for cert.
func certRecord(kind pki.Kind, name string, cert *x509.Certificate) store.Cert {
	return store.Cert{
		Serial:      pki.SerialHex(cert.SerialNumber),
		Kind:        string(kind),
		Name:        name,
		Groups:      sortedCopy(cert.Subject.Organization),
		SANs:        sanStrings(cert),
		NotBefore:   cert.NotBefore,
		NotAfter:    cert.NotAfter,
		Fingerprint: pki.Fingerprint(cert),
		PEM:         pki.EncodeCertPEM(cert),
	}
}

// sortedCopy sorts groups for display: DER keeps them in encoding order.
func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// sanStrings lists a certificate's DNS names, then its IP addresses.
func sanStrings(cert *x509.Certificate) []string {
	if cert.IsCA {
		return nil
	}
	sans := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		sans = append(sans, ip.String())
	}
	return sans
}
