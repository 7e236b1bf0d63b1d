// Package pki owns dockgate's certificates: the CA and leaf templates,
// issuance, key and certificate encodings, and certificate revocation lists.
//
// The package is pure: it never touches the file system or the network. The
// only outside input is crypto/rand. Callers (internal/authority) decide where
// keys and certificates live.
//
// # Templates
//
// The CA is constrained to issuing leaves only (BasicConstraints CA with a
// path length of zero), may sign certificates and CRLs, and carries no
// extended key usage. Server certificates are good for serverAuth only and
// client certificates for clientAuth only, so a server certificate can never
// be used to log in and a client certificate can never impersonate the
// daemon. Client groups are carried in the subject's Organization, as
// Kubernetes does.
//
// Every certificate gets a 128-bit random serial, a SubjectKeyId computed from
// its public key (RFC 5280 method 1) and, for leaves, an AuthorityKeyId equal
// to the CA's SubjectKeyId. Validity starts a minute in the past to tolerate
// clock skew and never extends beyond the CA's own expiry.
//
// # Keys
//
// Keys are written as PKCS#8. With a passphrase they are encrypted PKCS#8
// (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) as produced by
// go.step.sm/crypto/pemutil and understood by openssl. Reading also accepts
// the SEC 1 and PKCS#1 encodings and legacy PEM encryption, so keys from the
// classic openssl recipe load too.
//
// # Names
//
// Serial numbers are shown as lower-case hex without separators (SerialHex),
// fingerprints as lower-case hex SHA-256 of the DER certificate (Fingerprint).
package pki
