package policy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"

	"github.com/dockgate/dockgate/internal/identity"
)

// reachConfig adds to evaluateConfig a role that may use VolumesFrom and
// other containers' namespaces, and client rules for the looser roles.
var reachConfig = strings.Replace(evaluateConfig, "roles:\n", `roles:
  mid:
    allow: [container.*, exec.*, volume.*]
    containers:
      bind_mounts: ["/srv/ci"]
      volumes_from: true
      container_namespaces: true
`, 1) + `  - group: mids
    role: mid
  - group: loosers
    role: loose
  - group: watchers
    role: watcher
`

var (
	mid7    = identity.Identity{CN: "mid-7", Groups: []string{"mids"}}
	loose7  = identity.Identity{CN: "loose-7", Groups: []string{"loosers"}}
	watch7  = identity.Identity{CN: "w-7", Groups: []string{"watchers"}}
	admin7  = identity.Identity{CN: "root-7", Groups: []string{"admins"}}
	selfOn  = map[string]string{SelfLabel: "true"}
	bindOpt = func(dev string) map[string]string {
		return map[string]string{"type": "none", "o": "bind", "device": dev}
	}
)

// reachObjects are the objects the reach tests find on the fake daemon.
func reachObjects() map[string]Object {
	objs := map[string]Object{
		"container/gw":        {ID: "g1", Gateway: true},
		"container/labelled":  {ID: "l1", Labels: selfOn},
		"container/sock":      {ID: "s1", HostConfig: &container.HostConfig{Binds: []string{"/run:/host-run:ro"}}},
		"container/sockm":     {ID: "s2", HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/s"}}}},
		"container/priv":      {ID: "p1", HostConfig: &container.HostConfig{Privileged: true}},
		"container/hostpid":   {ID: "p2", HostConfig: &container.HostConfig{PidMode: "host"}},
		"container/hostnet":   {ID: "p3", HostConfig: &container.HostConfig{NetworkMode: "host"}},
		"container/capped":    {ID: "p4", HostConfig: &container.HostConfig{CapAdd: []string{"SYS_ADMIN"}}},
		"container/nbs":       {ID: "p5", HostConfig: &container.HostConfig{CapAdd: []string{"NET_BIND_SERVICE"}}},
		"container/etcbind":   {ID: "p6", HostConfig: &container.HostConfig{Binds: []string{"/etc:/x"}}},
		"container/cibind":    {ID: "p7", HostConfig: &container.HostConfig{Binds: []string{"/srv/ci/cache:/x"}}},
		"container/unmasked":  {ID: "p8", HostConfig: &container.HostConfig{MaskedPaths: []string{}}},
		"container/devs":      {ID: "p9", HostConfig: &container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/sda"}}}}},
		"container/etcvolctr": {ID: "pa", HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "x", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: bindOpt("/etc")}}}}}},
		// What dockerd fills in by itself does not count.
		"container/plain": {ID: "c0ffee", HostConfig: &container.HostConfig{NetworkMode: "none", CgroupnsMode: "host", IpcMode: "private",
			Runtime: "runc", MaskedPaths: []string{"/proc/kcore"}, ReadonlyPaths: []string{"/proc/sys"}}},
		"container/volctr":   {ID: "v1", HostConfig: &container.HostConfig{Binds: []string{"plainvol:/p", "etcvol:/x:ro"}}},
		"container/statectr": {ID: "v2", HostConfig: &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "state", Target: "/s"}}}},
		"container/civolctr": {ID: "v3", HostConfig: &container.HostConfig{Binds: []string{"civol:/x", "gone:/y"}}},
		"container/tpriv":    {ID: "t9", Labels: map[string]string{OwnerLabel: "t1"}, HostConfig: &container.HostConfig{Privileged: true}},
		"exec/e-priv":        {ID: "e1", ContainerID: "plain", Privileged: true},
		"exec/e-plain":       {ID: "e2", ContainerID: "plain"},
		"exec/e-gw":          {ID: "e3", ContainerID: "gw"},
		"exec/e-in-priv":     {ID: "e4", ContainerID: "priv"},
		"volume/state":       {ID: "state", Gateway: true, Driver: "local"},
		"volume/etcvol":      {ID: "etcvol", Driver: "local", Options: bindOpt("/etc")},
		"volume/civol":       {ID: "civol", Driver: "local", Options: bindOpt("/srv/ci/data")},
		"volume/nfs":         {ID: "nfs", Driver: "local", Options: map[string]string{"type": "nfs", "o": "addr=10.0.0.1", "device": ":/export"}},
		"volume/tmp":         {ID: "tmp", Driver: "local", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=64m"}},
		"volume/plainvol":    {ID: "plainvol", Driver: "local"},
		"volume/otherdrv":    {ID: "otherdrv", Driver: "rexray", Options: map[string]string{"device": "/etc"}},
	}
	return objs
}

