// Command dockgate gives a Docker host secure remote access: a certificate
// authority, a mutual-TLS gateway in front of the Docker socket with
// per-client policy, and client onboarding.
//
// This package is wiring only: it parses flags and calls into internal/.
package main

import (
	"os"

	// Mozilla's roots, embedded: a FROM scratch image without a CA bundle can
	// still verify public servers (enrollment URLs, registries), while a
	// system bundle and SSL_CERT_FILE / SSL_CERT_DIR, when present, still
	// win (crypto/x509.SetFallbackRoots). The size and start-up cost are in
	// docs/BENCHMARKS.md.
	_ "golang.org/x/crypto/x509roots/fallback"
)

func main() {
	args := os.Args[1:]
	if isDockerPlugin(os.Args[0]) {
		// Run by the docker CLI as docker-gate (see plugin.go).
		args = dockerPluginArgs(args, os.Setenv)
	}
	os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
}
