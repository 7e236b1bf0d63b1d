package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/doctor"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// endpointFlags select the endpoint as the docker CLI's flags do.
type endpointFlags struct {
	context                   string
	host                      string
	tls, tlsVerify            bool
	caFile, certFile, keyFile string
	asJSON                    bool
	timeout                   time.Duration
}

// addEndpointCheck makes `dockgate doctor` itself check a Docker endpoint:
// a docker context, or -H with TLS flags, or DOCKER_HOST and friends.
func addEndpointCheck(a *app, cmd *cobra.Command) {
	f := &endpointFlags{}
	cmd.Use = "doctor [--context NAME | -H tcp://HOST:PORT [--tlsverify ...]]"
	cmd.Long += `

With no subcommand, doctor checks a Docker endpoint step by step, as the
docker CLI would use it: the current docker context, or --context, or -H
with --tls/--tlsverify and --tlscacert/--tlscert/--tlskey (DOCKER_HOST,
DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI reads them). Each
check prints ✓ or ✗ with a one-line fix; the exit code is 0 only when all pass.`
	cmd.Example = `  dockgate doctor
  dockgate doctor --context prod --json
  dockgate doctor -H tcp://dock1.example.net:2376 --tlsverify --tlscacert ca.pem --tlscert cert.pem --tlskey key.pem`
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(c *cobra.Command, _ []string) error {
		return a.runDoctorEndpoint(c, *f)
	}
	addEndpointCheckFlags(cmd, f)
}

func addEndpointCheckFlags(cmd *cobra.Command, f *endpointFlags) {
	fl := cmd.Flags()
	fl.StringVar(&f.context, "context", "", "docker context to check")
	fl.StringVarP(&f.host, "host", "H", "", "endpoint to check, tcp://HOST:PORT (env DOCKER_HOST)")
	fl.BoolVar(&f.tls, "tls", false, "use TLS; implied by --tlsverify")
	fl.BoolVar(&f.tlsVerify, "tlsverify", false, "use TLS and verify the server (env DOCKER_TLS_VERIFY)")
	fl.StringVar(&f.caFile, "tlscacert", "", "trust certificates signed by this CA (default $DOCKER_CERT_PATH/ca.pem)")
	fl.StringVar(&f.certFile, "tlscert", "", "client certificate (default $DOCKER_CERT_PATH/cert.pem)")
	fl.StringVar(&f.keyFile, "tlskey", "", "client key (default $DOCKER_CERT_PATH/key.pem)")
	fl.BoolVar(&f.asJSON, "json", false, "print the report as JSON")
	fl.DurationVar(&f.timeout, "timeout", doctor.DefaultTLSTimeout, "how long to wait for each network step")
}

func (a *app) runDoctorEndpoint(c *cobra.Command, f endpointFlags) error {
	opts, err := a.endpointOptions(c, f)
	if err != nil {
		return err
	}
	opts.Timeout = f.timeout
	opts.Revoked = a.localRevocations(opts.CA)
	rep := doctor.CheckEndpoint(c.Context(), opts)
	if err := writeReport(a.stdout, f.asJSON, rep, rep.WriteText); err != nil {
		return err
	}
	if failed := rep.Failed(); len(failed) > 0 {
		first := failed[0]
		return withHint(fmt.Errorf("%d check(s) failed; first: %s: %s", len(failed), first.Name, first.Detail), "%s", first.Fix)
	}
	return nil
}

// endpointOptions resolves what to check in the docker CLI's order:
// --context, then -H (or DOCKER_HOST) with TLS flags, then the current
// context.
func (a *app) endpointOptions(c *cobra.Command, f endpointFlags) (doctor.EndpointOptions, error) {
	tlsFlagged := f.tls || f.tlsVerify || f.caFile != "" || f.certFile != "" || f.keyFile != ""
	if f.context != "" && (f.host != "" || tlsFlagged) {
		return doctor.EndpointOptions{}, usageErrorf("--context and -H/--tls* select the endpoint two ways; give one")
	}
	if f.context != "" {
		return a.contextEndpoint(f.context)
	}
	host := f.host
	if host == "" {
		host = a.getenv("DOCKER_HOST")
	}
	if host != "" {
		return a.flagEndpoint(c, host, f)
	}
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return doctor.EndpointOptions{}, err
	}
	name, err := dockerconf.ActiveContext(configDir, a.getenv)
	if err != nil {
		return doctor.EndpointOptions{}, err
	}
	if name == dockerconf.DefaultContextName {
		return doctor.EndpointOptions{}, withHint(errors.New("nothing to check: the docker CLI uses its local socket here (context \"default\", no DOCKER_HOST)"),
			"pass --context NAME or -H tcp://HOST:PORT --tlsverify ...")
	}
	return a.contextEndpoint(name)
}