func createBody(hc string) string { return `{"Image":"x","HostConfig":` + hc + `}` }

// TestEvaluateReach: what a role may do on and through existing objects.
func TestEvaluateReach(t *testing.T) {
	cases := []struct {
		name           string
		id             identity.Identity
		method, target string
		body           string
		effect         Effect
		status         int
		rule           string // exact Rule for a denial
		reason         string // Reason contains
		path           string // the forwarded path, when allowed
		bodyHas        string // the forwarded body contains
	}{
		// Self-protection.
		{"inspect the gateway's container", ci7, "GET", "/containers/gw/json", "", Deny, 403, ruleSelf, "the gateway's own container", "", ""},
		{"stop a container labelled as the gateway", ci7, "POST", "/containers/labelled/stop", "", Deny, 403, ruleSelf, "the gateway's own container", "", ""},
		{"remove a container that mounts /run", ci7, "DELETE", "/containers/sock", "", Deny, 403, ruleSelf, `Docker socket ("/run")`, "", ""},
		{"kill a container that mounts the socket", ci7, "POST", "/v1.41/containers/sockm/kill", "", Deny, 403, ruleSelf, "Docker socket", "", ""},
		{"rename the gateway", ci7, "POST", "/containers/gw/rename?name=x", "", Deny, 403, ruleSelf, "", "", ""},
		{"a role that allows everything else", loose7, "POST", "/containers/gw/exec", `{"Cmd":["sh"]}`, Deny, 403, ruleSelf, "only admin", "", ""},
		{"commit the gateway", loose7, "POST", "/commit?container=gw", "", Deny, 403, ruleSelf, "query container", "", ""},
		{"share the gateway's pid namespace", loose7, "POST", "/containers/create", createBody(`{"PidMode":"container:gw"}`), Deny, 403, ruleSelf, "HostConfig.PidMode", "", ""},
		{"an exec in the gateway", ci7, "GET", "/exec/e-gw/json", "", Deny, 403, ruleSelf, "", "", ""},
		{"inspect the state volume", ci7, "GET", "/volumes/state", "", Deny, 403, ruleSelf, "its state", "", ""},
		{"remove the state volume", loose7, "DELETE", "/volumes/state", "", Deny, 403, ruleSelf, "", "", ""},
		{"mount the state volume (Binds)", ci7, "POST", "/containers/create", createBody(`{"Binds":["state:/x"]}`), Deny, 403, ruleSelf, "HostConfig.Binds[0]", "", ""},
		{"mount the state volume (Mounts)", loose7, "POST", "/containers/create", createBody(`{"Mounts":[{"Type":"volume","Source":"state","Target":"/x"}]}`), Deny, 403, ruleSelf, "HostConfig.Mounts[0].Source", "", ""},
		{"VolumesFrom the gateway", mid7, "POST", "/containers/create", createBody(`{"VolumesFrom":["gw:ro"]}`), Deny, 403, ruleSelf, "HostConfig.VolumesFrom[0]", "", ""},
		{"admin may", admin7, "POST", "/containers/gw/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/gw/exec", ""},
		{"audit mode would deny", watch7, "GET", "/containers/gw/json", "", WouldDeny, 403, ruleSelf, "", "/containers/gw/json", ""},

		// Borrowed privileges: exec.
		{"exec into a privileged container", ci7, "POST", "/containers/priv/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.privileged", "could not create itself: HostConfig.Privileged is not allowed", "", ""},
		{"exec into a host-pid container", ci7, "POST", "/containers/hostpid/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.host_namespaces", "HostConfig.PidMode is host", "", ""},
		{"exec into a container with SYS_ADMIN", ci7, "POST", "/containers/capped/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.capabilities", "SYS_ADMIN", "", ""},
		{"exec into a container with a device", ci7, "POST", "/containers/devs/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.devices", "", "", ""},
		{"exec into a container that binds /etc", ci7, "POST", "/containers/etcbind/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.bind_mounts", `"/etc"`, "", ""},
		{"exec into a container with a bind volume option", ci7, "POST", "/containers/etcvolctr/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.volume_driver_options", "", "", ""},
		{"exec into an unmasked container", ci7, "POST", "/containers/unmasked/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.unconfined", "MaskedPaths", "", ""},
		{"privileged exec body", ci7, "POST", "/containers/plain/exec", `{"Cmd":["sh"],"Privileged":true}`, Deny, 403, "roles.ci.containers.privileged", "Privileged is not allowed", "", ""},
		{"exec into what the role may create: pinned", ci7, "POST", "/v1.41/containers/plain/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/v1.41/containers/c0ffee/exec", ""},
		{"exec with an allowed capability", ci7, "POST", "/containers/nbs/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/p5/exec", ""},
		{"exec with an allowed bind", ci7, "POST", "/containers/cibind/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/p7/exec", ""},
		{"the loose role may", loose7, "POST", "/containers/priv/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/p1/exec", ""},
		{"start a privileged exec", ci7, "POST", "/exec/e-priv/start", `{}`, Deny, 403, "roles.ci.containers.privileged", "runs privileged", "", ""},
		{"start an exec in a privileged container", ci7, "POST", "/exec/e-in-priv/start", `{}`, Deny, 403, "roles.ci.containers.privileged", "", "", ""},
		{"start a plain exec", ci7, "POST", "/exec/e-plain/start", `{}`, Allow, 0, "", "", "/exec/e2/start", ""},
		{"inspect a privileged exec", ci7, "GET", "/exec/e-priv/json", "", Allow, 0, "", "", "/exec/e1/json", ""},
		{"owner isolation, own privileged container", tenant1, "POST", "/containers/tpriv/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.tenant.containers.privileged", "", "", ""},

		// Archive and attach.
		{"cp into a privileged container", ci7, "PUT", "/containers/priv/archive?path=/", "", Deny, 403, "roles.ci.containers.privileged", "container.archive", "", ""},
		{"cp out of a container that binds /etc", ci7, "GET", "/containers/etcbind/archive?path=/x", "", Deny, 403, "roles.ci.containers.bind_mounts", "", "", ""},
		{"stat in a host-network container", ci7, "HEAD", "/containers/hostnet/archive?path=/x", "", Deny, 403, "roles.ci.containers.host_namespaces", "", "", ""},
		{"attach to a privileged container", ci7, "POST", "/containers/priv/attach?stream=1", "", Deny, 403, "roles.ci.containers.privileged", "", "", ""},
		{"cp into a plain container", ci7, "PUT", "/containers/plain/archive?path=/", "", Allow, 0, "", "", "/containers/c0ffee/archive", ""},
		{"stop a privileged container: nothing borrowed", ci7, "POST", "/containers/priv/stop", "", Allow, 0, "", "", "/containers/p1/stop", ""},

		// The volumes of a container reached.
		{"exec into a container that mounts a bind volume", ci7, "POST", "/containers/volctr/exec", `{"Cmd":["sh"]}`, Deny, 403, "roles.ci.containers.bind_mounts", `container "volctr" (path) mounts volume "etcvol", which binds host path "/etc"`, "", ""},
		{"cp out of a container that mounts the state volume", ci7, "GET", "/containers/statectr/archive?path=/s", "", Deny, 403, ruleSelf, "its state", "", ""},
		{"VolumesFrom a container that mounts a bind volume", mid7, "POST", "/containers/create", createBody(`{"VolumesFrom":["volctr"]}`), Deny, 403, "roles.mid.containers.bind_mounts", "", "", ""},
		{"stop a container that mounts the state volume", ci7, "POST", "/containers/statectr/stop", "", Allow, 0, "", "", "/containers/v2/stop", ""},
		{"exec into a container with allowed volumes", ci7, "POST", "/containers/civolctr/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/v3/exec", ""},

		// VolumesFrom and shared namespaces.
		{"VolumesFrom a privileged container", mid7, "POST", "/containers/create", createBody(`{"VolumesFrom":["priv"]}`), Deny, 403, "roles.mid.containers.privileged", "HostConfig.VolumesFrom[0]", "", ""},
		{"VolumesFrom a container that binds /etc", mid7, "POST", "/containers/create", createBody(`{"VolumesFrom":["etcbind:ro"]}`), Deny, 403, "roles.mid.containers.bind_mounts", "", "", ""},
		{"network of a host-network container", mid7, "POST", "/containers/create", createBody(`{"NetworkMode":"container:hostnet"}`), Deny, 403, "roles.mid.containers.host_namespaces", "", "", ""},
		{"VolumesFrom what the role may create: pinned", mid7, "POST", "/containers/create", createBody(`{"VolumesFrom":["cibind:ro"]}`), Allow, 0, "", "", "/containers/create", `"VolumesFrom":["p7:ro"]`},

		// Volumes.
		{"mount a volume that binds /etc", ci7, "POST", "/containers/create", createBody(`{"Binds":["etcvol:/x"]}`), Deny, 403, "roles.ci.containers.bind_mounts", `binds host path "/etc"`, "", ""},
		{"mount it with Mounts", ci7, "POST", "/containers/create", createBody(`{"Mounts":[{"Type":"volume","Source":"etcvol","Target":"/x"}]}`), Deny, 403, "roles.ci.containers.bind_mounts", "", "", ""},
		{"mount an NFS volume", ci7, "POST", "/containers/create", createBody(`{"Binds":["nfs:/x"]}`), Deny, 403, "roles.ci.containers.volume_driver_options", "", "", ""},
		{"mount a volume that binds an allowed path", ci7, "POST", "/containers/create", createBody(`{"Binds":["civol:/x"]}`), Allow, 0, "", "", "/containers/create", ""},
		{"mount a tmpfs volume", ci7, "POST", "/containers/create", createBody(`{"Binds":["tmp:/x"]}`), Allow, 0, "", "", "/containers/create", ""},
		{"mount a plain volume", ci7, "POST", "/containers/create", createBody(`{"Binds":["plainvol:/x"]}`), Allow, 0, "", "", "/containers/create", ""},
		{"mount another driver's volume", ci7, "POST", "/containers/create", createBody(`{"Binds":["otherdrv:/x"]}`), Allow, 0, "", "", "/containers/create", ""},
		{"a role with volume_driver_options may", loose7, "POST", "/containers/create", createBody(`{"Binds":["etcvol:/x"]}`), Allow, 0, "", "", "/containers/create", ""},
		{"inspect a bind volume", ci7, "GET", "/volumes/etcvol", "", Allow, 0, "", "", "/volumes/etcvol", ""},
		{"a missing container is dockerd's to answer", ci7, "POST", "/containers/nope/exec", `{"Cmd":["sh"]}`, Allow, 0, "", "", "/containers/nope/exec", ""},
	}
	p := mustPolicy(t, reachConfig)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := &fakeDaemon{objects: reachObjects()}
			path, query, _ := strings.Cut(tc.target, "?")
			in := Input{Identity: tc.id, Method: tc.method, Path: path, RawQuery: query}
			if tc.body != "" {
				in.ContentType, in.Body = "application/json", strings.NewReader(tc.body)
			}
			v := p.Evaluate(context.Background(), in, host)
			if v.Effect != tc.effect || v.Status != tc.status {
				t.Fatalf("Evaluate = %s %d (%s: %s), want %s %d", v.Effect, v.Status, v.Rule, v.Reason, tc.effect, tc.status)
			}
			if tc.rule != "" && v.Rule != tc.rule {
				t.Errorf("Rule = %q, want %q", v.Rule, tc.rule)
			}
			if !strings.Contains(v.Reason, tc.reason) {
				t.Errorf("Reason = %q, want it to contain %q", v.Reason, tc.reason)
			}
			if v.Effect == Deny && !strings.Contains(v.Message, v.Reason) {
				t.Errorf("Message = %q, want the reason in it", v.Message)
			}
			if tc.path != "" && v.Path != tc.path {
				t.Errorf("Path = %q, want %q", v.Path, tc.path)
			}
			if !strings.Contains(string(v.Body), tc.bodyHas) {
				t.Errorf("Body = %s, want it to contain %s", v.Body, tc.bodyHas)
			}
			if tc.id.CN == admin7.CN && len(host.calls) != 0 {
				t.Errorf("admin's request looked up %q, want nothing", host.calls)
			}
		})
	}
}

