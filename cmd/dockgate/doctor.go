package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/doctor"
)

// newDoctorCmd is the parent of the diagnostics; each subcommand explains a
// failure in one sentence and exits non-zero.
func newDoctorCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Diagnose TLS trust, endpoints and images",
		Long: `doctor explains why something does not work, in one sentence, with the fix.

  dockgate doctor trust               which CA roots this binary uses here
  dockgate doctor tls https://HOST    handshake with a server and explain a failure
  dockgate doctor image IMAGE         will this image's program verify TLS servers?`,
	}
	cmd.AddCommand(
		newDoctorTrustCmd(a),
		newDoctorTLSCmd(a),
		newDoctorImageCmd(a),
	)
	addEndpointCheck(a, cmd) // doctor_endpoint.go: `doctor` alone checks a Docker endpoint
	return cmd
}

func newDoctorTrustCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "trust",
		Short: "Show which CA roots this binary would verify servers against",
		Example: `  dockgate doctor trust
  SSL_CERT_FILE=/etc/pki/bundle.pem dockgate doctor trust --json`,
		Long: `trust lists the CA bundle files and directories Go reads on Linux, with
SSL_CERT_FILE and SSL_CERT_DIR applied, how many certificates each holds,
and whether the roots embedded in dockgate (golang.org/x/crypto/x509roots/fallback)
are in use. It exits non-zero when there are no roots at all.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			report := doctor.InspectTrust(doctor.TrustOptions{Getenv: a.getenv})
			if err := writeReport(a.stdout, asJSON, report, report.WriteText); err != nil {
				return err
			}
			if report.Using == "none" {
				return withHint(errors.New(report.Summary()), "%s", strings.Join(doctor.NoCABundleFixes, "\n  or: "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newDoctorTLSCmd(a *app) *cobra.Command {
	var (
		asJSON  bool
		caFile  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "tls https://HOST[:PORT]",
		Short: "Handshake with a TLS server and explain a failure",
		Example: `  dockgate doctor tls https://registry.example.com
  dockgate doctor tls --ca ca.pem https://127.0.0.1:8443`,
		Long: `tls connects to a server, verifies its certificate the way dockgate and
other Go programs do, and explains a failure in one sentence: unknown
authority (or no CA bundle at all), expired, wrong name, wrong key usage,
TLS version, connection refused, DNS.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := tlsCheckOptions(a, caFile, timeout)
			if err != nil {
				return err
			}
			res, err := doctor.CheckTLS(cmd.Context(), args[0], opts)
			if err != nil {
				return usageErrorf("%v", err)
			}
			if err := writeReport(a.stdout, asJSON, res, res.WriteText); err != nil {
				return err
			}
			return verdictError(res.OK, res.Explanation, res.Fixes)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().StringVar(&caFile, "ca", "", "PEM file of CA certificates to trust as well as the system roots")
	cmd.Flags().DurationVar(&timeout, "timeout", doctor.DefaultTLSTimeout, "how long to wait for the connection and handshake")
	return cmd
}

// tlsCheckOptions builds the roots: the system's (or the embedded fallback
// roots), plus --ca.
func tlsCheckOptions(a *app, caFile string, timeout time.Duration) (doctor.TLSOptions, error) {
	trust := doctor.InspectTrust(doctor.TrustOptions{Getenv: a.getenv})
	opts := doctor.TLSOptions{Using: trust.Using, Timeout: timeout}
	if caFile == "" {
		return opts, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return opts, usageErrorf("failed to read --ca: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return opts, usageErrorf("--ca %s holds no PEM certificates", caFile)
	}
	opts.Roots = pool
	if opts.Using == "none" {
		opts.Using = "" // --ca is all there is: an unknown authority is simply not in it
	}
	return opts, nil
}

func newDoctorImageCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "image IMAGE",
		Short: "Check that an image's program can verify TLS servers",
		Example: `  dockgate doctor image myapp:latest
  DOCKER_HOST=tcp://dock1.example.net:2376 dockgate doctor image --json myapp:latest`,
		Long: `image exports IMAGE through the Docker API (DOCKER_HOST is honoured), reads
its merged filesystem and reports: a CA bundle where Go and OpenSSL read it,
SSL_CERT_FILE and SSL_CERT_DIR in the image's environment, whether the
entrypoint is static or dynamic and embeds Go's fallback roots. It exits
non-zero when outbound TLS from the image would fail.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := client.New(client.FromEnv)
			if err != nil {
				return withHint(fmt.Errorf("failed to set up the Docker client: %w", err), "check DOCKER_HOST")
			}
			defer api.Close()
			report, err := doctor.InspectImage(cmd.Context(), api, args[0])
			if err != nil {
				return withHint(err, "check that the image exists ('docker image ls') and DOCKER_HOST points at its daemon")
			}
			if err := writeReport(a.stdout, asJSON, report, report.WriteText); err != nil {
				return err
			}
			return verdictError(report.OK, report.Verdict, report.Fixes)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

// writeReport prints v as indented JSON or through its text writer.
func writeReport(w io.Writer, asJSON bool, v any, text func(io.Writer) error) error {
	if !asJSON {
		return text(w)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// verdictError turns a failed check into the error the CLI prints: the
// one-sentence explanation, with the fixes as the hint.
func verdictError(ok bool, explanation string, fixes []string) error {
	if ok {
		return nil
	}
	err := errors.New(explanation)
	if len(fixes) == 0 {
		return err
	}
	return withHint(err, "%s", strings.Join(fixes, "\n  or: "))
}
