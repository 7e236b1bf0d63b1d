// Package dockerconf owns the client side of Docker configuration: docker
// contexts in Docker's own on-disk format, environment exports for the
// docker CLI, and the TLS settings that make dockerd trust only dockgate's
// certificates.
//
// Pure functions (parsing addresses, formatting exports, daemon.json, dockerd
// flags, meta.json and config.json edits) are kept apart from the few that
// touch the disk (WriteContext, ReadContext, UseContext, CurrentContext), so
// the formats can be tested and fuzzed without files.
//
// # Docker contexts
//
// The docker CLI keeps contexts under its configuration directory
// ($DOCKER_CONFIG, else ~/.docker), keyed by the SHA-256 of the context name:
//
//	contexts/meta/<sha256 of name>/meta.json          0755 dirs, 0644 file
//	contexts/tls/<sha256 of name>/docker/{ca,cert,key}.pem   0700 dirs, 0600 files
//
// WriteContext writes exactly that, with the docker CLI's permissions, and the
// same meta.json bytes `docker context create` writes, so every docker
// version that understands contexts reads ours. It never leaves a half-written
// context: the TLS files are staged in a private directory and swapped in as a
// whole, then meta.json (whose presence is what makes the context exist) is
// written atomically.
//
// UseContext sets "currentContext" in config.json and keeps every other key
// (auths, credHelpers, plugins, keys from future docker versions) byte for
// byte, in its original order.
//
// # Addresses
//
// ParseHost accepts what DOCKER_HOST accepts for TCP (tcp://HOST:PORT, or
// HOST:PORT) and rejects the mistakes that otherwise surface later as TLS
// errors: http:// schemes, a missing host, and 0.0.0.0 as the address a client
// dials ("certificate is valid for 127.0.0.1, not 0.0.0.0").
//
// # dockerd
//
// Daemon renders the same TLS settings three ways: dockerd flags, a
// daemon.json fragment, and a systemd drop-in that avoids dockerd's
// "specified both as a flag and in the configuration file: hosts" refusal.
package dockerconf
