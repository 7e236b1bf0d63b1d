package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

// limits.max_json_body bounds what the gateway reads of a JSON body:
// beyond it the client gets 413 and the daemon nothing.
func TestMaxJSONBodyIsConfigurable(t *testing.T) {
	const limit = config.MinJSONBody
	tg := startTestGateway(t, func(c *config.Config) { c.Limits.MaxJSONBody = limit })
	forwarded := tg.fakeCreates()
	cert := tg.pki.client("alice", "admins")
	create := func(envBytes int) (int, string) {
		return tg.postJSON(t, cert, "/v1.41/containers/create", `{"Image":"x","Env":["PAD=`+strings.Repeat("a", envBytes)+`"]}`)
	}
	if status, answer := create(limit - 100); status != http.StatusCreated {
		t.Fatalf("a body under the limit: %d %s", status, answer)
	}
	status, answer := create(limit)
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "limit 65536 bytes") {
		t.Errorf("a body over the limit: %d %s, want 413 naming the limit", status, answer)
	}
	if n := forwarded.Load(); n != 1 {
		t.Errorf("the daemon got %d creates, want 1", n)
	}
}
