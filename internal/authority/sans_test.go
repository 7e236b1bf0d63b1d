package authority

import (
	"net"
	"slices"
	"testing"
)

func TestIsContainerBridge(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"docker0", true},
		{"br-3f2a9c1d7e6b", true},
		{"veth1a2b3c4", true},
		{"virbr0", true},
		{"cni0", true},
		{"flannel.1", true},
		{"podman0", true},
		{"eth0", false},
		{"ens3", false},
		{"enp0s31f6", false},
		{"wlan0", false},
		{"bond0", false},
		{"wg0", false},
	}
	for _, tt := range tests {
		if got := isContainerBridge(tt.name); got != tt.want {
			t.Errorf("isContainerBridge(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestDialableIPs(t *testing.T) {
	var addrs []net.Addr
	for _, cidr := range []string{"192.0.2.10/24", "127.0.0.1/8", "::1/128", "fe80::1/64", "2001:db8::7/64"} {
		ip, ipnet, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		ipnet.IP = ip
		addrs = append(addrs, ipnet)
	}
	var got []string
	for _, ip := range dialableIPs(addrs) {
		got = append(got, ip.String())
	}
	if want := []string{"192.0.2.10", "2001:db8::7"}; !slices.Equal(got, want) {
		t.Errorf("dialableIPs() = %v, want %v", got, want)
	}
}
