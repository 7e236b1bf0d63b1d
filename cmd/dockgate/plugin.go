package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/version"
)

// pluginFileMode: a plugin is an executable everyone may run.
const pluginFileMode = 0o755

// isDockerPlugin reports whether the binary runs as docker-gate, the name
// the docker CLI runs plugins by.
func isDockerPlugin(argv0 string) bool {
	return filepath.Base(argv0) == dockerconf.PluginBinary
}

// dockerPluginArgs turns a plugin invocation into dockgate arguments and
// sets the environment docker's global options stand for.
func dockerPluginArgs(args []string, setenv func(key, value string) error) []string {
	rest, env := dockerconf.PluginInvocation(args)
	for k, v := range env {
		setenv(k, v)
	}
	return rest
}

func newPluginMetadataCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:    dockerconf.PluginMetadataCommand,
		Short:  "Print the docker CLI plugin metadata",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return json.NewEncoder(a.stdout).Encode(dockerconf.NewPluginMetadata(version.Get().Version))
		},
	}
}

func newInstallPluginCmd(a *app) *cobra.Command {
	var symlink, force bool
	cmd := &cobra.Command{
		Use:   "install-plugin",
		Short: "Install dockgate as the docker CLI plugin 'docker gate'",
		Long: `install-plugin copies this binary to $DOCKER_CONFIG/cli-plugins/docker-gate
(~/.docker/cli-plugins by default), so that 'docker gate login TOKEN',
'docker gate status', 'docker gate renew' and 'docker gate doctor' work.
With --symlink it links instead, so upgrading dockgate upgrades the plugin.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return a.runInstallPlugin(symlink, force)
		},
	}
	cmd.Flags().BoolVar(&symlink, "symlink", false, "link to this binary instead of copying it")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing docker-gate that differs")
	return cmd
}

func (a *app) runInstallPlugin(symlink, force bool) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to find this binary: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("failed to find this binary: %w", err)
	}
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	dir := dockerconf.PluginDir(configDir)
	target := filepath.Join(dir, dockerconf.PluginBinary)
	if err := refuseForeignPlugin(target, self, force); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", dir, err)
	}
	if symlink {
		err = replaceWithSymlink(self, target)
	} else {
		err = copyExecutable(self, target)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Installed %s\nTry:  docker gate status\n", target)
	return nil
}

// refuseForeignPlugin keeps an existing docker-gate unless it is this
// binary (or a link to it), or --force says to replace it.
func refuseForeignPlugin(target, self string, force bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) || force {
		return nil
	}
	if err != nil {
		return err
	}
	if resolved, err := filepath.EvalSymlinks(target); err == nil && resolved == self {
		return nil
	}
	if fi.Mode().IsRegular() && sameContent(target, self) {
		return nil
	}
	return withHint(fmt.Errorf("%s already exists and is not this dockgate", target), "replace it with --force")
}

func sameContent(a, b string) bool {
	x, err := os.ReadFile(a)
	if err != nil {
		return false
	}
	y, err := os.ReadFile(b)
	return err == nil && string(x) == string(y)
}

func copyExecutable(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", src, err)
	}
	if err := atomicfile.Write(dst, data, pluginFileMode); err != nil {
		return fmt.Errorf("failed to install %s: %w", dst, err)
	}
	return nil
}

// replaceWithSymlink makes a link beside dst and renames it over dst, so
// dst is never missing.
func replaceWithSymlink(src, dst string) error {
	tmp := dst + ".tmp-link"
	os.Remove(tmp)
	if err := os.Symlink(src, tmp); err != nil {
		return fmt.Errorf("failed to link %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to link %s: %w", dst, err)
	}
	return nil
}
