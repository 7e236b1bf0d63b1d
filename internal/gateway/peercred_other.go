//go:build !linux

package gateway

import (
	"errors"
	"net"
)

// peerCred needs SO_PEERCRED, which this system does not have.
func peerCred(net.Conn) (uid, gid uint32, pid int32, err error) {
	return 0, 0, 0, errors.New("listen_unix needs Linux (SO_PEERCRED)")
}
