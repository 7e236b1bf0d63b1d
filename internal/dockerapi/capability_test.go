package dockerapi

import "testing"

func TestNormalizeCapability(t *testing.T) {
	cases := []struct {
		in    string
		want  string
		known bool
	}{
		{"SYS_ADMIN", "CAP_SYS_ADMIN", true},
		{"CAP_SYS_ADMIN", "CAP_SYS_ADMIN", true},
		{"sys_admin", "CAP_SYS_ADMIN", true},
		{"cap_sys_admin", "CAP_SYS_ADMIN", true},
		{"Cap_Net_Bind_Service", "CAP_NET_BIND_SERVICE", true},
		{"sys_admın", "CAP_SYS_ADMIN", true}, // dotless i upper-cases to I
		{"ſys_admin", "CAP_SYS_ADMIN", true}, // long s upper-cases to S
		{"ALL", "ALL", true},
		{"all", "ALL", true},
		{"CAP_ALL", "CAP_ALL", false},
		{"NOPE", "CAP_NOPE", false},
		{" SYS_ADMIN", "CAP_ SYS_ADMIN", false},
		{"", "CAP_", false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, known := NormalizeCapability(tc.in)
			if got != tc.want || known != tc.known {
				t.Errorf("NormalizeCapability(%q) = %q, %v; want %q, %v", tc.in, got, known, tc.want, tc.known)
			}
		})
	}
}

func TestCapabilityListIsComplete(t *testing.T) {
	// Capability numbers 0..40 on current kernels.
	if got, want := len(capabilities), 41; got != want {
		t.Errorf("%d capabilities, want %d", got, want)
	}
}
