package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/pki"
)

// Commands that configure the docker CLI and dockerd: env, context create,
// dockerd-config.

func newEnvCmd(a *app) *cobra.Command {
	var hostFlag, shellFlag string
	cmd := &cobra.Command{
		Use:   "env CLIENT_NAME --host tcp://HOST:2376",
		Short: "Print shell exports that point the docker CLI at a TLS daemon",
		Example: `  eval "$(dockgate env alice --host tcp://docker.example.com:2376)"
  dockgate env alice --host tcp://docker.example.com:2376 --shell fish | source`,
		Long: `Print DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH for a client
certificate kept in the state directory, quoted for the shell:

  eval "$(dockgate env alice --host tcp://docker.example.com:2376)"

The shell is taken from $SHELL unless --shell says otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			shell := dockerconf.DetectShell(a.getenv)
			if cmd.Flags().Changed("shell") {
				var err error
				if shell, err = dockerconf.ParseShell(shellFlag); err != nil {
					return usageErrorf("%v", err)
				}
			}
			host, err := parseClientHostFlag(a, hostFlag)
			if err != nil {
				return err
			}
			files, err := loadClientFiles(a, args[0])
			if err != nil {
				return err
			}
			out, err := dockerconf.Exports(shell, dockerconf.DockerTLSEnv(host, files.Dir),
				envEvalCommand(a, args[0], host, shell, cmd.Flags().Changed("shell")))
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(a.stdout, out)
			return err
		},
	}
	cmd.Flags().StringVar(&hostFlag, "host", "", "the daemon's address as clients reach it, tcp://HOST:PORT (required)")
	cmd.Flags().StringVar(&shellFlag, "shell", "", "sh, bash, zsh, fish or powershell (default from $SHELL, else sh)")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

// envEvalCommand is the command line to repeat inside eval, for the comment
// that ends the exports.
func envEvalCommand(a *app, client string, host dockerconf.Host, shell dockerconf.Shell, shellGiven bool) string {
	words := []string{"dockgate"}
	if a.stateDirFlag != "" {
		words = append(words, "--state-dir", a.stateDirFlag)
	}
	words = append(words, "env", client, "--host", host.String())
	if shellGiven {
		words = append(words, "--shell", string(shell))
	}
	for i, w := range words {
		words[i] = dockerconf.QuoteSh(w)
	}
	return strings.Join(words, " ")
}

func newContextCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "context",
		Short:   "Manage docker contexts for dockgate clients",
		Example: `  dockgate context create dock1 --client alice --host tcp://dock1.example.net:2376 --use`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newContextCreateCmd(a))
	return cmd
}

type contextCreateFlags struct {
	client, host, description string
	use, force                bool
}

func newContextCreateCmd(a *app) *cobra.Command {
	var f contextCreateFlags
	cmd := &cobra.Command{
		Use:   "create CONTEXT --client NAME --host tcp://HOST:2376",
		Short: "Write a docker context that uses a client certificate",
		Example: `  dockgate context create dock1 --client alice --host tcp://dock1.example.net:2376
  dockgate context create dock1 --client alice --host tcp://192.0.2.10:2376 --force --use
  docker --context dock1 ps`,
		Long: `Write a docker context in the docker CLI's own format under $DOCKER_CONFIG
(or ~/.docker), with a copy of the client's ca.pem, cert.pem and key.pem.
Afterwards "docker --context CONTEXT ..." works; with --use it becomes the
current context. An existing context is replaced only with --force.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runContextCreate(a, args[0], f)
		},
	}
	cmd.Flags().StringVar(&f.client, "client", "", "client certificate name in the state directory (required)")
	cmd.Flags().StringVar(&f.host, "host", "", "the daemon's address as clients reach it, tcp://HOST:PORT (required)")
	cmd.Flags().StringVar(&f.description, "description", "", `context description (default "dockgate client NAME")`)
	cmd.Flags().BoolVar(&f.use, "use", false, "make it the docker CLI's current context")
	cmd.Flags().BoolVar(&f.force, "force", false, "replace an existing context of the same name")
	_ = cmd.MarkFlagRequired("client")
	_ = cmd.MarkFlagRequired("host")
	return cmd
}

func runContextCreate(a *app, name string, f contextCreateFlags) error {
	if err := dockerconf.ValidateContextName(name); err != nil {
		return usageErrorf("%v", err)
	}
	host, err := parseClientHostFlag(a, f.host)
	if err != nil {
		return err
	}
	files, err := loadClientFiles(a, f.client)
	if err != nil {
		return err
	}
	ca, cert, key, err := files.Load()
	if err != nil {
		return err
	}
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	if f.description == "" {
		f.description = "dockgate client " + f.client
	}
	c := dockerconf.Context{Name: name, Description: f.description, Host: host.String(), CA: ca, Cert: cert, Key: key}
	if err := dockerconf.WriteContext(configDir, c, f.force); err != nil {
		if errors.Is(err, dockerconf.ErrContextExists) {
			return withHint(err, "add --force to replace it, or pick another name")
		}
		return err
	}
	fmt.Fprintf(a.stdout, "Created docker context %q for %s (client %s) in %s\n", name, host, f.client, configDir)
	if !f.use {
		fmt.Fprintf(a.stdout, "Try: docker --context %s version\n", name)
		return nil
	}
	if err := dockerconf.UseContext(configDir, name); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Current docker context is now %q\n", name)
	warnContextOverrides(a)
	return nil
}

// warnContextOverrides says when the environment would hide the context
// just selected: the docker CLI prefers DOCKER_HOST and DOCKER_CONTEXT.
func warnContextOverrides(a *app) {
	for _, v := range []string{"DOCKER_HOST", "DOCKER_CONTEXT"} {
		if a.getenv(v) != "" {
			fmt.Fprintf(a.stderr, "dockgate: warning: %s is set and takes precedence over the current context; unset %s\n", v, v)
		}
	}
}

type dockerdConfigFlags struct {
	listen, format, certDir, dockerd string
	allowGatewayCA                   bool
}

// dockerdFormats are the --format values of dockerd-config.
var dockerdFormats = []string{"daemon.json", "flags", "systemd"}

func newDockerdConfigCmd(a *app) *cobra.Command {
	f := dockerdConfigFlags{listen: "tcp://0.0.0.0:2376", format: "daemon.json"}
	cmd := &cobra.Command{
		Use:   "dockerd-config SERVER_NAME",
		Short: "Print dockerd's TLS settings for a server certificate",
		Example: `  dockgate dockerd-config dock1 > /etc/docker/daemon.json
  dockgate dockerd-config dock1 --format systemd --listen tcp://0.0.0.0:2376
  dockgate dockerd-config dock1 --format flags --cert-dir /etc/docker/tls`,
		Long: `Print the settings that make dockerd listen on TCP with mutual TLS, so it
accepts only clients with a certificate from this CA:

  --format daemon.json  keys for /etc/docker/daemon.json (hosts keeps the local socket)
  --format flags        one line of dockerd flags
  --format systemd      a docker.service drop-in plus the daemon.json it needs, for
                        units that run "dockerd -H fd://"

The certificate files are referenced where the state directory keeps them,
or in --cert-dir if you copied them (for example to /etc/docker/tls).
Warnings go to stderr when clients could not verify the server certificate
at the listen address.

dockerd must not trust the CA that signs the gateway's clients: their
certificates would reach the whole Docker API past the gateway's roles and
revocations. When this state directory also holds the gateway's server
certificate, the command refuses unless --allow-gateway-ca is given; give
dockerd a CA of its own (another --state-dir) instead.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDockerdConfig(a, args[0], f)
		},
	}
	cmd.Flags().StringVar(&f.listen, "listen", f.listen, "address dockerd listens on, tcp://HOST:PORT")
	cmd.Flags().StringVar(&f.format, "format", f.format, "daemon.json, flags or systemd")
	cmd.Flags().StringVar(&f.certDir, "cert-dir", "", "directory with ca.pem, cert.pem and key.pem as dockerd will read them (default: the state directory's copy)")
	cmd.Flags().BoolVar(&f.allowGatewayCA, "allow-gateway-ca", false, "configure dockerd even though it would trust the CA of the gateway's clients (they would bypass the gateway)")
	cmd.Flags().StringVar(&f.dockerd, "dockerd", "", "dockerd binary for the systemd drop-in (default: dockerd on PATH, else "+dockerconf.DefaultDockerd+")")
	return cmd
}

