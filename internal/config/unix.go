package config

import (
	"fmt"
	"path"
	"slices"
	"strconv"
)

// DefaultListenUnixMode lets the socket's owner (root) and group connect:
// with no listen_unix_group the group is root's, so only root can.
const DefaultListenUnixMode = "0660"

// UnixMode is listen_unix_mode as permission bits.
func (c *Config) UnixMode() (uint32, error) {
	m, err := strconv.ParseUint(c.ListenUnixMode, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%q is not an octal permission mode", c.ListenUnixMode)
	}
	return uint32(m), nil
}

func (c *Config) validateListenUnix(add addFunc) {
	if c.ListenUnix == "" {
		if c.ListenUnixGroup != "" {
			add("listen_unix_group", "is set without listen_unix", "set listen_unix: /run/dockgate/docker.sock or remove listen_unix_group")
		}
		return
	}
	if !path.IsAbs(c.ListenUnix) || path.Clean(c.ListenUnix) != c.ListenUnix {
		add("listen_unix", fmt.Sprintf("%q is not a clean absolute path", c.ListenUnix), "use e.g. /run/dockgate/docker.sock")
	}
	if _, err := c.UnixMode(); err != nil {
		add("listen_unix_mode", err.Error(), `use e.g. "0660" (owner and group may connect)`)
	}
}

// selectors counts how many of cn, group, uid, user and unix_group the
// rule sets; a valid rule sets exactly one.
func (r ClientRule) selectors() int {
	return countTrue(r.CN != "", r.Group != "", r.UID != nil, r.User != "", r.UnixGroup != "")
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// IsUnix reports whether the rule matches peers of the local socket
// (uid, user or unix_group) rather than certificates.
func (r ClientRule) IsUnix() bool {
	return r.UID != nil || r.User != "" || r.UnixGroup != ""
}

func (r ClientRule) validateUnix(field string, add addFunc) {
	if r.User != "" && !validUnixName(r.User) {
		add(field+".user", fmt.Sprintf("%q is not a user name", r.User), "use the login name from /etc/passwd, e.g. alice, or uid: NUMBER")
	}
	if r.UnixGroup != "" && !validUnixName(r.UnixGroup) {
		add(field+".unix_group", fmt.Sprintf("%q is not a group name", r.UnixGroup), "use the name from /etc/group, e.g. developers")
	}
}

// validUnixName accepts the names useradd and groupadd accept, and the
// wider set other user databases use, but never ':' (the passwd field
// separator), whitespace or a control character.
func validUnixName(s string) bool {
	if s == "" || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == ':' || c == 0x7f {
			return false
		}
	}
	return true
}

// MatchesPeer reports whether the rule matches a peer of the local socket:
// its uid, its user name, or one of its groups (primary or supplementary,
// by name). A certificate rule (cn, group) never matches a peer.
func (r ClientRule) MatchesPeer(uid uint32, user string, groups []string) bool {
	switch {
	case r.UID != nil:
		return *r.UID == uid
	case r.User != "":
		return r.User == user
	case r.UnixGroup != "":
		return slices.Contains(groups, r.UnixGroup)
	}
	return false
}
