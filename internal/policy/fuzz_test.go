package policy

import (
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/dockgate/dockgate/internal/dockerapi"
	"github.com/dockgate/dockgate/internal/identity"
)

// fuzzRoles are the roles FuzzDecide decides for; none but loose and
// admin may ever run a privileged container or exec.
var fuzzRoles = []string{"ci", "tenant", "deployer", "watcher", "auditee", "loose", "admin", "read-only", ""}

func FuzzDecide(f *testing.F) {
	f.Add("POST", "/v1.47/containers/create", "", []byte(`{"Image":"x","HostConfig":{"Privileged":true}}`), uint8(0))
	f.Add("POST", "/containers/create", "name=x", []byte(`{"Image":"x","Privileged":true,"HostConfig":{"Binds":["/:/h"]}}`), uint8(1))
	f.Add("POST", "/containers/create", "", []byte(`{"Image":"x","HostConfig":{"CapAdd":["sys_admın"],"SecurityOpt":["label:disable"]}}`), uint8(2))
	f.Add("POST", "/containers/web/exec", "", []byte(`{"Cmd":["sh"],"Privileged":true}`), uint8(0))
	f.Add("GET", "/containers/json", `filters={"label":["a"]}`, []byte(nil), uint8(1))
	f.Add("POST", "/build", "networkmode=host&remote=git://x", []byte(nil), uint8(0))
	f.Add("POST", "/services/create", "", []byte(`{"TaskTemplate":{"ContainerSpec":{"Mounts":[{"Type":"bind","Source":"/"}]}}}`), uint8(5))
	f.Add("DELETE", "/v1.41/volumes/data", "", []byte(nil), uint8(4))
	f.Add("POST", "/containers/create", "", []byte(`{"Image":"x","Binds":["/srv/ci/a:/a"],"HostConfig":{"Mounts":[{"Type":"bind","Source":"/srv/ci//b","Target":"/b"}]}}`), uint8(0))
	p := mustPolicy(f, testConfig)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, roleIndex uint8) {
		role := fuzzRoles[int(roleIndex)%len(fuzzRoles)]
		req, err := newRequest(method, path, query, body, 0)
		if err != nil {
			return
		}
		d := p.decide(identity.Identity{CN: "fuzz"}, role, req)
		_ = d.message()
		if d.Effect == Deny && d.Status == 0 {
			t.Fatalf("denial without a status: %+v", d)
		}
		if d.Effect == Allow && privileged(req) && role != "loose" && role != "admin" {
			t.Fatalf("role %s allowed a privileged %s: %s %s %s", role, req.Route.Op, method, path, body)
		}
		if d.Effect == Allow && len(d.hostPaths()) > 0 {
			checkHostPathsAgree(t, d)
		}
		if d.forward() {
			if _, _, err := d.rewrite(&req); err != nil && d.Owner.Label {
				t.Fatalf("Rewrite of an allowed create failed: %v", err)
			}
		}
	})
}

// checkHostPathsAgree: resolved as written, host paths a decision allowed
// stay allowed; resolved anywhere else, they are denied.
func checkHostPathsAgree(t *testing.T, d decision) {
	same := d
	same.checkHostPaths(func(p string) (string, error) { return p, nil })
	if same.Effect != Allow {
		t.Fatalf("host paths allowed as written, denied as resolved to themselves: %s", same.Reason)
	}
	moved := d
	moved.checkHostPaths(func(p string) (string, error) { return "/elsewhere" + p, nil })
	if moved.forward() && !moved.Audit {
		t.Fatalf("host paths %+v resolved outside /srv/ci were allowed", d.hostPaths())
	}
}

// privileged reports whether a decoded request runs something privileged.
func privileged(req request) bool {
	switch b := req.Body.(type) {
	case *dockerapi.ContainerCreate:
		for _, hc := range b.HostConfigs() {
			if hc.Privileged {
				return true
			}
		}
	case *container.ExecCreateRequest:
		return b.Privileged
	}
	return false
}
