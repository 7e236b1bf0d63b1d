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
}

// stateDir resolves --state-dir, $DOCKGATE_HOME, then the XDG default.
func (a *app) stateDir() (string, error) {
	return store.ResolveDir(a.stateDirFlag, a.getenv)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := newRootCmd(a)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	if isFlagError(cmd, err) {
		err = &usageError{err: err}
	}
	printError(stderr, err)
	return exitCode(err)
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "dockgate",
		Short: "Secure remote access to a Docker host",
		Long: `dockgate gives a Docker host secure remote access: a certificate authority,
a mutual-TLS gateway in front of the Docker socket with per-client policy,
and onboarding that never copies a private key.`,
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
	)
	return root
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
