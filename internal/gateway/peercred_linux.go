package gateway

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// peerCred asks the kernel who connected: SO_PEERCRED gives the uid, gid
// and pid of the process as they were when it called connect(2), so the
// peer cannot change them afterwards.
func peerCred(c net.Conn) (uid, gid uint32, pid int32, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, 0, fmt.Errorf("not a unix socket connection: %T", c)
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, 0, err
	}
	var cred *unix.Ucred
	var sockErr error
	if err := raw.Control(func(fd uintptr) {
		cred, sockErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, err
	}
	if sockErr != nil {
		return 0, 0, 0, fmt.Errorf("failed to read SO_PEERCRED: %w", sockErr)
	}
	return cred.Uid, cred.Gid, cred.Pid, nil
}