func runDockerdConfig(a *app, server string, f dockerdConfigFlags) error {
	if !slices.Contains(dockerdFormats, f.format) {
		return usageErrorf("invalid --format %q: want one of %s", f.format, strings.Join(dockerdFormats, ", "))
	}
	listen, defaulted, err := dockerconf.ParseHost(f.listen)
	if err != nil {
		return hostUsageError("--listen", err)
	}
	noteDefaultPort(a, defaulted, listen)
	files, err := serverFilesFor(a, server, f.certDir)
	if err != nil {
		return err
	}
	cert, err := files.LoadCert()
	if err != nil {
		return withHint(err, "issue it again with 'dockgate issue server %s'", server)
	}
	if err := a.refuseSharedClientCA(files, f.allowGatewayCA); err != nil {
		return err
	}
	printServerFindings(a, server, cert, listen)
	return printDaemonConfig(a, dockerconf.Daemon{Listen: listen, Files: files}, f)
}

// refuseSharedClientCA refuses when dockerd would trust the CA that signs
// the gateway's clients (this state directory's, with a gateway server
// certificate), unless --allow-gateway-ca says so: dockerd knows nothing of
// roles or of dockgate's revocations, so every client certificate of that
// CA, revoked ones included, would reach the Docker API directly past the
// gateway. With the flag it still warns.
func (a *app) refuseSharedClientCA(files dockerconf.CertFiles, allow bool) error {
	if !a.sharesGatewayClientCA(files) {
		return nil
	}
	const risk = "dockerd would trust the CA that signs the gateway's clients: every client certificate of it, " +
		"revoked ones included, would reach dockerd directly, past the gateway's roles, revocation and audit log"
	if allow {
		fmt.Fprintf(a.stderr, "dockgate: WARNING: %s (--allow-gateway-ca)\n", risk)
		return nil
	}
	return withHint(errors.New(risk),
		"give dockerd a CA of its own that only the gateway's upstream certificate comes from: "+
			"dockgate --state-dir /etc/dockgate/dockerd init, then issue server NAME and issue client gateway-upstream there, "+
			"and set upstream tls_ca/tls_cert/tls_key in the gateway config (or keep dockerd on its unix socket behind the gateway); "+
			"--allow-gateway-ca accepts the risk")
}

