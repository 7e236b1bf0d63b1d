package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dockgate/dockgate/internal/atomicfile"
	"github.com/dockgate/dockgate/internal/dockerconf"
)

// serviceFileMode: unit files and agents are read by the service manager.
const serviceFileMode = 0o644

// installRenewService installs `renew --context NAME --watch` as a
// per-user service and starts it.
func (a *app) installRenewService(ctx context.Context, name string) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	if _, err := dockerconf.ReadContext(configDir, name); err != nil {
		return withHint(err, "list contexts with 'docker context ls'")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("failed to find this binary: %w", err)
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return fmt.Errorf("failed to find this binary: %w", err)
	}
	svc := dockerconf.RenewService{Binary: self, Context: name, DockerConfig: configDir}
	switch runtime.GOOS {
	case "darwin":
		return a.installLaunchdAgent(ctx, svc)
	case "windows":
		fmt.Fprintf(a.stdout, "Run this once, in a command prompt, to renew %q at each logon:\n  %s\n", name, svc.WindowsTask())
		return nil
	}
	return a.installSystemdUnit(ctx, svc)
}

func (a *app) installSystemdUnit(ctx context.Context, svc dockerconf.RenewService) error {
	configHome := a.getenv("XDG_CONFIG_HOME")
	if configHome == "" || !filepath.IsAbs(configHome) {
		home, err := os.UserHomeDir()
		if err != nil {
			return fmt.Errorf("failed to find the home directory: %w", err)
		}
		configHome = filepath.Join(home, ".config")
	}
	path := svc.SystemdUnitPath(configHome)
	if err := writeServiceFile(path, svc.SystemdUnit()); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Wrote %s\n", path)
	unit := svc.Name() + ".service"
	for _, args := range [][]string{{"--user", "daemon-reload"}, {"--user", "enable", "--now", unit}} {
		if err := runTool(ctx, "systemctl", args...); err != nil {
			return withHint(fmt.Errorf("failed to enable the unit: %w", err),
				"enable it yourself: systemctl --user daemon-reload && systemctl --user enable --now %s "+
					"(for a user without a login session, first: loginctl enable-linger $USER)", unit)
		}
	}
	fmt.Fprintf(a.stdout, "Enabled and started %s: it renews docker context %q at two thirds of each certificate's lifetime.\n"+
		"Check it with: systemctl --user status %s; journalctl --user -u %s\n", unit, svc.Context, unit, unit)
	return nil
}

func (a *app) installLaunchdAgent(ctx context.Context, svc dockerconf.RenewService) error {
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("failed to find the home directory: %w", err)
	}
	path := svc.LaunchdPlistPath(home)
	if err := writeServiceFile(path, svc.LaunchdPlist()); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "Wrote %s\n", path)
	if err := runTool(ctx, "launchctl", "load", "-w", path); err != nil {
		return withHint(fmt.Errorf("failed to load the agent: %w", err), "load it yourself: launchctl load -w %s", path)
	}
	fmt.Fprintf(a.stdout, "Loaded %s: it renews docker context %q at two thirds of each certificate's lifetime.\n", path, svc.Context)
	return nil
}

func writeServiceFile(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("failed to create %s: %w", filepath.Dir(path), err)
	}
	if err := atomicfile.Write(path, []byte(content), serviceFileMode); err != nil {
		return fmt.Errorf("failed to write %s: %w", path, err)
	}
	return nil
}

// runTool runs a service manager's command, with its output in the error.
func runTool(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		if msg := strings.TrimSpace(string(out)); msg != "" {
			return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
		}
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}