func (a *app) contextEndpoint(name string) (doctor.EndpointOptions, error) {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return doctor.EndpointOptions{}, err
	}
	ctx, err := dockerconf.ReadContext(configDir, name)
	if err != nil {
		return doctor.EndpointOptions{}, withHint(err, "list contexts with 'docker context ls'")
	}
	return doctor.EndpointOptions{Host: ctx.Host, Source: fmt.Sprintf("context %q", name),
		TLS: ctx.CA != nil || ctx.Cert != nil, Verify: !ctx.SkipTLSVerify && ctx.CA != nil,
		CA: ctx.CA, Cert: ctx.Cert, Key: ctx.Key}, nil
}

// flagEndpoint follows the docker CLI: --tls (or DOCKER_TLS) turns TLS on,
// --tlsverify (or DOCKER_TLS_VERIFY) also verifies the server; files default to DOCKER_CERT_PATH, else the configuration
// directory, when TLS is on.
func (a *app) flagEndpoint(c *cobra.Command, host string, f endpointFlags) (doctor.EndpointOptions, error) {
	h, _, err := dockerconf.ParseHost(host)
	if err != nil {
		return doctor.EndpointOptions{}, &usageError{err: err}
	}
	source := "-H"
	if f.host == "" {
		source = "DOCKER_HOST"
	}
	verify := f.tlsVerify || !c.Flags().Changed("tlsverify") && a.getenv("DOCKER_TLS_VERIFY") != ""
	useTLS := f.tls || !c.Flags().Changed("tls") && a.getenv("DOCKER_TLS") != "" || verify
	opts := doctor.EndpointOptions{Host: h.String(), Source: source, Verify: verify, TLS: useTLS}
	if !opts.TLS {
		return opts, nil
	}
	certDir := a.getenv("DOCKER_CERT_PATH")
	if certDir == "" {
		if certDir, err = dockerconf.ConfigDir(a.getenv); err != nil {
			return opts, err
		}
	}
	for _, file := range []struct {
		flag, name string
		dst        *[]byte
	}{{f.caFile, "ca.pem", &opts.CA}, {f.certFile, "cert.pem", &opts.Cert}, {f.keyFile, "key.pem", &opts.Key}} {
		path := file.flag
		if path == "" {
			path = filepath.Join(certDir, file.name)
		}
		data, err := os.ReadFile(path)
		if err != nil && (!errors.Is(err, fs.ErrNotExist) || file.flag != "") {
			return opts, usageErrorf("failed to read %s: %v", path, err)
		}
		*file.dst = data
	}
	return opts, nil
}

// localRevocations looks serials up in this machine's inventory, when it
// is the gateway's (its CA is the one in use); otherwise nil.
func (a *app) localRevocations(caPEM []byte) func(context.Context, string) (bool, error) {
	dir, err := a.stateDir()
	if err != nil {
		return nil
	}
	// A shared store (--store, DOCKGATE_STORE) is the inventory; a
	// state directory's SQLite file left from before a move to it is not.
	url, err := a.storeURL(nil)
	if err != nil {
		return nil
	}
	have := filepath.Join(dir, store.DBFile)
	if url != "" {
		have = authority.CACertPath(dir)
	}
	if _, err := os.Stat(have); err != nil {
		return nil // never create a state directory just to look
	}
	inUse, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return nil
	}
	return func(ctx context.Context, serial string) (bool, error) {
		st, err := a.openStore(dir, nil)
		if err != nil {
			return false, err
		}
		defer st.Close()
		ca, err := authority.LoadCert(st)
		if err != nil || pki.SPKIHash(ca) != pki.SPKIHash(inUse) {
			return false, errors.New("not this gateway's inventory")
		}
		c, err := st.CertBySerial(ctx, serial)
		if err != nil || c.Serial != serial {
			return false, errors.New("serial not in the inventory")
		}
		// The gateway refuses superseded and pending certificates as it
		// does revoked ones.
		return c.Revoked() || c.Pending() || c.Superseded(time.Now()), nil
	}
}
