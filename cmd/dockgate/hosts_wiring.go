package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/enroll"
	"github.com/dockgate/dockgate/internal/fleet"
	"github.com/dockgate/dockgate/internal/gateway"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
	"github.com/dockgate/dockgate/internal/version"
)

// heartbeat registers this host in the store's host registry and moves
// its last_seen every store.HeartbeatInterval until ctx ends. The
// registry is informational: a failure is logged, never fatal.
func (a *app) heartbeat(ctx context.Context, st *store.Store, cfg *config.Config, src gateway.FileSource, api, enrollAddr net.Addr, log *slog.Logger) {
	log = log.With("component", "hosts", "host", cfg.Host.Name)
	h := store.Host{Name: cfg.Host.Name, Labels: cfg.Host.Labels, Version: version.Get().Version}
	if server, err := readCertFile(src.ServerCert); err == nil {
		h.Addresses = fleet.Addresses(server, api, lookupIPs)
		h.EnrollAddresses = fleet.Addresses(server, enrollAddr, lookupIPs)
	} else {
		log.Warn("the host registry will hold no addresses for this host", "err", err)
	}
	if ca, err := authority.LoadCert(st); err == nil {
		h.CAFingerprint = pki.Fingerprint(ca)
	}
	if hosts, err := st.Hosts(ctx); err == nil {
		if other, ok := fleet.Conflict(hosts, h, time.Now()); ok {
			log.Warn("another gateway is registered under this host's name and was seen recently; the two overwrite each other's row",
				"other_addresses", other.Addresses, "last_seen", other.LastSeen,
				"fix", "give each host its own name: --host-name NAME or host.name")
		}
	}
	ticker := time.NewTicker(store.HeartbeatInterval)
	defer ticker.Stop()
	fleet.Heartbeat(ctx, st, h, ticker.C, time.Now,
		func(err error) {
			if err != nil {
				log.Warn("failed to register this host; retrying at each heartbeat", "err", err)
				return
			}
			log.Info("host registered", "labels", cfg.Host.LabelString(), "addresses", h.Addresses, "store", st.Where())
		},
		func(err error) {
			if err != nil {
				log.Warn("host heartbeat failed; retrying", "err", err)
				return
			}
			log.Info("host heartbeat recorded again")
		})
}

// localAPI is the gateway's own API besides whoami: the host list, and
// renewal when the CA can sign (renew nil: 404 there).
func localAPI(renew, hosts http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(enroll.HostsPath, hosts)
	if renew != nil {
		mux.Handle("/", renew)
		return mux
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "dockgate: no such endpoint " + r.URL.Path})
	})
	return mux
}

// hostList answers a client asking which hosts it may use, judged with
// the client rules of the config as it reads now (the file, env, flags),
// as this gateway judges its requests.
func (a *app) hostList(st *store.Store, self string, f *serveFlags) http.Handler {
	return enroll.HostsHandler(func(ctx context.Context, id identity.Identity) (enroll.HostsAnswer, error) {
		cfg, err := a.loadConfig(f)
		if err != nil {
			return enroll.HostsAnswer{}, err
		}
		hosts, err := st.Hosts(ctx)
		if err != nil {
			return enroll.HostsAnswer{}, err
		}
		return fleet.List(self, cfg.Clients, hosts, id, time.Now()), nil
	})
}
