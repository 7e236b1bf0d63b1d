package dockerconf

import "golang.org/x/sys/unix"

// exchangeDirs swaps two existing paths in one step (renameat2 with
// RENAME_EXCHANGE, Linux 3.15+). File systems without it return an error and
// the caller falls back to a two-step rename.
func exchangeDirs(a, b string) error {
	return unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
}
