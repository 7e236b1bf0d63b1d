package pki

import (
	"net"
	"strings"
	"testing"
)

func TestParseSAN(t *testing.T) {
	tests := []struct {
		in      string
		wantDNS string
		wantIP  string
		wantErr string
	}{
		{in: "localhost", wantDNS: "localhost"},
		{in: "docker.example.com", wantDNS: "docker.example.com"},
		{in: "Docker.Example.COM.", wantDNS: "docker.example.com"},
		{in: "*.example.com", wantDNS: "*.example.com"},
		{in: "host-1.internal", wantDNS: "host-1.internal"},
		{in: "127.0.0.1", wantIP: "127.0.0.1"},
		{in: "192.168.0.1", wantIP: "192.168.0.1"},
		{in: "::1", wantIP: "::1"},
		{in: "[2001:db8::7]", wantIP: "2001:db8::7"},
		{in: "fe80::1", wantIP: "fe80::1"},

		{in: "IP=192.168.0.1", wantErr: "pass the bare value (e.g. --san 192.168.0.1)"},
		{in: "IP:1.2.3.4", wantErr: "--san 1.2.3.4"},
		{in: "ip:1.2.3.4", wantErr: "--san 1.2.3.4"},
		{in: "DNS:docker.example.com", wantErr: "--san docker.example.com"},
		{in: "DNS=x", wantErr: "--san x"},
		{in: "email:a@b.c", wantErr: "openssl's email: syntax"},
		{in: "", wantErr: "empty"},
		{in: "a b", wantErr: "white space"},
		{in: " host", wantErr: "white space"},
		{in: "*", wantErr: "wildcard"},
		{in: "*.", wantErr: "wildcard"},
		{in: "a.*.example.com", wantErr: "wildcard is only allowed"},
		{in: "*foo.example.com", wantErr: "wildcard is only allowed"},
		{in: "foo.*", wantErr: "wildcard is only allowed"},
		{in: "under_score.example", wantErr: "contains '_'"},
		{in: "-lead.example", wantErr: "hyphen"},
		{in: "trail-.example", wantErr: "hyphen"},
		{in: "a..b", wantErr: "empty label"},
		{in: ".", wantErr: "not a DNS name"},
		{in: "192.168.0.256", wantErr: "numeric label"},
		{in: "1.2.3", wantErr: "numeric label"},
		{in: "[127.0.0.1]", wantErr: "contains '['"},
		{in: "fe80::1%eth0", wantErr: "contains ':'"},
		{in: "héllo.example", wantErr: "contains 'é'"},
		{in: strings.Repeat("a", 64) + ".example", wantErr: "longer than 63"},
		{in: strings.Repeat("abcdefg.", 32) + "com", wantErr: "longer than 253"},
		{in: "https://host", wantErr: "contains ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			dns, ip, err := ParseSAN(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSAN(%q) = %q, %v, %v; want error containing %q", tt.in, dns, ip, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSAN(%q): %v", tt.in, err)
			}
			if dns != tt.wantDNS {
				t.Errorf("dns = %q, want %q", dns, tt.wantDNS)
			}
			if tt.wantIP == "" && ip != nil || tt.wantIP != "" && !ip.Equal(net.ParseIP(tt.wantIP)) {
				t.Errorf("ip = %v, want %q", ip, tt.wantIP)
			}
		})
	}
}

func TestParseSANIPv4IsFourBytes(t *testing.T) {
	_, ip, err := ParseSAN("10.1.2.3")
	if err != nil || len(ip) != net.IPv4len {
		t.Fatalf("ParseSAN(10.1.2.3) = %v (%d bytes), %v; want 4 bytes", ip, len(ip), err)
	}
}

func TestParseSANs(t *testing.T) {
	dns, ips, err := ParseSANs([]string{"localhost", "127.0.0.1", "LOCALHOST", "::1", "127.0.0.1", "b.example"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dns, ",") != "localhost,b.example" {
		t.Errorf("dns = %q, want [localhost b.example]", dns)
	}
	if len(ips) != 2 || !ips[0].Equal(net.ParseIP("127.0.0.1")) || !ips[1].Equal(net.ParseIP("::1")) {
		t.Errorf("ips = %v, want [127.0.0.1 ::1]", ips)
	}
	if _, _, err := ParseSANs([]string{"ok", "IP:1.2.3.4"}); err == nil {
		t.Error("ParseSANs with openssl syntax: want error")
	}
}