// TestEvaluateReachHost: a bind volume's path is judged with its links
// resolved, a failed lookup refuses the request, and each object is
// looked up once however many checks name it.
func TestEvaluateReachHost(t *testing.T) {
	host := &fakeDaemon{objects: reachObjects(), links: fakeHost{"/srv/ci/data": "/etc"}}
	v := evaluateWith(t, reachConfig, ci7, "POST", "/containers/create", createBody(`{"Binds":["civol:/x"]}`), host)
	if v.Effect != Deny || v.Rule != "roles.ci.containers.bind_mounts" {
		t.Errorf("a bind volume linked out of the allowed paths: %s (%s), want denied", v.Effect, v.Rule)
	}

	host = &fakeDaemon{objects: reachObjects(), fail: map[string]error{"container/web": errors.New("daemon down")}}
	v = evaluateWith(t, reachConfig, ci7, "POST", "/containers/web/exec", `{"Cmd":["sh"]}`, host)
	if v.Effect != Deny || v.Status != http.StatusBadGateway || v.Message != errReachFailed || v.Err == nil {
		t.Errorf("a failed lookup: %s %d %q (%v), want 502 %q", v.Effect, v.Status, v.Message, v.Err, errReachFailed)
	}

	objs := reachObjects()
	objs["container/web"] = owned("w1", "t1")
	host = &fakeDaemon{objects: objs}
	v = evaluateWith(t, reachConfig, tenant1, "POST", "/containers/web/exec", `{"Cmd":["sh"]}`, host)
	if v.Effect != Allow || strings.Join(host.calls, ",") != "inspect container/web" {
		t.Errorf("owner isolation and reach: %s, calls %q, want allowed after one lookup", v.Effect, host.calls)
	}
}

