package policy

import (
	"github.com/dockgate/dockgate/internal/config"
	"github.com/dockgate/dockgate/internal/identity"
)

// matches reports whether a clients: entry matches id. A local socket
// peer matches only uid, user and unix_group entries, a certificate only
// cn and group entries; a certificate whose CN looks like a peer's
// (identity.PeerCNPrefix) matches nothing, so that it can never act as a
// local user's owner. Root is a uid like any other: no entry, no access.
func matches(r config.ClientRule, id identity.Identity) bool {
	if p := id.Peer; p != nil {
		return r.MatchesPeer(p.UID, p.User, p.Groups)
	}
	if identity.IsPeerCN(id.CN) {
		return false
	}
	return r.Matches(id.CN, id.Groups)
}
