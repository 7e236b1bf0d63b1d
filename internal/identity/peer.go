package identity

import (
	"fmt"
	"strconv"
	"strings"
)

// PeerCNPrefix starts the CN of every local socket peer: "uid:1001".
//
// The uid, not the user name, is the name: the kernel vouches for it, it
// exists for a process whose uid has no user database entry (a container's
// user), and renaming a user keeps the objects it owns. Certificates can
// never collide with it: the CA refuses to issue a name with this prefix
// (pki), and the policy matches no certificate that carries one, so owner
// isolation labels of local users and certified clients stay apart.
const PeerCNPrefix = "uid:"

// Peer is a process on the other end of the local socket, as the kernel
// reported it when it connected (SO_PEERCRED), with its user and groups
// from the user database.
type Peer struct {
	UID, GID uint32
	PID      int32
	User     string   // login name; empty when the uid has none
	Groups   []string // names of its primary and supplementary groups
}

// FromPeer returns the identity of a local socket peer. Revocation does
// not apply to it: Serial stays empty.
func FromPeer(p Peer) *Identity {
	return &Identity{CN: PeerCNPrefix + strconv.FormatUint(uint64(p.UID), 10), Peer: &p}
}

// IsPeerCN reports whether cn is one FromPeer makes, which no
// certificate may carry.
func IsPeerCN(cn string) bool { return strings.HasPrefix(cn, PeerCNPrefix) }

// String names the peer as messages do: "uid 1001 (alice)".
func (p *Peer) String() string {
	if p.User == "" {
		return fmt.Sprintf("uid %d", p.UID)
	}
	return fmt.Sprintf("uid %d (%s)", p.UID, p.User)
}
