package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// Host names this gateway in a fleet and labels it. Client rules with
// hosts: selectors apply only on the gateways whose name and labels they
// match; the host registry (dockgate hosts) lists both.
type Host struct {
	// Name is the host's name in the registry and the docker context
	// login writes for it; empty means the server certificate's name, or
	// the machine's hostname when that is the default "gateway".
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

// SelectorName is the selector key that matches a host's name rather than
// one of its labels: "name=dock1". No label may use it.
const SelectorName = "name"

var (
	hostNameRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelKeyRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9._/-]{0,63}$`)
)

// ParseSelector splits a hosts: selector "KEY=VALUE".
func ParseSelector(s string) (key, value string, err error) {
	key, value, ok := strings.Cut(s, "=")
	switch {
	case !ok:
		return "", "", fmt.Errorf("%q is not KEY=VALUE", s)
	case !labelKeyRE.MatchString(key):
		return "", "", fmt.Errorf("%q has no valid key (letters, digits, '.', '_', '-', '/')", s)
	case !labelValueRE.MatchString(value):
		return "", "", fmt.Errorf("%q has a value with a character other than letters, digits, '.', '_', '-', '/'", s)
	}
	return key, value, nil
}

// ParseLabel reads a --label flag, KEY=VALUE, as a label of this host.
func ParseLabel(s string) (key, value string, err error) {
	key, value, err = ParseSelector(s)
	if err == nil && key == SelectorName {
		err = fmt.Errorf("%q: the key %q is the host's name, not a label (set --host-name)", s, SelectorName)
	}
	return key, value, err
}

// Matches reports whether every selector matches the host: "name=N" its
// name, any other "KEY=VALUE" its label KEY. No selectors match every
// host; a selector that does not parse matches none.
func (h Host) Matches(selectors []string) bool {
	for _, s := range selectors {
		key, value, err := ParseSelector(s)
		if err != nil {
			return false
		}
		if key == SelectorName {
			if h.Name != value {
				return false
			}
			continue
		}
		if v, ok := h.Labels[key]; !ok || v != value {
			return false
		}
	}
	return true
}

// LabelString writes the labels sorted, "env=prod,region=eu", or "no
// labels".
func (h Host) LabelString() string {
	if len(h.Labels) == 0 {
		return "no labels"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(h.Labels)) {
		parts = append(parts, k+"="+h.Labels[k])
	}
	return strings.Join(parts, ",")
}

// AppliesOn reports whether the rule applies on host h: its hosts:
// selectors all match (a rule without hosts: applies everywhere).
func (r ClientRule) AppliesOn(h Host) bool { return h.Matches(r.Hosts) }

func (c *Config) validateHost(add func(field, msg, hint string)) {
	if n := c.Host.Name; n != "" && !hostNameRE.MatchString(n) {
		add("host.name", fmt.Sprintf("%q is not a host name", n), "use letters, digits, '.', '_' and '-', at most 63, e.g. dock1")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Host.Labels)) {
		if _, _, err := ParseLabel(k + "=" + c.Host.Labels[k]); err != nil {
			add("host.labels."+k, err.Error(), "use KEY: VALUE with letters, digits, '.', '_', '-' and '/', e.g. env: prod")
		}
	}
}

func (r ClientRule) validateHosts(field string, add func(field, msg, hint string)) {
	for j, s := range r.Hosts {
		if _, _, err := ParseSelector(s); err != nil {
			add(fmt.Sprintf("%s.hosts[%d]", field, j), err.Error(), `use KEY=VALUE selectors of the host's labels, or name=HOST, e.g. hosts: ["env=staging"]`)
		}
	}
}

// DefaultHostName is the host's name when host.name and --host-name are
// unset: the server certificate's name, unless that is the default
// "gateway" every host has, then the machine's hostname (or "gateway"
// when it has none a host name may be).
func DefaultHostName(serverCert string, hostname func() (string, error)) string {
	if serverCert != DefaultServerCert {
		return serverCert
	}
	if h, err := hostname(); err == nil && hostNameRE.MatchString(h) {
		return h
	}
	return serverCert
}
