//go:build !linux

package dockertest

import (
	"errors"
	"syscall"
)

func platformSupported() error {
	return errors.New("dockertest: a private dockerd needs Linux")
}

func sysProcAttr() *syscall.SysProcAttr       { return nil }
func killStrays(dir, cgroupName string) error { return nil }
func removeCgroups(name string) error         { return nil }
func unmountUnder(dir string) error           { return nil }
