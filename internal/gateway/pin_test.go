package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/config"
)

// The containers a create body names are forwarded by the full ID the
// ownership check found, so that dockerd uses the container that was
// checked even if the name is taken over in between.
func TestCreateBodyReferencesArePinned(t *testing.T) {
	const webID = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	tg := startTestGateway(t, func(c *config.Config) {
		c.Roles = map[string]config.RoleSpec{"tenant": {
			Allow:          []string{"container.*"},
			OwnerIsolation: true,
			Containers:     config.ContainerKnob{VolumesFrom: true},
		}}
		c.Clients = []config.ClientRule{{CN: "t1", Role: "tenant"}}
	})
	tg.fake.mux.HandleFunc("GET /containers/{ref}/json", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("ref") {
		case "web", "0a1b", webID:
			fmt.Fprintf(w, `{"Id":%q,"Config":{"Labels":{"dockgate.owner":"t1"}}}`, webID)
		default:
			http.Error(w, `{"message":"No such container"}`, http.StatusNotFound)
		}
	})
	forwarded := make(chan []byte, 1)
	tg.fake.mux.HandleFunc("POST /v1.41/containers/create", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		forwarded <- body
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"Id":"new","Warnings":[]}`)
	})

	body := `{"Image":"x","HostConfig":{"NetworkMode":"container:web","PidMode":"container:0a1b",` +
		`"VolumesFrom":["web:ro"],"Links":["/web:/app/db"]}}`
	resp, err := tg.httpClient(tg.pki.client("t1")).Post(tg.url("/v1.41/containers/create"), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		answer, _ := io.ReadAll(resp.Body)
		t.Fatalf("create: %d %s", resp.StatusCode, answer)
	}
	var got struct {
		Labels     map[string]string
		HostConfig struct {
			NetworkMode, PidMode string
			VolumesFrom, Links   []string
		}
	}
	if err := json.Unmarshal(<-forwarded, &got); err != nil {
		t.Fatal(err)
	}
	hc := got.HostConfig
	if hc.NetworkMode != "container:"+webID || hc.PidMode != "container:"+webID ||
		len(hc.VolumesFrom) != 1 || hc.VolumesFrom[0] != webID+":ro" || len(hc.Links) != 1 || hc.Links[0] != webID+":db" {
		t.Errorf("forwarded HostConfig = %+v, want every reference to web as %s", hc, webID)
	}
	if got.Labels["dockgate.owner"] != "t1" {
		t.Errorf("forwarded labels = %v, want the owner label", got.Labels)
	}
}
