package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// maxDays is the longest validity a time.Duration can express (about 292
// years); anything longer would overflow silently.
const maxDays = math.MaxInt64 / int64(24*time.Hour)

// maxCommonNameLength is ub-common-name from RFC 5280 appendix A.
const maxCommonNameLength = 64

// keyTypeFlagHelp lists the key types for --key-type.
const keyTypeFlagHelp = "key algorithm: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072 or rsa-4096"

const (
	hintInit       = "run 'dockgate init' first, or point --state-dir (or DOCKGATE_HOME) at an existing CA"
	hintCerts      = "run 'dockgate certs' to list names and serials"
	hintPassphrase = "the passphrase is the one given to 'dockgate init'; check --passphrase-file or " + passphraseEnv
)

func newInitCmd(a *app) *cobra.Command {
	var opts initOptions
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the certificate authority",
		Long: `Create the certificate authority that signs the server and client certificates.

The CA key is stored as encrypted PKCS#8. The passphrase comes from
--passphrase-file (its first line), else $` + passphraseEnv + `, else a prompt
on the terminal (asked twice). An existing CA is never overwritten.`,
		Example: `  dockgate init
  dockgate init --cn "build farm CA" --key-type ecdsa-p384 --passphrase-file ~/.ca-pass`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runInit(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.cn, "cn", authority.DefaultCN(), "common name of the CA certificate")
	f.StringVar(&opts.keyType, "key-type", string(pki.DefaultKeyType), keyTypeFlagHelp)
	f.IntVar(&opts.days, "days", int(pki.DefaultCAValidity/(24*time.Hour)), "validity of the CA certificate in days")
	f.StringVar(&opts.passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
	f.BoolVar(&opts.insecureNoPassphrase, "insecure-no-passphrase", false, "store the CA key unencrypted (anyone who can read it can issue certificates)")
	return cmd
}

type initOptions struct {
	cn, keyType, passphraseFile string
	days                        int
	insecureNoPassphrase        bool
}

func (a *app) runInit(ctx context.Context, opts initOptions) error {
	validity, err := daysFlag("days", opts.days)
	if err != nil {
		return err
	}
	kt, err := keyTypeFlag(opts.keyType)
	if err != nil {
		return err
	}
	if len(opts.cn) > maxCommonNameLength {
		return usageErrorf("--cn must be at most %d characters", maxCommonNameLength)
	}
	if opts.insecureNoPassphrase && opts.passphraseFile != "" {
		return usageErrorf("--insecure-no-passphrase and --passphrase-file contradict each other")
	}
	dir, err := a.stateDir()
	if err != nil {
		return err
	}
	// Checked before asking for a passphrase nobody will need, and before
	// the state directory is created, so a refused init leaves nothing.
	if caFilesExist(dir) {
		return caExistsError(dir)
	}
	var passphrase []byte
	if !opts.insecureNoPassphrase {
		if passphrase, err = readPassphrase(a.passphraseSource(opts.passphraseFile), true); err != nil {
			return initPassphraseError(err)
		}
	}
	st, err := a.openStore(dir, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	auth, err := authority.Init(st, authority.InitOptions{CN: opts.cn, KeyType: kt, Validity: validity, Passphrase: passphrase})
	if errors.Is(err, authority.ErrCAExists) {
		return caExistsError(dir)
	}
	if err != nil {
		return err
	}
	if opts.insecureNoPassphrase {
		fmt.Fprintln(a.stderr, "dockgate: warning: the CA key is stored UNENCRYPTED: anyone who can read it can issue certificates")
	}
	a.printCA(auth.Cert(), st, passphrase != nil)
	return nil
}

// initPassphraseError adds --insecure-no-passphrase to the hint when no
// passphrase source exists, since init is the one command where it applies.
func initPassphraseError(err error) error {
	if errors.Is(err, errNoPassphrase) {
		return withHint(errNoPassphrase, "%s; or use --insecure-no-passphrase for an unencrypted key", passphraseSourcesHint)
	}
	return err
}

func caFilesExist(dir string) bool {
	for _, p := range []string{authority.CACertPath(dir), authority.CAKeyPath(dir)} {
		if _, err := os.Lstat(p); err == nil {
			return true
		}
	}
	return false
}

func caExistsError(dir string) error {
	return withHint(fmt.Errorf("a CA already exists in %s", dir),
		"dockgate never overwrites a CA; use another --state-dir for a new one")
}

func (a *app) printCA(cert *x509.Certificate, st *store.Store, encrypted bool) {
	protection := "encrypted"
	if !encrypted {
		protection = "NOT encrypted"
	}
	fmt.Fprintf(a.stdout, "Created the CA %q in %s\n", cert.Subject.CommonName, st.Dir())
	fmt.Fprintf(a.stdout, "  certificate:   %s\n", authority.CACertPath(st.Dir()))
	fmt.Fprintf(a.stdout, "  key:           %s (%s)\n", authority.CAKeyPath(st.Dir()), protection)
	fmt.Fprintf(a.stdout, "  expires:       %s\n", cert.NotAfter.UTC().Format(time.DateOnly))
	fmt.Fprintf(a.stdout, "  SHA-256:       %s\n", pki.Fingerprint(cert))
	fmt.Fprintf(a.stdout, "  SPKI SHA-256:  %s\n", pki.SPKIHash(cert))
}

// openCAStore opens the state directory of an existing CA. A missing
// directory is not created: a typo in --state-dir must not leave an empty
// one behind.
func (a *app) openCAStore() (*store.Store, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, withHint(fmt.Errorf("no CA in %s", dir), hintInit)
	}
	return a.openStore(dir, nil)
}

// loadAuthority unlocks the CA, asking for the passphrase only if the key
// is encrypted.
func (a *app) loadAuthority(st *store.Store, passphraseFile string) (*authority.Authority, error) {
	if _, err := authority.LoadCert(st); err != nil {
		return nil, caFileError(err, st)
	}
	encrypted, err := authority.KeyIsEncrypted(st)
	if err != nil {
		return nil, caFileError(err, st)
	}
	var passphrase []byte
	if encrypted {
		if passphrase, err = readPassphrase(a.passphraseSource(passphraseFile), false); err != nil {
			return nil, err
		}
	}
	auth, err := authority.Load(st, passphrase)
	if err != nil {
		return nil, caFileError(err, st)
	}
	auth.SetLogger(a.noticeLogger())
	return auth, nil
}

// caError turns the CA's sentinel errors into one line with a hint.
func caError(err error, st *store.Store) error {
	switch {
	case errors.Is(err, authority.ErrNoCA):
		return withHint(fmt.Errorf("no CA in %s", st.Dir()), hintInit)
	case errors.Is(err, pki.ErrWrongPassphrase):
		return withHint(errors.New("failed to unlock the CA key: wrong passphrase"), hintPassphrase)
	case errors.Is(err, store.ErrAmbiguous):
		return withHint(err, "give more digits of the serial; %s", hintCerts)
	case errors.Is(err, store.ErrNotFound):
		return withHint(err, hintCerts)
	}
	return err
}

// caFileError is caError for errors reading the CA's own files: anything
// but a missing CA or a wrong passphrase means they are damaged.
func caFileError(err error, st *store.Store) error {
	if errors.Is(err, authority.ErrNoCA) || errors.Is(err, pki.ErrWrongPassphrase) {
		return caError(err, st)
	}
	return withHint(err, "the CA files in %s are damaged or incomplete; restore them from a backup", filepath.Dir(authority.CACertPath(st.Dir())))
}

// daysFlag converts a --days value, refusing zero, negative and overflowing
// values.
func daysFlag(name string, days int) (time.Duration, error) {
	if days < 1 || int64(days) > maxDays {
		return 0, withHint(usageErrorf("--%s must be between 1 and %d, not %d", name, maxDays, days),
			"give the validity as a whole number of days")
	}
	return time.Duration(days) * 24 * time.Hour, nil
}

func keyTypeFlag(s string) (pki.KeyType, error) {
	kt, err := pki.ParseKeyType(s)
	if err != nil {
		return "", &usageError{err: withHint(err, "the default, ecdsa-p256, suits almost everyone")}
	}
	return kt, nil
}
