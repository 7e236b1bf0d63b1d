package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/pki"
)

// crlFileMode: a CRL is public, signed data.
const crlFileMode = 0o644

func newRevokeCmd(a *app) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "revoke NAME|SERIAL",
		Short: "Revoke a certificate by name or serial",
		Long: `Revoke a certificate. A NAME revokes every valid certificate of that name; a
SERIAL (or a unique prefix of at least 4 hex digits, as 'dockgate certs'
shows) revokes that one certificate.

The gateway refuses a revoked certificate within a second. Other verifiers
need a CRL: run 'dockgate crl' after revoking.`,
		Example: `  dockgate revoke alice --reason key-compromise
  dockgate revoke 3f2a9c01b7e4`,
		Args: exactArgs(1, "NAME or SERIAL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRevoke(cmd.Context(), args[0], reason)
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "unspecified",
		"RFC 5280 reason: unspecified, key-compromise, ca-compromise, affiliation-changed, superseded, cessation-of-operation, certificate-hold, privilege-withdrawn, aa-compromise (keyCompromise spelling works too)")
	return cmd
}

func (a *app) runRevoke(ctx context.Context, nameOrSerial, reason string) error {
	if _, err := pki.ParseRevocationReason(reason); err != nil {
		return &usageError{err: err}
	}
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := authority.LoadCert(st); err != nil {
		return caFileError(err, st)
	}
	revoked, err := authority.Revoke(ctx, st, nameOrSerial, reason, time.Now())
	for _, c := range revoked {
		fmt.Fprintf(a.stdout, "Revoked %s %q (serial %s, reason %s)\n", c.Kind, c.Name, c.Serial, c.Reason)
	}
	if err != nil {
		if errors.Is(err, authority.ErrRevokeCA) {
			return withHint(err, "to stop trusting this CA everywhere, remove its ca.pem from the clients and servers")
		}
		return caError(err, st)
	}
	return nil
}

func newCRLCmd(a *app) *cobra.Command {
	var out, passphraseFile string
	var days int
	cmd := &cobra.Command{
		Use:   "crl",
		Short: "Sign a certificate revocation list",
		Long: `Sign an X.509 CRL listing every revoked certificate and print it as PEM, or
write it to --out atomically. Each CRL gets the next CRL number.`,
		Example: `  dockgate crl --out /etc/docker/tls/crl.pem
  dockgate crl | openssl crl -text -noout`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runCRL(cmd.Context(), out, days, passphraseFile)
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "write the CRL to this file instead of standard output")
	f.IntVar(&days, "days", int(pki.DefaultCRLValidity/(24*time.Hour)), "days until the CRL's next update")
	f.StringVar(&passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
	return cmd
}

func (a *app) runCRL(ctx context.Context, out string, days int, passphraseFile string) error {
	validity, err := daysFlag("days", days)
	if err != nil {
		return err
	}
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	auth, err := a.loadAuthority(st, passphraseFile)
	if err != nil {
		return err
	}
	crlPEM, err := auth.CRL(ctx, validity, time.Now())
	if err != nil {
		return err
	}
	if out == "" {
		_, err := a.stdout.Write(crlPEM)
		return err
	}
	if err := atomicfile.Write(out, crlPEM, crlFileMode); err != nil {
		return err
	}
	return a.describeCRL(crlPEM, out)
}

func (a *app) describeCRL(crlPEM []byte, path string) error {
	crl, err := pki.ParseCRLPEM(crlPEM)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Wrote CRL number %s listing %d revoked certificate(s) to %s (next update %s)\n",
		crl.Number, len(crl.RevokedCertificateEntries), path, crl.NextUpdate.UTC().Format(time.RFC3339))
	return nil
}

func newRenewCmd(a *app) *cobra.Command {
	var revokeOld bool
	var passphraseFile string
	cmd := &cobra.Command{
		Use:   "renew NAME",
		Short: "Issue a new key and certificate with the same subject and SANs",
		Long: `Renew a server or client certificate: a new key and certificate with the
subject, groups, SANs, key type and lifetime of the newest unrevoked one. The
bundle in the state directory is replaced. With --revoke-old the previous
certificate is revoked as superseded; otherwise it stays valid until it
expires.`,
		Example: `  dockgate renew alice
  dockgate renew dock1 --revoke-old`,
		Args: exactArgs(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runRenew(cmd.Context(), args[0], revokeOld, passphraseFile)
		},
	}
	cmd.Flags().BoolVar(&revokeOld, "revoke-old", false, "revoke the certificate being replaced (reason superseded)")
	cmd.Flags().StringVar(&passphraseFile, "passphrase-file", "", "read the CA key passphrase from the first line of this file")
	return cmd
}

func (a *app) runRenew(ctx context.Context, name string, revokeOld bool, passphraseFile string) error {
	if err := authority.ValidateName(name); err != nil {
		return nameError(err)
	}
	st, err := a.openCAStore()
	if err != nil {
		return err
	}
	defer st.Close()
	auth, err := a.loadAuthority(st, passphraseFile)
	if err != nil {
		return err
	}
	is, err := auth.Renew(ctx, name, revokeOld, time.Now())
	if is != nil {
		a.printIssued(is, "")
	}
	if err != nil {
		return caError(err, st)
	}
	if revokeOld {
		fmt.Fprintln(a.stdout, "  the previous certificate is revoked (superseded)")
	}
	return nil
}
