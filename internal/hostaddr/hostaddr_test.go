package hostaddr

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

func cidr(s string) net.Addr {
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	n.IP = ip
	return n
}

func TestSANs(t *testing.T) {
	fail := errors.New("no")
	addrs := []net.Addr{
		cidr("127.0.0.1/8"), cidr("::1/128"), cidr("192.0.2.10/24"),
		cidr("fe80::1/64"), cidr("169.254.3.4/16"), cidr("2001:db8::7/64"),
		&net.IPAddr{IP: net.ParseIP("198.51.100.5")}, cidr("192.0.2.10/24"),
	}
	tests := []struct {
		name string
		host Host
		want []string
	}{
		{
			name: "everything found",
			host: Host{
				Hostname:       func() (string, error) { return "Dock1", nil },
				LookupCNAME:    func(context.Context, string) (string, error) { return "dock1.example.net.", nil },
				InterfaceAddrs: func() ([]net.Addr, error) { return addrs, nil },
			},
			want: []string{"dock1", "dock1.example.net", "192.0.2.10", "2001:db8::7", "198.51.100.5", "localhost", "127.0.0.1", "::1"},
		},
		{
			name: "lookups fail",
			host: Host{
				Hostname:       func() (string, error) { return "", fail },
				LookupCNAME:    func(context.Context, string) (string, error) { t.Error("looked up an empty name"); return "", fail },
				InterfaceAddrs: func() ([]net.Addr, error) { return nil, fail },
			},
			want: []string{"localhost", "127.0.0.1", "::1"},
		},
		{
			name: "resolver knows nothing better",
			host: Host{
				Hostname:       func() (string, error) { return "dock1", nil },
				LookupCNAME:    func(context.Context, string) (string, error) { return "dock1.", nil },
				InterfaceAddrs: func() ([]net.Addr, error) { return nil, nil },
			},
			want: []string{"dock1", "localhost", "127.0.0.1", "::1"},
		},
		{
			name: "host name is already qualified",
			host: Host{
				Hostname:       func() (string, error) { return "dock1.example.net", nil },
				LookupCNAME:    func(context.Context, string) (string, error) { t.Error("looked up an FQDN"); return "", fail },
				InterfaceAddrs: func() ([]net.Addr, error) { return nil, nil },
			},
			want: []string{"dock1.example.net", "localhost", "127.0.0.1", "::1"},
		},
		{
			name: "resolver maps to localhost",
			host: Host{
				Hostname:       func() (string, error) { return "box", nil },
				LookupCNAME:    func(context.Context, string) (string, error) { return "localhost", nil },
				InterfaceAddrs: func() ([]net.Addr, error) { return nil, nil },
			},
			want: []string{"box", "localhost", "127.0.0.1", "::1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.host.SANs(context.Background()); !slices.Equal(got, tt.want) {
				t.Errorf("SANs() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSystemSANsIncludeLoopback(t *testing.T) {
	got := System().SANs(context.Background())
	for _, want := range loopbackSANs {
		if !slices.Contains(got, want) {
			t.Errorf("System().SANs() = %v, missing %s", got, want)
		}
	}
}
