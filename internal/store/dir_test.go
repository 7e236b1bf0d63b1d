package store

import (
	"path/filepath"
	"testing"
)

func TestResolveDir(t *testing.T) {
	cwd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		flag string
		env  map[string]string
		want string
	}{
		{"flag first", "/srv/flag", map[string]string{"DOCKGATE_HOME": "/srv/env", "XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}, "/srv/flag"},
		{"relative flag made absolute", "state", nil, filepath.Join(cwd, "state")},
		{"DOCKGATE_HOME", "", map[string]string{"DOCKGATE_HOME": "/srv/env", "XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}, "/srv/env"},
		{"relative DOCKGATE_HOME made absolute", "", map[string]string{"DOCKGATE_HOME": "st"}, filepath.Join(cwd, "st")},
		{"XDG_DATA_HOME", "", map[string]string{"XDG_DATA_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/dockgate"},
		{"relative XDG_DATA_HOME is ignored", "", map[string]string{"XDG_DATA_HOME": "xdg", "HOME": "/home/u"}, "/home/u/.local/share/dockgate"},
		{"HOME", "", map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/dockgate"},
	}
	for _, c := range cases {
		got, err := ResolveDir(c.flag, func(k string) string { return c.env[k] })
		if err != nil || got != c.want {
			t.Errorf("%s: ResolveDir = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}
