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
}

// Whoami is the answer of WhoamiPath for id, given the role its clients:
// entry grants (empty if none matches). Groups is never null on the wire.
func (id *Identity) Whoami(role string) Whoami {
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	return Whoami{
		CN: id.CN, Groups: groups, Serial: id.Serial, Fingerprint: id.Fingerprint,
		NotAfter: id.NotAfter.UTC(), Role: role,
	}
}
