// Package enroll owns onboarding: one-time tokens, the enrollment endpoint
// that trades a token for a client certificate, the client that does so
// without its private key ever leaving the machine, and renewal.
//
// # Tokens
//
// A token (see [Token.String]) carries the gateway's enrollment addresses,
// the SHA-256 of the CA's SubjectPublicKeyInfo, a 128-bit secret and the
// name it was made for. The state directory keeps only a hash of the
// secret ([HashSecret]); [store.Store.ConsumeToken] spends a use in one
// write transaction, so of concurrent logins with a single-use token
// exactly one wins.
//
// # Enrolling
//
// [Login] fetches the CA certificate from the enrollment endpoint over an
// unverified connection, checks its key against the token's pin and the
// server's certificate against it, and stops at a mismatch (a wrong token
// or an interception). Only then does it send the secret, over a connection
// verified against the pinned CA, together with a CSR for a key it has just
// made. The gateway decides the identity: the token's name and groups,
// never anything from the CSR.
//
// # Joining a host
//
// A host token ([TokenSpec.Host]) yields the server certificate of a host
// joining the fleet instead: [Join] checks the CA as Login does, then sends
// the secret with a CSR and the host's names, and receives a serverAuth
// certificate named after the token and the CA certificate, never the CA
// key. A host token gives no client certificate and a client token no
// server certificate; the store refuses the other kind without spending
// the token ([store.Store.ConsumeTokenOfKind]).
//
// # Where enrollment is served
//
// The Docker API port refuses every connection without a client
// certificate at the handshake. Enrollment is therefore on its own port
// ([Server.Serve]), which serves only [EnrollPath] and [CAPath]. A bug in
// routing can then never expose the Docker API to a certificate-less
// client: the two ports share no handler. Failed attempts are counted per
// source address ([Limiter]) and every attempt is logged, without the
// secret.
//
// # Renewal
//
// A client renews over mutual TLS with its current certificate
// ([Gateway.Renew], served by [Server.RenewHandler] behind the gateway).
// Revoked certificates are refused at the handshake, expired ones cannot
// complete it; both must enroll again. [Watcher] renews at two thirds of
// the lifetime, with jitter.
package enroll
