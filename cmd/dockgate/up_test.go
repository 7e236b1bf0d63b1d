package main

import (
	"bytes"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/dockerconf"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// TestUpContextFollowsTheGateway: up's docker context is rewritten when
// the address it should dial or the admin certificate changed, and left
// alone otherwise.
func TestUpContextFollowsTheGateway(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	dockerCfg := filepath.Join(t.TempDir(), "docker")
	t.Setenv("DOCKGATE_HOME", state)
	t.Setenv("DOCKER_CONFIG", dockerCfg)
	mustRun := func(args ...string) {
		t.Helper()
		var errOut bytes.Buffer
		if code := run(args, strings.NewReader(""), io.Discard, &errOut); code != 0 {
			t.Fatalf("dockgate %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
		}
	}
	mustRun("init", "--insecure-no-passphrase")
	mustRun("issue", "client", upClientName, "--group", "admins")

	var out bytes.Buffer
	env := map[string]string{"DOCKGATE_HOME": state, "DOCKER_CONFIG": dockerCfg}
	a := &app{stdout: &out, stderr: io.Discard, getenv: func(k string) string { return env[k] }}
	steps := []struct {
		name, host, renew, want string
	}{
		{"first run", "tcp://127.0.0.1:2376", "", `Created docker context "dockgate" for tcp://127.0.0.1:2376`},
		{"same address", "tcp://127.0.0.1:2376", "", ""},
		{"--listen changed", "tcp://127.0.0.1:3376", "", `Updated docker context "dockgate" for tcp://127.0.0.1:3376`},
		{"admin renewed", "tcp://127.0.0.1:3376", upClientName, `Updated docker context "dockgate"`},
	}
	for _, s := range steps {
		if s.renew != "" {
			mustRun("renew", s.renew)
		}
		out.Reset()
		if err := a.ensureUpContext(state, s.host); err != nil {
			t.Fatalf("%s: ensureUpContext: %v", s.name, err)
		}
		if got := strings.TrimSpace(out.String()); (s.want == "") != (got == "") || !strings.Contains(got, s.want) {
			t.Errorf("%s: printed %q, want %q", s.name, got, s.want)
		}
		c, err := dockerconf.ReadContext(dockerCfg, upContextName)
		if err != nil {
			t.Fatal(err)
		}
		_, cert, _, err := dockerconf.FilesIn(filepath.Join(state, "clients", upClientName)).Load()
		if err != nil {
			t.Fatal(err)
		}
		if c.Host != s.host || !bytes.Equal(c.Cert, cert) {
			t.Errorf("%s: context dials %s with the %s certificate, want %s with the current one",
				s.name, c.Host, map[bool]string{true: "current", false: "old"}[bytes.Equal(c.Cert, cert)], s.host)
		}
	}
}

// TestUpTakesServeFlags: up is "serve with set-up", so every serve flag
// works on up too.
func TestUpTakesServeFlags(t *testing.T) {
	root := newRootCmd(&app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }})
	serve, _, err := root.Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	up, _, err := root.Find([]string{"up"})
	if err != nil {
		t.Fatal(err)
	}
	// The usage text names every flag as --NAME.
	for _, m := range regexp.MustCompile(`(?m)^ +(?:-., )?--([a-z-]+)`).FindAllStringSubmatch(serve.Flags().FlagUsages(), -1) {
		if up.Flags().Lookup(m[1]) == nil {
			t.Errorf("serve has --%s, up does not", m[1])
		}
	}
}

// TestUpRenewsItsAdminContext: the renewal up runs while it serves issues
// a new admin certificate and points the context "dockgate" at it.
func TestUpRenewsItsAdminContext(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	dockerCfg := filepath.Join(t.TempDir(), "docker")
	env := map[string]string{"DOCKGATE_HOME": state, "DOCKER_CONFIG": dockerCfg}
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return env[k] }}
	st, err := store.Open(state)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	auth, err := authority.Init(st, authority.InitOptions{CN: "up test CA"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := auth.Issue(t.Context(), authority.Request{Kind: pki.KindClient, Name: upClientName, Groups: []string{"admins"}})
	if err != nil {
		t.Fatal(err)
	}
	const host = "tcp://127.0.0.1:2376"
	if err := a.ensureUpContext(state, host); err != nil {
		t.Fatal(err)
	}
	renewed, err := a.upAdminRenewal(auth, state, host)(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if renewed.SerialNumber.Cmp(old.Cert.SerialNumber) == 0 {
		t.Fatal("the renewal kept the old serial")
	}
	c, err := dockerconf.ReadContext(dockerCfg, upContextName)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pki.ParseCertPEM(c.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(renewed.SerialNumber) != 0 {
		t.Errorf("context %q holds serial %x, want the renewed %x", upContextName, got.SerialNumber, renewed.SerialNumber)
	}
}
