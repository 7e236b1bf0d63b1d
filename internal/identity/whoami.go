package identity

import "time"

// WhoamiPath is answered by the gateway itself, never forwarded: it tells a
// client how the gateway sees it (doctor and `docker gate status` use it).
// Any verified client may ask, matched by a clients: entry or not, so that
// an unmatched client can find out why it is refused.
const WhoamiPath = "/dockgate/v1/whoami"

// Whoami is the JSON answer of WhoamiPath.
type Whoami struct {
	CN          string    `json:"cn"`
	Groups      []string  `json:"groups"`
	Serial      string    `json:"serial"`
	Fingerprint string    `json:"fingerprint_sha256"`
	NotAfter    time.Time `json:"not_after"`
	Role        string    `json:"role,omitempty"` // empty: no clients: entry matches

	// A local socket peer's uid, user name and groups (Peer); absent for
	// a certificate.
	UID        *uint32  `json:"uid,omitempty"`
	User       string   `json:"user,omitempty"`
	UnixGroups []string `json:"unix_groups,omitempty"`
}

// Whoami is the answer of WhoamiPath for id, given the role its clients:
// entry grants (empty if none matches). Groups is never null on the wire.
func (id *Identity) Whoami(role string) Whoami {
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	w := Whoami{
		CN: id.CN, Groups: groups, Serial: id.Serial, Fingerprint: id.Fingerprint,
		NotAfter: id.NotAfter.UTC(), Role: role,
	}
	if p := id.Peer; p != nil {
		uid := p.UID
		w.UID, w.User, w.UnixGroups = &uid, p.User, p.Groups
	}
	return w
}

// RefusedHeader is set by the gateway on the 403 it answers to every
// request of a certificate the inventory refuses for good; its value is
// why: "revoked" or "superseded" (replaced by a renewal). Clients such as
// doctor read it instead of parsing the message meant for people.
const RefusedHeader = "Dockgate-Certificate-Refused"
