package gateway

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

// limits.max_json_body bounds what the gateway reads of a JSON body:
// beyond it the client gets 413 and the daemon nothing.
func TestMaxJSONBodyIsConfigurable(t *testing.T) {
	const limit = config.MinJSONBody
	tg := startTestGateway(t, func(c *config.Config) { c.Limits.MaxJSONBody = limit })
	var forwarded atomic.Int32
	tg.fake.mux.HandleFunc("POST /v1.41/containers/create", func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"Id":"new","Warnings":[]}`)
	})
	client := tg.httpClient(tg.pki.client("alice", "admins"))
	create := func(envBytes int) (int, string) {
		body := `{"Image":"x","Env":["PAD=` + strings.Repeat("a", envBytes) + `"]}`
		resp, err := client.Post(tg.url("/v1.41/containers/create"), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(answer)
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
