package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestDoctorEndpointSelection(t *testing.T) {
	certDir := t.TempDir()
	for _, name := range []string{"ca.pem", "cert.pem", "key.pem"} {
		os.WriteFile(filepath.Join(certDir, name), []byte(name), 0o600)
	}
	tests := []struct {
		name               string
		env                map[string]string
		args               []string
		host, source       string
		tls, verify, files bool
		err                string
	}{
		{"-H alone is plain TCP", nil, []string{"-H", "tcp://h:2375"}, "tcp://h:2375", "-H", false, false, false, ""},
		{"-H with --tlsverify reads DOCKER_CERT_PATH", map[string]string{"DOCKER_CERT_PATH": certDir},
			[]string{"-H", "h:2376", "--tlsverify"}, "tcp://h:2376", "-H", true, true, true, ""},
		{"--tls without verification", map[string]string{"DOCKER_CERT_PATH": certDir},
			[]string{"-H", "tcp://h:2376", "--tls"}, "tcp://h:2376", "-H", true, false, true, ""},
		{"DOCKER_HOST and DOCKER_TLS_VERIFY", map[string]string{"DOCKER_HOST": "tcp://e:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": certDir},
			nil, "tcp://e:2376", "DOCKER_HOST", true, true, true, ""},
		{"DOCKER_TLS turns TLS on", map[string]string{"DOCKER_HOST": "tcp://e:2376", "DOCKER_TLS": "1", "DOCKER_CERT_PATH": certDir},
			nil, "tcp://e:2376", "DOCKER_HOST", true, false, true, ""},
		{"--tlsverify=false overrides the environment", map[string]string{"DOCKER_HOST": "tcp://e:2376", "DOCKER_TLS_VERIFY": "1"},
			[]string{"--tlsverify=false"}, "tcp://e:2376", "DOCKER_HOST", false, false, false, ""},
		{"-H wins over DOCKER_HOST", map[string]string{"DOCKER_HOST": "tcp://e:2376"}, []string{"-H", "tcp://f:1"}, "tcp://f:1", "-H", false, false, false, ""},
		{"a missing --tlscert is an error", nil, []string{"-H", "tcp://h:2376", "--tlsverify", "--tlscert", "/nonexistent/cert.pem"}, "", "", false, false, false, "failed to read /nonexistent/cert.pem"},
		{"context and -H together", nil, []string{"--context", "x", "-H", "tcp://h:1"}, "", "", false, false, false, "give one"},
		{"an http:// host", nil, []string{"-H", "http://h:2375"}, "", "", false, false, false, "http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"DOCKER_CONFIG": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			a := &app{getenv: func(k string) string { return env[k] }, stdout: io.Discard, stderr: io.Discard}
			cmd := &cobra.Command{Use: "doctor"}
			var f endpointFlags
			addEndpointCheckFlags(cmd, &f)
			if err := cmd.ParseFlags(tt.args); err != nil {
				t.Fatal(err)
			}
			opts, err := a.endpointOptions(cmd, f)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %+v, %v; want an error saying %q", opts, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if opts.Host != tt.host || opts.Source != tt.source || opts.TLS != tt.tls || opts.Verify != tt.verify {
				t.Errorf("got host %q source %q tls %v verify %v; want %q %q %v %v",
					opts.Host, opts.Source, opts.TLS, opts.Verify, tt.host, tt.source, tt.tls, tt.verify)
			}
			if got := string(opts.CA) == "ca.pem" && string(opts.Cert) == "cert.pem" && string(opts.Key) == "key.pem"; got != tt.files {
				t.Errorf("files from DOCKER_CERT_PATH read = %v, want %v", got, tt.files)
			}
		})
	}
}
