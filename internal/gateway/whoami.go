package gateway

import (
	"encoding/json"
	"net/http"
	"time"
)

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

func (g *Gateway) serveWhoami(w http.ResponseWriter, id *Identity, role string) {
	groups := id.Groups
	if groups == nil {
		groups = []string{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Whoami{
		CN: id.CN, Groups: groups, Serial: id.Serial, Fingerprint: id.Fingerprint,
		NotAfter: id.NotAfter.UTC(), Role: role,
	})
}