func evaluateWith(t *testing.T, yaml string, id identity.Identity, method, target, body string, host Host) Verdict {
	t.Helper()
	p := mustPolicy(t, yaml)
	path, query, _ := strings.Cut(target, "?")
	in := Input{Identity: id, Method: method, Path: path, RawQuery: query}
	if body != "" {
		in.ContentType, in.Body = "application/json", strings.NewReader(body)
	}
	return p.Evaluate(context.Background(), in, host)
}

func TestReachesSocket(t *testing.T) {
	sockets := []string{"/var/run/docker.sock", "/run/docker.sock", "/srv/d/docker.sock"}
	for src, want := range map[string]bool{
		"/var/run/docker.sock":    true,
		"/run/docker.sock/":       true,
		"/run":                    true,
		"/var":                    true,
		"/":                       true,
		"/srv/d":                  true,
		"/srv/d/../d/docker.sock": true,
		"/run/user":               false,
		"/srv/data":               false,
		"/var/run/docker.sockx":   false,
		"docker.sock":             false,
	} {
		if got := reachesSocket(src, sockets); got != want {
			t.Errorf("reachesSocket(%q) = %v, want %v", src, got, want)
		}
	}
}

// TestSocketPathsFromConfig: the socket the gateway forwards to and its
// own unix listener count as Docker sockets.
func TestSocketPathsFromConfig(t *testing.T) {
	yaml := "upstream:\n  url: unix:///srv/engine/docker.sock\nlisten_unix: /run/dockgate/docker.sock\n" + reachConfig
	objs := reachObjects()
	objs["container/eng"] = Object{ID: "e", HostConfig: &container.HostConfig{Binds: []string{"/srv/engine:/e"}}}
	objs["container/gwsock"] = Object{ID: "f", HostConfig: &container.HostConfig{Binds: []string{"/run/dockgate:/g"}}}
	for _, name := range []string{"eng", "gwsock"} {
		v := evaluateWith(t, yaml, ci7, "POST", "/containers/"+name+"/stop", "", &fakeDaemon{objects: objs})
		if v.Effect != Deny || v.Rule != ruleSelf {
			t.Errorf("stop %s: %s (%s), want denied by self-protection", name, v.Effect, v.Rule)
		}
	}
}
