// Package authority runs dockgate's certificate authority over the state
// directory: creating and loading the CA, issuing, renewing and revoking
// certificates, and producing CRLs. The CLI (init, issue, certs, revoke, crl,
// renew), `dockgate up` and enrollment call it, so the orchestration lives in
// one place.
//
// # Files
//
// The CA is ca/ca.pem and ca/ca-key.pem (encrypted PKCS#8 unless created
// without a passphrase). Every issued server or client keeps a bundle in
// Docker's layout, servers/NAME/ or clients/NAME/ with ca.pem, cert.pem and
// key.pem, and a row in the inventory (internal/store).
//
// # Nothing half-written
//
// A bundle is written into a fresh hidden directory, fsynced, then renamed
// into place; the inventory row is added only after that, and if adding it
// fails the new directory is removed and any previous bundle restored. The
// inventory row is the commit point: a certificate either has both its files
// and its row, or neither.
//
// # Concurrency
//
// Issuing and renewing take an exclusive lock on the state directory
// (dockgate.lock, flock(2)), so two processes cannot both decide that a name
// is free. Serials are 128-bit random and the inventory refuses a duplicate,
// so even without the lock a serial is never reused.
package authority
