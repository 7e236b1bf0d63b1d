package policy

import (
	"errors"
	"path"
	"reflect"
	"strings"
	"testing"
)

// fakeHost resolves paths through a table of symbolic links, as the
// gateway's resolver does on a real filesystem: the longest linked prefix
// is replaced by its target.
type fakeHost map[string]string

func (h fakeHost) resolve(p string) (string, error) {
	for prefix, target := range h {
		if target == "" && (p == prefix || strings.HasPrefix(p, prefix+"/")) {
			return "", errors.New("too many levels of symbolic links")
		}
		if p == prefix || strings.HasPrefix(p, prefix+"/") {
			return path.Join(target, strings.TrimPrefix(p, prefix)), nil
		}
	}
	return p, nil
}

func TestHostPathsListsBindSources(t *testing.T) {
	p := mustPolicy(t, testConfig)
	body := `{"Image":"x","Binds":["/srv/ci/legacy:/l"],"HostConfig":{"Binds":["/srv/ci/a/:/a:ro","named:/n","/anon"],` +
		`"Mounts":[{"Type":"volume","Source":"v","Target":"/v"},{"Type":"bind","Source":"/srv/ci//b","Target":"/b"}]}}`
	d := decide(t, p, "ci-1", "ci", "POST", "/containers/create", body)
	if d.Effect != Allow {
		t.Fatalf("Decide = %v (%s), want allow", d.Effect, d.Reason)
	}
	want := []hostPath{
		{Field: "HostConfig.Binds[0]", Source: "/srv/ci/a"},
		{Field: "HostConfig.Mounts[1].Source", Source: "/srv/ci/b"},
		{Field: "Binds[0]", Source: "/srv/ci/legacy"},
	}
	if !reflect.DeepEqual(d.hostPaths(), want) {
		t.Errorf("HostPaths = %+v, want %+v", d.hostPaths(), want)
	}
}

func TestHostPathsOnlyWhenBindPathsAreRestricted(t *testing.T) {
	p := mustPolicy(t, testConfig)
	body := create(`{"Binds":["/srv/ci/a:/a"]}`)
	for _, role := range []string{"loose", "admin"} {
		if d := decide(t, p, "x", role, "POST", "/containers/create", body); d.Effect != Allow || d.hostPaths() != nil {
			t.Errorf("role %s: Decide = %v, HostPaths = %v; want allow and none to resolve", role, d.Effect, d.hostPaths())
		}
	}
	svc := `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Mounts":[{"Type":"bind","Source":"/srv/ci/a","Target":"/a"}]}}}`
	if d := decide(t, p, "ci-1", "ci", "POST", "/services/create", svc); d.Effect != Allow || d.hostPaths() != nil {
		t.Errorf("service: Decide = %v (%s), HostPaths = %v; want allow and none to resolve", d.Effect, d.Reason, d.hostPaths())
	}
}

func TestCheckHostPaths(t *testing.T) {
	p := mustPolicy(t, testConfig)
	host := fakeHost{
		"/srv/ci/evil": "/etc",
		"/srv/ci/ok":   "/srv/ci/real",
		"/srv/ci/loop": "",
	}
	cases := []struct {
		name, role, hostConfig string
		want                   Effect
		field, inReason, fix   string
	}{
		{"plain path", "ci", `{"Binds":["/srv/ci/data:/d"]}`, Allow, "", "", ""},
		{"link inside the allowed path", "ci", `{"Binds":["/srv/ci/ok/x:/d"]}`, Allow, "", "", ""},
		{"link to /etc", "ci", `{"Binds":["/srv/ci/data:/d","/srv/ci/evil:/e"]}`, Deny,
			"HostConfig.Binds[1]", `resolves through a symbolic link to "/etc"`, `allow it by adding "/etc" to roles.ci.containers.bind_mounts`},
		{"link below a link", "ci", `{"Mounts":[{"Type":"bind","Source":"/srv/ci/evil/shadow","Target":"/s"}]}`, Deny,
			"HostConfig.Mounts[0].Source", `to "/etc/shadow"`, ""},
		{"unresolvable", "ci", `{"Binds":["/srv/ci/loop/x:/d"]}`, Deny,
			"HostConfig.Binds[0]", "cannot be resolved (too many levels of symbolic links)", "mount a path without a dangling or unreadable symbolic link"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := decide(t, p, "ci-1", c.role, "POST", "/containers/create", create(c.hostConfig))
			d.checkHostPaths(host.resolve)
			if d.Effect != c.want {
				t.Fatalf("Effect = %v (%s), want %v", d.Effect, d.Reason, c.want)
			}
			if c.want == Allow {
				return
			}
			if d.Field != c.field || !strings.Contains(d.Reason, c.inReason) || d.Status != 403 {
				t.Errorf("Field %q, Reason %q, Status %d; want %q, %q, 403", d.Field, d.Reason, d.Status, c.field, c.inReason)
			}
			if c.fix != "" && d.Fix != c.fix {
				t.Errorf("Fix = %q, want %q", d.Fix, c.fix)
			}
			if !strings.Contains(d.message(), "dockgate: denied container.create for ci-1 (role ci)") {
				t.Errorf("Message() = %q", d.message())
			}
		})
	}
}

