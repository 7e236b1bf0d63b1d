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
	os.Exit(runArgv(os.Args))
}

// runArgv runs dockgate as argv says, as the docker CLI plugin when argv[0]
// is docker-gate.
func runArgv(argv []string) int {
	if isDockerPlugin(argv[0]) {
		// Run by the docker CLI as docker-gate (see plugin.go).
		return runPlugin(dockerPluginArgs(argv[1:], os.Setenv), os.Stdin, os.Stdout, os.Stderr)
	}
	return run(argv[1:], os.Stdin, os.Stdout, os.Stderr)
}
