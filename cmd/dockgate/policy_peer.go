package main

import (
	"github.com/spf13/pflag"

	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

// peerFlags name a local socket user for policy explain.
type peerFlags struct {
	uid        int64 // -1: not set
	user       string
	unixGroups []string
}

func (p *peerFlags) register(fl *pflag.FlagSet) {
	fl.Int64Var(&p.uid, "uid", -1, "the uid of a local socket user (listen_unix), instead of --cn")
	fl.StringVar(&p.user, "user", "", "with --uid: the user's login name")
	fl.StringArrayVar(&p.unixGroups, "unix-group", nil, "with --uid: a group of the user; repeat for several")
}

// identity is the client explain decides for: a certificate (--cn) or a
// local socket user (--uid), never both.
func (f *explainFlags) identity() (identity.Identity, error) {
	p := f.peer
	switch {
	case f.cn != "" && p.uid >= 0:
		return identity.Identity{}, usageErrorf("--cn and --uid exclude each other: explain decides for a certificate or for a local socket user")
	case p.uid >= 0 && p.uid <= 1<<32-1:
		if len(f.groups) > 0 {
			return identity.Identity{}, usageErrorf("--group is a certificate's group; for a local socket user use --unix-group")
		}
		return *identity.FromPeer(identity.Peer{UID: uint32(p.uid), User: p.user, Groups: p.unixGroups}), nil
	case p.uid >= 0:
		return identity.Identity{}, usageErrorf("--uid %d is out of range", p.uid)
	case f.cn == "":
		return identity.Identity{}, usageErrorf("--cn is required, or --uid: explain decides for a client certificate (--cn) or a local socket user (--uid)")
	case p.user != "" || len(p.unixGroups) > 0:
		return identity.Identity{}, usageErrorf("--user and --unix-group describe a local socket user: use them with --uid")
	}
	return identity.Identity{CN: f.cn, Groups: f.groups}, nil
}

// matchRule is the index of the clients: entry the policy picks for id.
func matchRule(cfg *config.Config, id identity.Identity) (int, bool) {
	if identity.IsPeerCN(id.CN) && id.Peer == nil {
		return -1, false // the policy matches no certificate named like a peer
	}
	for i, r := range cfg.Clients {
		if !r.AppliesOn(cfg.Host) {
			continue // the policy skips entries for other hosts
		}
		if p := id.Peer; p != nil && r.MatchesPeer(p.UID, p.User, p.Groups) {
			return i, true
		}
		if id.Peer == nil && r.Matches(id.CN, id.Groups) {
			return i, true
		}
	}
	return -1, false
}
