// Command dockgate gives a Docker host secure remote access: a certificate
// authority, a mutual-TLS gateway in front of the Docker socket with
// per-client policy, and client onboarding.
//
// This package is wiring only: it parses flags and calls into internal/.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
