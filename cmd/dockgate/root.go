package main

import (
	"errors"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/store"
)

// app is what every command shares: streams, environment, global flags.
// Commands get it as a parameter, so tests can run many in one process.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// askPassword reads a secret without echo; nil means the terminal on
	// stdin, if there is one (see passphrase.go).
	askPassword func(prompt string) ([]byte, error)

	stateDirFlag string
	// storeFlag is --store: the inventory's PostgreSQL URL (store.go).
	storeFlag string
	// plugin: run as the docker CLI plugin 'docker gate'.
	plugin bool
}

// stateDir resolves --state-dir, $DOCKGATE_HOME, then the XDG default.
func (a *app) stateDir() (string, error) {
	return store.ResolveDir(a.stateDirFlag, a.getenv)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return execute(&app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

// runPlugin is run as 'docker gate': the help shows the client commands.
func runPlugin(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return execute(&app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, plugin: true}, args)
}

func execute(a *app, args []string) int {
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if isFlagError(cmd, err) {
		err = &usageError{err: err}
	}
	printError(a.stderr, err)
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "dockgate",
		Short: "Secure remote access to a Docker host",
		Long: `dockgate gives a Docker host secure remote access: a certificate authority,
a mutual-TLS gateway in front of the Docker socket with per-client policy,
and onboarding that never copies a private key.

Start with 'dockgate up' on the Docker host: it creates the CA, a server
certificate, an admin certificate and the docker context "dockgate", then
runs the gateway. Then give others access with 'dockgate token create NAME'.`,
		Example: `  dockgate up                          # on the Docker host, as root
  docker --context dockgate ps         # from the same host, in another shell
  dockgate token create alice --group admins
  dockgate login dgt1.AbC...           # on alice's machine`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{err: withHint(err, "see '%s --help'", c.CommandPath())}
	})
	root.PersistentFlags().StringVar(&a.stateDirFlag, "state-dir", "",
		"where dockgate keeps its CA, certificates and inventory (env DOCKGATE_HOME; default $XDG_DATA_HOME/dockgate)")
	root.PersistentFlags().StringVar(&a.storeFlag, "store", "",
		"keep the inventory in this PostgreSQL database, shared by several gateways (postgres://USER@HOST/DB; env DOCKGATE_STORE; default SQLite in the state directory)")

	root.AddCommand(
		newVersionCmd(a),
		newInitCmd(a), newIssueCmd(a), newCertsCmd(a), newRevokeCmd(a), newCRLCmd(a), withContextRenewal(a, newRenewCmd(a)),
		newServeCmd(a),
		newUpCmd(a),
		newPolicyCmd(a),
		newEnvCmd(a),
		newContextCmd(a),
		newDockerdConfigCmd(a),
		newDoctorCmd(a),
		newHealthcheckCmd(a),
		newTokenCmd(a), newLoginCmd(a), newStatusCmd(a), newInstallPluginCmd(a), newPluginMetadataCmd(a),
		newManCmd(a),
		newStoreCmd(a), newHostsCmd(a),
		newConfigCmd(a),
		newAuditCmd(a),
	)
	registerCompletions(a, root)
	if a.plugin {
		asDockerPlugin(root)
	}
	return root
}

// pluginCommands are what a client machine needs from 'docker gate'; the
// CA and gateway commands still run, but stay out of its help.
var pluginCommands = map[string]bool{"login": true, "status": true, "renew": true, "doctor": true, "version": true}

// asDockerPlugin names the root 'docker gate' and shows only the client
// commands in its help.
func asDockerPlugin(root *cobra.Command) {
	root.Use = "gate"
	root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "docker gate"}
	root.CompletionOptions.HiddenDefaultCmd = true
	root.Short = "Log in to and check a dockgate gateway"
	root.Long = `docker gate is dockgate as a docker CLI plugin, for the machines that use a
gateway: log in with a token from its admin, see who you are there, keep the
certificate renewed, and find out what is wrong when it does not work.`
	root.Example = `  docker gate login dgt1.AbC...
  docker --context alice gate status
  docker gate renew --context alice --watch
  docker gate doctor`
	for _, c := range root.Commands() {
		if !pluginCommands[c.Name()] {
			c.Hidden = true
		}
	}
	root.PersistentFlags().Lookup("state-dir").Hidden = true
	root.PersistentFlags().Lookup("store").Hidden = true
}

// isFlagError reports whether cobra rejected the arguments themselves.
func isFlagError(cmd *cobra.Command, err error) bool {
	var u *usageError
	if errors.As(err, &u) {
		return false
	}
	// cobra reports unknown commands and arg-count mistakes as plain errors.
	return cmd == nil || strings.HasPrefix(err.Error(), "unknown command") ||
		cmd.ValidateArgs(cmd.Flags().Args()) != nil
}
