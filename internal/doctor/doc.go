// Package doctor holds dockgate's diagnostics: checks that explain a failure
// in one sentence and say how to fix it.
//
// # Why trust gets its own checks
//
// A CGO-free Go binary verifies servers against the CA bundle it finds at a
// handful of well-known paths (see [GoBundleFiles] and [GoBundleDirs]). In a
// FROM scratch image none of them exist, and every outbound TLS connection
// fails with "x509: certificate signed by unknown authority". The error names
// the server, not the missing file, so people look in the wrong place.
//
// The checks here look where Go looks:
//
//   - [InspectTrust] reports which roots the running binary would use: the
//     bundle files and directories, SSL_CERT_FILE and SSL_CERT_DIR, and the
//     roots embedded by golang.org/x/crypto/x509roots/fallback.
//   - [CheckTLS] dials a server and turns a handshake failure (unknown
//     authority, expiry, wrong name, wrong key usage, protocol version,
//     refused connection, DNS) into a sentence and a fix.
//   - [InspectImage] reads an image's merged filesystem through the Docker API
//     and decides whether its entrypoint can make outbound TLS connections:
//     a CA bundle where Go or OpenSSL reads it, SSL_CERT_FILE in the image
//     environment, a static or dynamic entrypoint, embedded fallback roots.
//   - [CheckHealth] is the probe behind the image's HEALTHCHECK, which has no
//     shell or curl to call.
//
// # Reading images
//
// An image is exported once to a temporary file (the save format puts the
// manifest after the layers), then its layers are applied in order with the
// OCI whiteout rules into an in-memory tree that serves file contents
// straight from the export. The tree is an [io/fs.FS] with symbolic links
// resolved inside the image, so the same root-loading code reads the local
// machine and an image.
package doctor
