package enroll

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/dockgate/dockgate/internal/identity"
)

// HostsPath is served on the gateway's mutual-TLS port: the hosts of the
// fleet the calling certificate may use, for login to write one docker
// context per host.
const HostsPath = "/dockgate/v1/hosts"

// FleetHost is one host a client may use.
type FleetHost struct {
	Name string `json:"name"`
	// Addresses are HOST:PORT of its Docker API, the ones a client on
	// another machine can use first.
	Addresses []string `json:"addresses"`
	// Role is the client's role there.
	Role    string `json:"role"`
	Healthy bool   `json:"healthy"`
}

// HostsAnswer answers GET HostsPath.
type HostsAnswer struct {
	// Self is the name of the host that answered.
	Self  string      `json:"self"`
	Hosts []FleetHost `json:"hosts"`
}

// HostsHandler serves GET HostsPath behind the gateway, which has verified
// the caller's certificate: list says which hosts that identity may use.
func HostsHandler(list func(ctx context.Context, id identity.Identity) (HostsAnswer, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			writeRefusal(w, http.StatusMethodNotAllowed, codeNotAllowed, r.Method+" is not allowed on "+HostsPath)
			return
		}
		id, ok := identity.FromContext(r.Context())
		if !ok {
			writeRefusal(w, http.StatusUnauthorized, codeUnauthorized, "the host list needs a client certificate")
			return
		}
		answer, err := list(r.Context(), *id)
		if err != nil {
			writeRefusal(w, http.StatusInternalServerError, codeInternal, "failed to read the host registry; the gateway's log says why")
			return
		}
		if answer.Hosts == nil {
			answer.Hosts = []FleetHost{}
		}
		writeJSON(w, http.StatusOK, answer)
	})
}

// Hosts asks the gateway which hosts of its fleet this client may use. A
// gateway without the endpoint (an older dockgate) answers ErrNoHostList.
func (g *Gateway) Hosts(ctx context.Context) (*HostsAnswer, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.base+HostsPath, nil)
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, g.explain(unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, ErrNoHostList
	}
	if resp.StatusCode != http.StatusOK {
		return nil, refusalError(resp.StatusCode, resp.Header, data)
	}
	var a HostsAnswer
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("failed to decode the host list: %w", err)
	}
	return &a, nil
}
