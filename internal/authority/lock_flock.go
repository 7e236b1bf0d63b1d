//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package authority

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// lockIsExclusive: while the lock is held no other process issues, so
// pending rows and staging directories are leftovers (Recover).
const lockIsExclusive = true

// lockState takes an exclusive advisory lock on the state directory and
// returns the function that releases it. The kernel drops the lock if the
// process dies, so a crash never leaves the directory locked.
func lockState(stateDir string) (unlock func(), err error) {
	f, err := os.OpenFile(lockPath(stateDir), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to lock the state directory: %w", err)
	}
	fd := int(f.Fd())
	for {
		err = syscall.Flock(fd, syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to lock the state directory: %w", err)
	}
	return func() {
		syscall.Flock(fd, syscall.LOCK_UN)
		f.Close()
	}, nil
}
