package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/fleet"
	"github.com/dockgate/dockgate/internal/pki"
)

// fleetLogin is what login does once it holds a certificate: ask the
// gateway for the hosts of its fleet this certificate may use and, when
// there are several, write one context per host.
type fleetLogin struct {
	configDir string
	creds     *enroll.Credentials
	prefix    string // --context-prefix
	useHost   string // --use-host: the host whose context becomes current
	use       bool   // make one current at all
	force     bool
}

// listFleet asks the gateway at creds.Host for the hosts this certificate
// may use; nil (and a note) when it cannot say.
func (a *app) listFleet(ctx context.Context, creds *enroll.Credentials) *enroll.HostsAnswer {
	g, err := enroll.NewGateway(creds.Host, creds.CAPEM, creds.CertPEM, creds.KeyPEM)
	if err != nil {
		fmt.Fprintf(a.stderr, "Note: not listing the fleet: %v\n", err)
		return nil
	}
	defer g.Close()
	answer, err := g.Hosts(ctx)
	if err != nil {
		if !errors.Is(err, enroll.ErrNoHostList) {
			fmt.Fprintf(a.stderr, "Note: the gateway did not list its fleet (%v); writing one context\n", err)
		}
		return nil
	}
	return answer
}

// writeFleet writes one context per host of answer and makes the chosen
// one current; it returns the names written.
func (a *app) writeFleet(l fleetLogin, answer *enroll.HostsAnswer) error {
	contexts, current := fleet.PlanContexts(*answer, l.prefix, l.creds.Host)
	if l.useHost != "" {
		current = ""
		for _, c := range contexts {
			if c.FleetHost.Name == l.useHost {
				current = c.Name
			}
		}
		if current == "" {
			return withHint(fmt.Errorf("--use-host %q is not a host this certificate may use", l.useHost),
				"pick one of the hosts listed above, or leave --use-host out")
		}
	}
	fmt.Fprintf(a.stdout, "Logged in as %q at %s; %d host(s) of the fleet let you in:\n", l.creds.Name, l.creds.Host, len(contexts))
	written := 0
	for _, c := range contexts {
		status, err := a.writeFleetContext(l, c)
		if err != nil {
			return err
		}
		if status == "" {
			continue
		}
		if status != "kept" {
			written++
		}
		mark := ""
		if l.use && c.Name == current {
			mark = ", now the current context"
		}
		health := ""
		if !c.FleetHost.Healthy {
			health = " (stale: not seen for a while)"
		}
		fmt.Fprintf(a.stdout, "  docker context %q %s: %s as %s%s%s\n", c.Name, status, strings.TrimPrefix(c.Host, "tcp://"), c.FleetHost.Role, health, mark)
	}
	if l.use && current != "" {
		if err := dockerconf.UseContext(l.configDir, current); err != nil {
			return err
		}
	}
	if current != "" {
		fmt.Fprintf(a.stdout, "Keep it renewed:  dockgate renew --context %s --install, then 'dockgate login --refresh --context %s' updates the other contexts\n", current, current)
	}
	if written == 0 {
		fmt.Fprintln(a.stdout, "No context changed.")
	}
	return nil
}

// writeFleetContext writes c unless a context of that name holds
// something else (another CA, or another client): that one is kept, and
// said so, unless --force. It returns "written", "replaced" or "kept".
func (a *app) writeFleetContext(l fleetLogin, c fleet.Context) (string, error) {
	old, err := dockerconf.ReadContext(l.configDir, c.Name)
	status := "written"
	switch {
	case errors.Is(err, dockerconf.ErrContextNotFound):
	case err != nil && !l.force:
		return "", err
	case l.force || sameClient(old, l.creds):
		status = "replaced"
	default:
		fmt.Fprintf(a.stderr, "  docker context %q exists for something else: kept (pass --force, or --context-prefix P)\n", c.Name)
		return "kept", nil
	}
	err = dockerconf.WriteContext(l.configDir, dockerconf.Context{
		Name:        c.Name,
		Description: fmt.Sprintf("dockgate: %s at %s (%s)", l.creds.Name, c.FleetHost.Name, strings.TrimPrefix(c.Host, "tcp://")),
		Host:        c.Host,
		CA:          l.creds.CAPEM, Cert: l.creds.CertPEM, Key: l.creds.KeyPEM,
	}, true)
	return status, err
}

// sameClient reports whether context c is this client's: the same CA and
// a certificate of the same name.
func sameClient(c dockerconf.Context, creds *enroll.Credentials) bool {
	if !bytes.Equal(bytes.TrimSpace(c.CA), bytes.TrimSpace(creds.CAPEM)) {
		return false
	}
	cert, err := pki.ParseCertPEM(c.Cert)
	return err == nil && cert.Subject.CommonName == creds.Name
}

// runLoginRefresh adds (or updates) the contexts of every host the
// certificate of an existing context may use: hosts that joined the fleet
// since login, and the other contexts after a renewal of this one.
func (a *app) runLoginRefresh(ctx context.Context, f loginFlags) error {
	configDir, err := dockerconf.ConfigDir(a.getenv)
	if err != nil {
		return err
	}
	name := f.context
	if name == "" {
		if name, err = dockerconf.CurrentContext(configDir); err != nil {
			return err
		}
		if name == "" || name == dockerconf.DefaultContextName {
			return withHint(errors.New("no docker context to refresh from"), "pass --context NAME, a context 'dockgate login' wrote")
		}
	}
	c, err := dockerconf.ReadContext(configDir, name)
	if err != nil {
		return withHint(err, "pass --context NAME, a context 'dockgate login' wrote")
	}
	cert, err := pki.ParseCertPEM(c.Cert)
	if err != nil {
		return withHint(fmt.Errorf("context %q holds no client certificate: %w", name, err), "pass --context NAME, a context 'dockgate login' wrote")
	}
	creds := &enroll.Credentials{Name: cert.Subject.CommonName, Host: c.Host, CAPEM: c.CA, CertPEM: c.Cert, KeyPEM: c.Key, Cert: cert}
	g, err := enroll.NewGateway(c.Host, c.CA, c.Cert, c.Key)
	if err != nil {
		return err
	}
	defer g.Close()
	answer, err := g.Hosts(ctx)
	if err != nil {
		return withHint(fmt.Errorf("failed to list the fleet at %s: %w", c.Host, err), "check that the gateway is up and runs a dockgate that lists its hosts")
	}
	return a.writeFleet(fleetLogin{configDir: configDir, creds: creds, prefix: f.contextPrefix, useHost: f.useHost,
		use: f.useHost != "", force: f.force}, answer)
}
