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
		Long: `healthcheck GETs the gateway's /readyz on its admin listener and exits 0 on
200 OK, else prints one line saying why and exits 1. It is the image's
HEALTHCHECK: a FROM scratch image has no shell or curl.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return doctor.CheckHealth(ctx, nil, url)
		},
	}
	cmd.Flags().StringVar(&url, "url", doctor.DefaultHealthURL, "readiness URL to probe")
	cmd.Flags().DurationVar(&timeout, "timeout", defaultHealthTimeout, "how long to wait for the answer")
	return cmd
}
