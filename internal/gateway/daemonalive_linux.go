package gateway

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"
)

// aliveCheck looks at an idle connection's socket before it is reused.
// It is made once per connection so that a check allocates nothing.
type aliveCheck struct {
	raw  syscall.RawConn
	fn   func(fd uintptr) bool
	gone bool
	b    [1]byte
}

// newAliveCheck returns nil when conn is not a socket.
func newAliveCheck(conn net.Conn) *aliveCheck {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	c := &aliveCheck{raw: raw}
	c.fn = c.peek
	return c
}

// peerGone reports whether the socket has something to read: the daemon
// closed it (end of file, a reset) or sent bytes nobody asked for. Either
// way it cannot carry a request. One non-blocking recv(MSG_PEEK) of a
// byte, without the source address, costs about a microsecond.
func (c *aliveCheck) peerGone() bool {
	if c == nil {
		return false
	}
	c.gone = false
	err := c.raw.Read(c.fn)
	return c.gone || err != nil
}

func (c *aliveCheck) peek(fd uintptr) bool {
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.b[0])), 1,
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			c.gone = errno != syscall.EAGAIN
			return true
		}
	}
}