// sharesGatewayClientCA reports whether files' CA is this state
// directory's CA and the state directory holds the gateway's server
// certificate.
func (a *app) sharesGatewayClientCA(files dockerconf.CertFiles) bool {
	stateDir, err := a.stateDir()
	if err != nil {
		return false
	}
	serverCert := config.Default().ServerCert
	if cfg, err := a.loadConfig(&serveFlags{}); err == nil {
		serverCert = cfg.ServerCert
	}
	if !bundleExists(stateDir, pki.KindServer, serverCert) {
		return false
	}
	gatewayCA, err1 := os.ReadFile(authority.CACertPath(stateDir))
	dockerdCA, err2 := os.ReadFile(files.CA)
	return err1 == nil && err2 == nil && bytes.Equal(bytes.TrimSpace(gatewayCA), bytes.TrimSpace(dockerdCA))
}

func printDaemonConfig(a *app, d dockerconf.Daemon, f dockerdConfigFlags) error {
	switch f.format {
	case "flags":
		_, err := fmt.Fprintln(a.stdout, d.FlagsLine())
		return err
	case "systemd":
		dockerd := f.dockerd
		if dockerd == "" {
			dockerd = dockerconf.FindDockerd(exec.LookPath)
		}
		out, err := d.SystemdDropIn(dockerd)
		if err != nil {
			return usageErrorf("%v", err)
		}
		_, err = fmt.Fprint(a.stdout, out)
		return err
	}
	js, err := d.JSON()
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "dockgate: note: merge these keys into %s; \"hosts\" keeps %s so local docker commands still work.\n", dockerconf.DaemonJSONPath, dockerconf.LocalSocket)
	fmt.Fprintln(a.stderr, "dockgate: note: if your docker.service runs dockerd -H fd://, also install the drop-in from --format systemd.")
	_, err = a.stdout.Write(js)
	return err
}

