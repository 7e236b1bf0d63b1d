package dockerconf

import (
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

func TestRenewServiceFiles(t *testing.T) {
	s := RenewService{Binary: "/opt/dock gate/bin/dockgate", Context: "prod", DockerConfig: "/home/al%ice/.docker"}
	if got, want := s.Name(), "dockgate-renew-prod"; got != want {
		t.Errorf("Name() = %q, want %q", got, want)
	}
	if got, want := s.SystemdUnitPath("/home/a/.config"), "/home/a/.config/systemd/user/dockgate-renew-prod.service"; got != want {
		t.Errorf("SystemdUnitPath() = %q, want %q", got, want)
	}
	unit := s.SystemdUnit()
	for _, want := range []string{
		`ExecStart="/opt/dock gate/bin/dockgate" "renew" "--context" "prod" "--watch"`,
		`Environment="DOCKER_CONFIG=/home/al%%ice/.docker"`, // % is a specifier in units
		"Restart=on-failure",
		"WantedBy=default.target",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("systemd unit lacks %q:\n%s", want, unit)
		}
	}

	plist := s.LaunchdPlist()
	dec := xml.NewDecoder(strings.NewReader(plist))
	var texts []string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the launchd plist is not XML: %v\n%s", err, plist)
		}
		if cd, ok := tok.(xml.CharData); ok && strings.TrimSpace(string(cd)) != "" {
			texts = append(texts, string(cd))
		}
	}
	got := strings.Join(texts, "|")
	if want := "io.dockgate.renew.prod|ProgramArguments|/opt/dock gate/bin/dockgate|renew|--context|prod|--watch|EnvironmentVariables|DOCKER_CONFIG|/home/al%ice/.docker"; !strings.Contains(got, want) {
		t.Errorf("plist values %q, want them to contain %q", got, want)
	}
	if task := s.WindowsTask(); !strings.Contains(task, `/TN "dockgate-renew-prod"`) || !strings.Contains(task, `renew --context prod --watch`) {
		t.Errorf("WindowsTask() = %s", task)
	}
}
