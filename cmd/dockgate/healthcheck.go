package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/dockgate/dockgate/internal/doctor"
)

// defaultHealthTimeout stays under Docker's default HEALTHCHECK --timeout
// (30 s), so the probe reports its own reason rather than being killed.
const defaultHealthTimeout = 5 * time.Second

func newHealthcheckCmd(a *app) *cobra.Command {
	var (
		url     string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 when the gateway's readiness endpoint answers 200 OK",
		Example: `  dockgate healthcheck
  dockgate healthcheck --url http://127.0.0.1:2378/readyz`,
		Long: `healthcheck GETs the gateway's /readyz on its admin listener and exits 0 on
200 OK, else prints one line saying why and exits 1. It is the image's
HEALTHCHECK: a FROM scratch image has no shell or curl.

Without --url it probes the admin listener that serve would use: admin_listen
from the config file (--config or DOCKGATE_CONFIG) or DOCKGATE_ADMIN_LISTEN,
by default 127.0.0.1:2378.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			target, err := a.healthURL(url)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return doctor.CheckHealth(ctx, nil, target)
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "readiness URL to probe (default: /readyz on serve's admin listener)")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHealthTimeout, "how long to wait for the answer")
	return cmd
}

// healthURL is --url, else /readyz on the admin listener of serve's config.
func (a *app) healthURL(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	cfg, err := a.loadConfig(&serveFlags{})
	if err != nil {
		return "", err
	}
	target, err := doctor.HealthURL(cfg.AdminListen)
	if err != nil {
		return "", withHint(err, "set admin_listen (or DOCKGATE_ADMIN_LISTEN), or pass --url")
	}
	return target, nil
}