// An allowed path that is itself a link when the policy is loaded is
// compared in its resolved form, so paths under it still pass; the policy
// it was resolved from is left as it was.
func TestCheckHostPathsResolvesAllowedPathsOnLoad(t *testing.T) {
	p := mustPolicy(t, testConfig)
	host := fakeHost{"/srv/ci": "/data/ci"}
	resolved := p.WithResolvedBindPaths(host.resolve)
	body := create(`{"Binds":["/srv/ci/x:/x"]}`)
	d := decide(t, resolved, "ci-1", "ci", "POST", "/containers/create", body)
	d.checkHostPaths(host.resolve)
	if d.Effect != Allow {
		t.Errorf("Effect = %v (%s), want allow", d.Effect, d.Reason)
	}
	d = decide(t, p, "ci-1", "ci", "POST", "/containers/create", body)
	d.checkHostPaths(host.resolve)
	if d.Effect != Deny {
		t.Errorf("the original policy: Effect = %v, want deny (its allowed paths are as written)", d.Effect)
	}
}

// A link planted after the policy was loaded cannot widen the allowed
// paths: with /srv/ci and /srv/ci/cache allowed, a client that turns
// cache into a link to / still cannot bind /srv/ci/cache/etc.
func TestCheckHostPathsAllowedPathTurnedIntoLink(t *testing.T) {
	p := mustPolicy(t, "roles:\n  ci:\n    allow: [container.*]\n    containers:\n      bind_mounts: [/srv/ci, /srv/ci/cache]\n").
		WithResolvedBindPaths(fakeHost{}.resolve)
	d := decide(t, p, "ci-1", "ci", "POST", "/containers/create", create(`{"Binds":["/srv/ci/cache/etc:/x"]}`))
	d.checkHostPaths(fakeHost{"/srv/ci/cache": ""}.resolve) // a loop: unresolvable
	if d.Effect != Deny {
		t.Fatalf("loop: Effect = %v, want deny", d.Effect)
	}
	if d.Rule != "roles.ci.containers.bind_mounts" || d.Fix != "mount a path without a dangling or unreadable symbolic link" {
		t.Errorf("loop: Rule %q, Fix %q", d.Rule, d.Fix)
	}
	d = decide(t, p, "ci-1", "ci", "POST", "/containers/create", create(`{"Binds":["/srv/ci/cache/etc:/x"]}`))
	d.checkHostPaths(fakeHost{"/srv/ci/cache": "/"}.resolve)
	if d.Effect != Deny || !strings.Contains(d.Reason, `resolves through a symbolic link to "/etc"`) {
		t.Errorf("Effect = %v (%s), want deny", d.Effect, d.Reason)
	}
}

func TestCheckHostPathsAuditMode(t *testing.T) {
	p := mustPolicy(t, "roles:\n  ci-audit:\n    allow: [container.*]\n    mode: audit\n    containers:\n      bind_mounts: [/srv/ci]\n")
	d := decide(t, p, "audited", "ci-audit", "POST", "/containers/create", create(`{"Binds":["/srv/ci/evil:/e"]}`))
	d.checkHostPaths(fakeHost{"/srv/ci/evil": "/"}.resolve)
	if d.Effect != WouldDeny || !d.forward() {
		t.Errorf("Effect = %v, want would_deny (forwarded)", d.Effect)
	}
}

// A denied request stays as it is: CheckHostPaths never resolves for it.
func TestCheckHostPathsSkipsDenied(t *testing.T) {
	p := mustPolicy(t, testConfig)
	d := decide(t, p, "ci-1", "ci", "POST", "/containers/create", create(`{"Privileged":true,"Binds":["/srv/ci/x:/x"]}`))
	before := d.Reason
	d.checkHostPaths(func(string) (string, error) {
		t.Fatal("resolve called for a denied request")
		return "", nil
	})
	if d.Effect != Deny || d.Reason != before {
		t.Errorf("Effect = %v, Reason %q; want the original denial %q", d.Effect, d.Reason, before)
	}
}
