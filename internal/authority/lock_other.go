//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package authority

// lockState is a no-op where flock(2) does not exist. The CA runs on the
// Docker host (Linux); there, concurrent issuance of one name is serialised.
// Elsewhere serials still never repeat (random, and the inventory refuses
// duplicates); only the "name already in use" check can race.
func lockState(string) (func(), error) { return func() {}, nil }

// lockIsExclusive is false: another process may be issuing right now, so
// its pending rows and staging directories are not ours to clean up.
const lockIsExclusive = false
