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
// # Inventory first
//
// Every certificate is in the inventory before it is signed: its row is
// committed as pending, then the certificate is signed, its bundle written
// into a fresh hidden directory, fsynced and renamed into place, and only
// then is the row completed (with, for a renewal, the replaced certificate
// marked superseded in the same transaction). A failure undoes the bundle
// and deletes the pending row. A crash leaves at worst a pending row, which
// the gateway refuses; the next issuance, under the state lock, removes
// what the interrupted one wrote and revokes its row (Recover).
//
// # Concurrency
//
// Issuing and renewing take an exclusive lock on the state directory
// (dockgate.lock, flock(2)), so two processes cannot both decide that a name
// is free. Serials are 128-bit random and the inventory refuses a duplicate,
// so even without the lock a serial is never reused.
package authority