func serverFilesFor(a *app, server, certDir string) (dockerconf.CertFiles, error) {
	var files dockerconf.CertFiles
	if certDir != "" {
		dir, err := filepath.Abs(certDir)
		if err != nil {
			return files, err
		}
		files = dockerconf.FilesIn(dir)
	} else {
		stateDir, err := a.stateDir()
		if err != nil {
			return files, err
		}
		if files, err = dockerconf.ServerFiles(stateDir, server); err != nil {
			return files, usageErrorf("%v", err)
		}
	}
	return files, checkCertFiles(files, "server", server)
}

// printServerFindings warns when clients could not verify dockerd at the
// listen address, and tells which addresses they can use.
func printServerFindings(a *app, server string, cert *x509.Certificate, listen dockerconf.Host) {
	for _, f := range dockerconf.CheckServerCert(cert, listen, time.Now()) {
		if !f.Warning() {
			fmt.Fprintf(a.stderr, "dockgate: note: %s\n", f.Message)
			continue
		}
		fmt.Fprintf(a.stderr, "dockgate: warning: %s\n", f.Message)
		if f.Kind == dockerconf.ListenNotInSANs || f.Kind == dockerconf.NoSANs {
			fmt.Fprintf(a.stderr, "dockgate: hint: issue a server certificate that names it: %s\n",
				reissueServerCommand(server, cert, listen.Hostname))
		}
	}
}

// reissueServerCommand keeps the certificate's names and adds the missing one.
func reissueServerCommand(server string, cert *x509.Certificate, missing string) string {
	words := []string{"dockgate", "issue", "server", server}
	for _, h := range dockerconf.ClientAddresses(cert, 0) {
		words = append(words, "--san", h.Hostname)
	}
	words = append(words, "--san", missing)
	for i, w := range words {
		words[i] = dockerconf.QuoteSh(w)
	}
	return strings.Join(words, " ")
}

// parseClientHostFlag parses --host and notes a defaulted port.
func parseClientHostFlag(a *app, value string) (dockerconf.Host, error) {
	host, defaulted, err := dockerconf.ParseClientHost(value)
	if err != nil {
		return host, hostUsageError("--host", err)
	}
	noteDefaultPort(a, defaulted, host)
	return host, nil
}

func noteDefaultPort(a *app, defaulted bool, host dockerconf.Host) {
	if defaulted {
		fmt.Fprintf(a.stderr, "dockgate: note: no port given; using %s\n", host)
	}
}

// hostUsageError turns an address the user typed into a usage error that
// carries the parser's hint.
func hostUsageError(flag string, err error) error {
	err = fmt.Errorf("%s: %w", flag, err)
	var he *dockerconf.HostError
	if errors.As(err, &he) {
		err = withHint(err, "%s", he.Hint)
	}
	return &usageError{err: err}
}

// loadClientFiles finds a client's files in the state directory and warns
// when its certificate cannot log in to dockerd.
func loadClientFiles(a *app, client string) (dockerconf.CertFiles, error) {
	stateDir, err := a.stateDir()
	if err != nil {
		return dockerconf.CertFiles{}, err
	}
	files, err := dockerconf.ClientFiles(stateDir, client)
	if err != nil {
		return files, usageErrorf("%v", err)
	}
	if err := checkCertFiles(files, "client", client); err != nil {
		return files, err
	}
	cert, err := files.LoadCert()
	if err != nil {
		return files, withHint(err, "issue it again with 'dockgate issue client %s'", client)
	}
	for _, f := range dockerconf.CheckClientCert(cert, time.Now()) {
		fmt.Fprintf(a.stderr, "dockgate: warning: client %s: %s\n", client, f.Message)
	}
	return files, nil
}

// checkCertFiles tells which of ca.pem, cert.pem, key.pem are missing and
// how to get them.
func checkCertFiles(files dockerconf.CertFiles, kind, name string) error {
	missing, err := files.Missing()
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", files.Dir, err)
	}
	switch {
	case len(missing) == 3:
		return withHint(fmt.Errorf("no %s certificate named %q: %s does not hold ca.pem, cert.pem and key.pem", kind, name, files.Dir),
			"create it with 'dockgate issue %s %s'", kind, name)
	case len(missing) > 0:
		return withHint(fmt.Errorf("%s %q is incomplete: %s missing in %s", kind, name, strings.Join(missing, ", "), files.Dir),
			"issue it again with 'dockgate issue %s %s'", kind, name)
	}
	return nil
}
