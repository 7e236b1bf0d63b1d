//go:build !linux

package gateway

import "net"

// aliveCheck cannot look at the socket here; a request that fails on a
// reused connection is still retried on a fresh one.
type aliveCheck struct{}

func newAliveCheck(net.Conn) *aliveCheck { return nil }

func (*aliveCheck) peerGone() bool { return false }
