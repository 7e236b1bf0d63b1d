package policy

import (
	"net/http"
	"strings"
	"testing"
)

// guardCase is one request the ci role (bind_mounts /srv/ci, capability
// NET_BIND_SERVICE) must be denied, naming field and the knob that would
// allow it; the loose role, which sets every knob, must be allowed it.
type guardCase struct {
	name, method, path, body string
	field, knob              string
}

func create(hostConfig string) string {
	return `{"Image":"busybox","Cmd":["true"],"HostConfig":` + hostConfig + `}`
}

var guardCases = []guardCase{
	// Privileged, in every spelling dockerd decodes.
	{"privileged", "POST", "/containers/create", create(`{"Privileged":true}`), "HostConfig.Privileged", "containers.privileged"},
	{"privileged lower-case keys", "POST", "/containers/create", `{"image":"x","hostconfig":{"privileged":true}}`, "HostConfig.Privileged", "containers.privileged"},
	{"privileged unicode-escaped key", "POST", "/containers/create", `{"Image":"x","HostConfig":{"Privil\u0065ged":true}}`, "HostConfig.Privileged", "containers.privileged"},
	{"legacy top-level privileged", "POST", "/v1.41/containers/create", `{"Image":"x","Privileged":true}`, "Privileged", "containers.privileged"},
	{"legacy beside HostConfig", "POST", "/containers/create", `{"Image":"x","HostConfig":{},"Privileged":true}`, "Privileged", "containers.privileged"},
	{"legacy binds", "POST", "/containers/create", `{"Image":"x","Binds":["/:/host"]}`, "Binds[0]", "containers.bind_mounts"},
	{"exec privileged", "POST", "/containers/web/exec", `{"Cmd":["sh"],"Privileged":true}`, "Privileged", "containers.privileged"},

	// Capabilities in any spelling.
	{"cap SYS_ADMIN", "POST", "/containers/create", create(`{"CapAdd":["SYS_ADMIN"]}`), "HostConfig.CapAdd", "containers.capabilities"},
	{"cap CAP_SYS_ADMIN", "POST", "/containers/create", create(`{"CapAdd":["CAP_SYS_ADMIN"]}`), "HostConfig.CapAdd", "containers.capabilities"},
	{"cap lower case", "POST", "/containers/create", create(`{"CapAdd":["sys_admin"]}`), "HostConfig.CapAdd", "containers.capabilities"},
	{"cap dotless i", "POST", "/containers/create", create(`{"CapAdd":["sys_admın"]}`), "HostConfig.CapAdd", "containers.capabilities"},
	{"cap ALL", "POST", "/containers/create", create(`{"CapAdd":["ALL"]}`), "HostConfig.CapAdd", "containers.capabilities"},
	{"cap all", "POST", "/containers/create", create(`{"CapAdd":["NET_BIND_SERVICE","all"]}`), "HostConfig.CapAdd", "containers.capabilities"},

	// Devices.
	{"devices", "POST", "/containers/create", create(`{"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]}`), "HostConfig.Devices", "containers.devices"},
	{"device cgroup rules", "POST", "/containers/create", create(`{"DeviceCgroupRules":["b *:* rwm"]}`), "HostConfig.DeviceCgroupRules", "containers.devices"},
	{"device requests", "POST", "/containers/create", create(`{"DeviceRequests":[{"Count":-1,"Capabilities":[["gpu"]]}]}`), "HostConfig.DeviceRequests", "containers.device_requests"},
	{"update devices", "POST", "/containers/web/update", `{"Devices":[{"PathOnHost":"/dev/mem"}]}`, "Devices", "containers.devices"},
	{"update cgroup parent", "POST", "/containers/web/update", `{"CgroupParent":"/"}`, "CgroupParent", "containers.cgroup_parent"},

	// Bind mounts.
	{"bind root", "POST", "/containers/create", create(`{"Binds":["/:/host"]}`), "HostConfig.Binds[0]", "containers.bind_mounts"},
	{"bind etc ro", "POST", "/containers/create", create(`{"Binds":["/etc:/etc:ro"]}`), "HostConfig.Binds[0]", "containers.bind_mounts"},
	{"bind sibling prefix", "POST", "/containers/create", create(`{"Binds":["/srv/ci-other:/x"]}`), "HostConfig.Binds[0]", "containers.bind_mounts"},
	{"bind parent", "POST", "/containers/create", create(`{"Binds":["/srv:/x"]}`), "HostConfig.Binds[0]", "containers.bind_mounts"},
	{"bind second entry", "POST", "/containers/create", create(`{"Binds":["/srv/ci:/ci","/var/run/docker.sock:/s"]}`), "HostConfig.Binds[1]", "containers.bind_mounts"},
	{"mount bind", "POST", "/containers/create", create(`{"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]}`), "HostConfig.Mounts[0].Source", "containers.bind_mounts"},
	{"mount volume local bind options", "POST", "/containers/create",
		create(`{"Mounts":[{"Type":"volume","Source":"v","Target":"/d","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}}]}`),
		"HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.device", "containers.volume_driver_options"},
	{"mount volume default driver options", "POST", "/containers/create",
		create(`{"Mounts":[{"Type":"volume","Target":"/d","VolumeOptions":{"DriverConfig":{"Options":{"o":"bind"}}}}]}`),
		"HostConfig.Mounts[0].VolumeOptions.DriverConfig.Options.o", "containers.volume_driver_options"},
	{"volume create bind options", "POST", "/volumes/create", `{"Name":"v","DriverOpts":{"type":"none","o":"bind","device":"/"}}`, "DriverOpts.device", "containers.volume_driver_options"},
	{"volume create LOCAL driver", "POST", "/volumes/create", `{"Name":"v","Driver":"LOCAL","DriverOpts":{"Type":"ext4"}}`, "DriverOpts.Type", "containers.volume_driver_options"},
	{"volumes from", "POST", "/containers/create", create(`{"VolumesFrom":["other"]}`), "HostConfig.VolumesFrom", "containers.volumes_from"},

	// Namespaces.
	{"network host", "POST", "/containers/create", create(`{"NetworkMode":"host"}`), "HostConfig.NetworkMode", "containers.host_namespaces"},
	{"network container", "POST", "/containers/create", create(`{"NetworkMode":"container:other"}`), "HostConfig.NetworkMode", "containers.container_namespaces"},
	{"endpoint host", "POST", "/containers/create", `{"Image":"x","NetworkingConfig":{"EndpointsConfig":{"host":{}}}}`, `NetworkingConfig.EndpointsConfig["host"]`, "containers.host_namespaces"},
	{"pid host", "POST", "/containers/create", create(`{"PidMode":"host"}`), "HostConfig.PidMode", "containers.host_namespaces"},
	{"pid container", "POST", "/containers/create", create(`{"PidMode":"container:other"}`), "HostConfig.PidMode", "containers.container_namespaces"},
	{"ipc host", "POST", "/containers/create", create(`{"IpcMode":"host"}`), "HostConfig.IpcMode", "containers.host_namespaces"},
	{"ipc container", "POST", "/containers/create", create(`{"IpcMode":"container:other"}`), "HostConfig.IpcMode", "containers.container_namespaces"},
	{"uts host", "POST", "/containers/create", create(`{"UTSMode":"host"}`), "HostConfig.UTSMode", "containers.host_namespaces"},
	{"userns host", "POST", "/containers/create", create(`{"UsernsMode":"host"}`), "HostConfig.UsernsMode", "containers.host_namespaces"},
	{"cgroupns host", "POST", "/containers/create", create(`{"CgroupnsMode":"host"}`), "HostConfig.CgroupnsMode", "containers.host_namespaces"},
	{"cgroup container", "POST", "/containers/create", create(`{"Cgroup":"container:other"}`), "HostConfig.Cgroup", "containers.container_namespaces"},
	{"legacy network host", "POST", "/containers/create", `{"Image":"x","NetworkMode":"host"}`, "NetworkMode", "containers.host_namespaces"},

	// Confinement.
	{"seccomp=unconfined", "POST", "/containers/create", create(`{"SecurityOpt":["seccomp=unconfined"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"seccomp:unconfined", "POST", "/containers/create", create(`{"SecurityOpt":["seccomp:unconfined"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"seccomp custom profile", "POST", "/containers/create", create(`{"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"apparmor=unconfined", "POST", "/containers/create", create(`{"SecurityOpt":["apparmor=unconfined"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"apparmor:unconfined", "POST", "/containers/create", create(`{"SecurityOpt":["apparmor:unconfined"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"label=disable", "POST", "/containers/create", create(`{"SecurityOpt":["label=disable"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"label:disable", "POST", "/containers/create", create(`{"SecurityOpt":["label:disable"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"bare disable", "POST", "/containers/create", create(`{"SecurityOpt":["disable"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"label type spc_t", "POST", "/containers/create", create(`{"SecurityOpt":["label=type:spc_t"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"systempaths=unconfined", "POST", "/containers/create", create(`{"SecurityOpt":["systempaths=unconfined"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"writable-cgroups", "POST", "/containers/create", create(`{"SecurityOpt":["writable-cgroups=true"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"no-new-privileges=false", "POST", "/containers/create", create(`{"SecurityOpt":["no-new-privileges=false"]}`), "HostConfig.SecurityOpt", "containers.unconfined"},
	{"masked paths emptied", "POST", "/containers/create", create(`{"MaskedPaths":[]}`), "HostConfig.MaskedPaths", "containers.unconfined"},
	{"readonly paths emptied", "POST", "/containers/create", create(`{"ReadonlyPaths":[]}`), "HostConfig.ReadonlyPaths", "containers.unconfined"},
	{"sysctls", "POST", "/containers/create", create(`{"Sysctls":{"net.ipv4.ip_forward":"1"}}`), "HostConfig.Sysctls", "containers.sysctls"},
	{"runtime", "POST", "/containers/create", create(`{"Runtime":"runsc"}`), "HostConfig.Runtime", "containers.runtimes"},
	{"cgroup parent", "POST", "/containers/create", create(`{"CgroupParent":"/system.slice"}`), "HostConfig.CgroupParent", "containers.cgroup_parent"},
	{"annotations", "POST", "/containers/create", create(`{"Annotations":{"org.systemd.property.DeviceAllow":"'/dev/sda rwm'"}}`), "HostConfig.Annotations", "containers.annotations"},

	// Services: the same guardrails on the task's container.
	{"service capability", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","CapabilityAdd":["CAP_SYS_ADMIN"]}}}`, "TaskTemplate.ContainerSpec.CapabilityAdd", "containers.capabilities"},
	{"service bind mount", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]}}}`, "TaskTemplate.ContainerSpec.Mounts[0].Source", "containers.bind_mounts"},
	{"service volume options", "POST", "/services/web/update?version=3", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Mounts":[{"Type":"volume","Target":"/h","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"device":"/dev/sda1"}}}}]}}}`, "TaskTemplate.ContainerSpec.Mounts[0].VolumeOptions.DriverConfig.Options.device", "containers.volume_driver_options"},
	{"service sysctls", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Sysctls":{"kernel.shmmax":"1"}}}}`, "TaskTemplate.ContainerSpec.Sysctls", "containers.sysctls"},
	{"service seccomp", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Privileges":{"Seccomp":{"Mode":"unconfined"}}}}}`, "TaskTemplate.ContainerSpec.Privileges.Seccomp.Mode", "containers.unconfined"},
	{"service apparmor", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Privileges":{"AppArmor":{"Mode":"disabled"}}}}}`, "TaskTemplate.ContainerSpec.Privileges.AppArmor.Mode", "containers.unconfined"},
	{"service selinux", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Privileges":{"SELinuxContext":{"Disable":true}}}}}`, "TaskTemplate.ContainerSpec.Privileges.SELinuxContext", "containers.unconfined"},
	{"service host network", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x"},"Networks":[{"Target":"host"}]}}`, "TaskTemplate.Networks[0].Target", "containers.host_namespaces"},
	{"service plugin runtime", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"Runtime":"plugin","PluginSpec":{"Name":"p"}}}`, "TaskTemplate.Runtime", "admin_operations"},

	// Builds (query parameters) and BuildKit's API.
	{"build host network", "POST", "/build?networkmode=host&t=x", "", "query networkmode", "builds.host_network"},
	{"build container network", "POST", "/build?networkmode=container:other", "", "query networkmode", "containers.container_namespaces"},
	{"build remote context", "POST", "/build?remote=https://example.com/ctx.tar", "", "query remote", "builds.remote_context"},
	{"build git context", "POST", "/build?remote=git%40github.com:x/y.git", "", "query remote", "builds.remote_context"},
	{"build cgroup parent", "POST", "/build?cgroupparent=/", "", "query cgroupparent", "containers.cgroup_parent"},
	{"build security opt", "POST", "/build?securityopt=seccomp%3Dunconfined", "", "query securityopt", "containers.unconfined"},

	// Admin operations, even when the allow list matches them.
	{"plugin install", "POST", "/plugins/pull?remote=vieux/sshfs", `[{"Name":"network","Value":["host"]}]`, "", "admin_operations"},
	{"plugin set", "POST", "/plugins/p/set", `["DEBUG=1"]`, "", "admin_operations"},
	{"plugin enable", "POST", "/plugins/p/enable", "", "", "admin_operations"},
	// The swarm and its nodes, whatever the allow list (ci allows swarm.*
	// and node.*); GET /swarm answers with the join tokens.
	{"swarm inspect", "GET", "/swarm", "", "", "admin_operations"},
	{"swarm init", "POST", "/swarm/init", `{"ListenAddr":"0.0.0.0:2377"}`, "", "admin_operations"},
	{"swarm join", "POST", "/swarm/join", `{"RemoteAddrs":["10.0.0.1:2377"],"JoinToken":"t"}`, "", "admin_operations"},
	{"swarm leave", "POST", "/swarm/leave?force=1", "", "", "admin_operations"},
	{"swarm update", "POST", "/swarm/update?version=1", `{}`, "", "admin_operations"},
	{"swarm unlock", "POST", "/swarm/unlock", `{"UnlockKey":"k"}`, "", "admin_operations"},
	{"swarm unlock key", "GET", "/swarm/unlockkey", "", "", "admin_operations"},
	{"node update", "POST", "/nodes/n1/update?version=1", `{"Role":"manager"}`, "", "admin_operations"},
	{"node delete", "DELETE", "/nodes/n1", "", "", "admin_operations"},
}

func TestGuardrails(t *testing.T) {
	p := mustPolicy(t, testConfig)
	for _, tc := range guardCases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "ci-7", "ci", tc.method, tc.path, tc.body)
			if d.Effect != Deny {
				t.Fatalf("ci: effect = %v, want deny (%+v)", d.Effect, d)
			}
			if d.Field != tc.field {
				t.Errorf("field = %q, want %q (%s)", d.Field, tc.field, d.message())
			}
			if want := "roles.ci." + tc.knob; d.Rule != want {
				t.Errorf("rule = %q, want %q", d.Rule, want)
			}
			if !strings.Contains(d.Fix, "roles.ci."+tc.knob) {
				t.Errorf("fix = %q, want it to name roles.ci.%s", d.Fix, tc.knob)
			}
			if d.Status != http.StatusForbidden {
				t.Errorf("status = %d, want 403", d.Status)
			}
			if tc.field != "" && !strings.HasPrefix(d.Reason, tc.field) && !strings.Contains(d.Reason, tc.field) {
				t.Errorf("reason %q does not name %s", d.Reason, tc.field)
			}
			// The setting named in the fix allows it: the loose role sets them all.
			if d := decide(t, p, "ci-7", "loose", tc.method, tc.path, tc.body); d.Effect != Allow {
				t.Errorf("loose: effect = %v, want allow: %s", d.Effect, d.message())
			}
			if d := decide(t, p, "ci-7", "admin", tc.method, tc.path, tc.body); d.Effect != Allow {
				t.Errorf("admin: effect = %v, want allow: %s", d.Effect, d.message())
			}
		})
	}
}

// TestGuardrailControls: what the ci role is allowed, so that the
// guardrails do not stop ordinary work.
func TestGuardrailControls(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct{ name, method, path, body string }{
		{"plain create", "POST", "/containers/create", create(`{}`)},
		{"no HostConfig", "POST", "/containers/create?name=web", `{"Image":"busybox"}`},
		{"docker cli body", "POST", "/v1.47/containers/create", create(`{"NetworkMode":"default","LogConfig":{"Type":"","Config":{}},"RestartPolicy":{"Name":"no"},"MaskedPaths":null,"ReadonlyPaths":null}`)},
		{"allowed capability", "POST", "/containers/create", create(`{"CapAdd":["cap_net_bind_service"],"CapDrop":["ALL"]}`)},
		{"bind allowed path", "POST", "/containers/create", create(`{"Binds":["/srv/ci:/ci","/srv/ci/work:/w:rw"]}`)},
		{"bind unclean allowed path", "POST", "/containers/create", create(`{"Binds":["/srv//ci/./w:/w"]}`)},
		{"named and anonymous volumes", "POST", "/containers/create", create(`{"Binds":["cache:/cache","/data"]}`)},
		{"mount bind allowed", "POST", "/containers/create", create(`{"Mounts":[{"Type":"bind","Source":"/srv/ci/x","Target":"/x"},{"Type":"tmpfs","Target":"/t"},{"Type":"volume","Source":"v","Target":"/v"}]}`)},
		{"network modes", "POST", "/containers/create", create(`{"NetworkMode":"bridge","IpcMode":"private","PidMode":"","CgroupnsMode":"private"}`)},
		{"user network", "POST", "/containers/create", `{"Image":"x","HostConfig":{"NetworkMode":"backend"},"NetworkingConfig":{"EndpointsConfig":{"backend":{}}}}`},
		{"no-new-privileges", "POST", "/containers/create", create(`{"SecurityOpt":["no-new-privileges","no-new-privileges=true","no-new-privileges:1"]}`)},
		{"runc runtime", "POST", "/containers/create", create(`{"Runtime":"runc"}`)},
		{"resources", "POST", "/containers/create", create(`{"Memory":67108864,"PidsLimit":100}`)},
		{"update memory", "POST", "/containers/web/update", `{"Memory":67108864}`},
		{"exec", "POST", "/containers/web/exec", `{"Cmd":["sh"],"AttachStdout":true,"Env":["SECRET=x"]}`},
		{"exec start", "POST", "/exec/abc/start", `{"Detach":false}`},
		{"volume create", "POST", "/volumes/create", `{"Name":"v","Labels":{"a":"b"}}`},
		{"volume plugin options", "POST", "/volumes/create", `{"Name":"v","Driver":"rexray/ebs","DriverOpts":{"type":"gp2"}}`},
		{"service", "POST", "/services/create", `{"Name":"s","TaskTemplate":{"ContainerSpec":{"Image":"x","Mounts":[{"Type":"volume","Source":"d","Target":"/d"}],"Privileges":{"Seccomp":{"Mode":"default"},"NoNewPrivileges":true}},"Networks":[{"Target":"overlay1"}]}}`},
		{"build", "POST", "/build?networkmode=default", "FROM busybox\nRUN true\n"},
		{"network create", "POST", "/networks/create", `{"Name":"n","Driver":"bridge"}`},
		{"network connect", "POST", "/networks/n/connect", `{"Container":"web"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(t, p, "ci-7", "ci", tc.method, tc.path, tc.body)
			if d.Effect != Allow {
				t.Errorf("effect = %v, want allow: %s", d.Effect, d.message())
			}
			if d.Owner.Label || d.Owner.Filter || len(d.Owner.Checks) > 0 {
				t.Errorf("owner plan %+v for a role without owner isolation", d.Owner)
			}
		})
	}
}

// TestGuardrailsWithoutSetting covers denials no setting can lift.
func TestGuardrailsWithoutSetting(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := []struct {
		name, body, field string
		status            int
	}{
		{"dot-dot bind", create(`{"Binds":["/srv/ci/../../etc:/x"]}`), "HostConfig.Binds[0]", http.StatusForbidden},
		{"dot-dot mount", create(`{"Mounts":[{"Type":"bind","Source":"/srv/ci/..","Target":"/x"}]}`), "HostConfig.Mounts[0].Source", http.StatusForbidden},
		{"unknown mount type", create(`{"Mounts":[{"Type":"BIND","Source":"/","Target":"/x"}]}`), "HostConfig.Mounts[0].Type", http.StatusBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, role := range []string{"ci", "loose"} {
				d := decide(t, p, "ci-7", role, "POST", "/containers/create", tc.body)
				if d.Effect != Deny || d.Field != tc.field || d.Status != tc.status {
					t.Errorf("%s: effect %v field %q status %d, want deny %q %d", role, d.Effect, d.Field, d.Status, tc.field, tc.status)
				}
				if d.Fix == "" || strings.Contains(d.Fix, "roles.") {
					t.Errorf("%s: fix = %q, want a hint that names no setting", role, d.Fix)
				}
			}
		})
	}
}

func TestParseBind(t *testing.T) {
	cases := []struct {
		in   string
		want bindSpec
		bind bool
	}{
		{"/data", bindSpec{Target: "/data"}, false},
		{"vol:/data", bindSpec{Source: "vol", Target: "/data"}, false},
		{"/host:/data", bindSpec{Source: "/host", Target: "/data"}, true},
		{"/host:/data:ro,z", bindSpec{Source: "/host", Target: "/data", Mode: "ro,z"}, true},
		{"/a:/b:ro:extra", bindSpec{Source: "/a", Target: "/b", Mode: "ro:extra"}, true},
	}
	for _, tc := range cases {
		got := parseBind(tc.in)
		if got != tc.want || got.IsBind() != tc.bind {
			t.Errorf("parseBind(%q) = %+v (bind %v), want %+v (bind %v)", tc.in, got, got.IsBind(), tc.want, tc.bind)
		}
	}
}

func TestBindAllowed(t *testing.T) {
	allowed := []string{"/srv/ci", "/data"}
	cases := []struct {
		path string
		ok   bool
	}{
		{"/srv/ci", true},
		{"/srv/ci/", true},
		{"/srv/ci/x/y", true},
		{"/srv//ci", true},
		{"/srv/./ci/x", true},
		{"/data", true},
		{"/srv/ci-2", false},
		{"/srv/cix", false},
		{"/srv", false},
		{"/", false},
		{"/srv/ci/../x", false},
		{"/srv/ci/x/..", false},
		{"srv/ci", false},
		{"", false},
	}
	for _, tc := range cases {
		if ok, why := bindAllowed(allowed, tc.path); ok != tc.ok {
			t.Errorf("bindAllowed(%q) = %v (%s), want %v", tc.path, ok, why, tc.ok)
		}
	}
	if ok, _ := bindAllowed([]string{"/"}, "/etc/shadow"); !ok {
		t.Error(`bind_mounts ["/"] does not allow /etc/shadow`)
	}
}

func TestHarmlessSecurityOpt(t *testing.T) {
	harmless := []string{"no-new-privileges", "no-new-privileges=true", "no-new-privileges:true", "no-new-privileges=1"}
	harmful := []string{
		"seccomp=unconfined", "seccomp:unconfined", "apparmor=unconfined", "label=disable", "label:disable",
		"disable", "label=type:spc_t", "label=level:s0:c1", "systempaths=unconfined", "writable-cgroups=true",
		"no-new-privileges=false", "no-new-privileges=maybe", "no-new-privileges:true=x", "", "seccomp=builtin",
	}
	for _, o := range harmless {
		if !harmlessSecurityOpt(o) {
			t.Errorf("harmlessSecurityOpt(%q) = false, want true", o)
		}
	}
	for _, o := range harmful {
		if harmlessSecurityOpt(o) {
			t.Errorf("harmlessSecurityOpt(%q) = true, want false", o)
		}
	}
}

// TestCapabilityDenialNamesItOnce: a capability written as dockerd
// spells it is named once; another spelling is followed by dockerd's.
func TestCapabilityDenialNamesItOnce(t *testing.T) {
	p := mustPolicy(t, testConfig)
	cases := map[string]string{
		`["CAP_SYS_ADMIN"]`: `HostConfig.CapAdd adds "CAP_SYS_ADMIN", which is not allowed`,
		`["sys_admin"]`:     `HostConfig.CapAdd adds "sys_admin" (CAP_SYS_ADMIN), which is not allowed`,
		`["SYS_ADMIN"]`:     `HostConfig.CapAdd adds "SYS_ADMIN" (CAP_SYS_ADMIN), which is not allowed`,
	}
	for caps, want := range cases {
		d := decide(t, p, "ci-7", "ci", "POST", "/containers/create", `{"Image":"x","HostConfig":{"CapAdd":`+caps+`}}`)
		if d.Reason != want {
			t.Errorf("CapAdd %s: reason %q, want %q", caps, d.Reason, want)
		}
	}
}
