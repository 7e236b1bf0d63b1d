//go:build !linux

package dockerconf

import "errors"

// exchangeDirs has no portable implementation; the caller falls back to a
// two-step rename.
func exchangeDirs(a, b string) error {
	return errors.ErrUnsupported
}
