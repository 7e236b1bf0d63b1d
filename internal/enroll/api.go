package enroll

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dockgate/dockgate/internal/identity"
)

// Paths of the enrollment API. Enroll and CA are served by the enrollment
// listener, to clients without a certificate; Renew is served on the
// gateway's mutual-TLS port, to the holder of the certificate it renews.
const (
	EnrollPath = "/dockgate/v1/enroll"
	CAPath     = "/dockgate/v1/ca"
	RenewPath  = "/dockgate/v1/renew"
)

// maxRequestBytes bounds a request body: a CSR for an RSA-4096 key is under
// 2 KiB in PEM; 64 KiB leaves room without inviting memory abuse.
const maxRequestBytes = 64 << 10

// enrollRequest is the body of POST EnrollPath.
type enrollRequest struct {
	Secret string `json:"secret"` // the token's secret, unpadded base64url
	CSR    string `json:"csr"`    // PEM "CERTIFICATE REQUEST"
	// Kind is "server" for a host joining the fleet with a host token;
	// empty (a client) otherwise.
	Kind string `json:"kind,omitempty"`
	// SANs are the joining host's DNS names and IP addresses (server only).
	SANs []string `json:"sans,omitempty"`
}

// MaxJoinSANs bounds the names a joining host asks for: a host has a
// handful of names and interface addresses, not hundreds.
const MaxJoinSANs = 64

// renewRequest is the body of POST RenewPath.
type renewRequest struct {
	CSR string `json:"csr"`
}

// certResponse answers a successful enrollment or renewal.
type certResponse struct {
	Name     string    `json:"name"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"not_after"`
	Cert     string    `json:"cert"` // PEM
	CA       string    `json:"ca"`   // PEM
	// GatewayPort is the port of the Docker API (enrollment only): the
	// client reaches it on the host it enrolled through.
	GatewayPort string `json:"gateway_port,omitempty"`
}

// Refusal codes in error answers, so the client can name the problem
// without parsing the message.
const (
	codeBadRequest    = "bad_request"
	codeUnknownToken  = "unknown_token"
	codeTokenUsed     = "token_used"
	codeTokenExpired  = "token_expired"
	codeTokenRevoked  = "token_revoked"
	codeRateLimited   = "rate_limited"
	codeRevoked       = "certificate_revoked"
	codeExpired       = "certificate_expired"
	codeUnknownCert   = "unknown_certificate"
	codeInternal      = "internal"
	codeNotFound      = "not_found"
	codeNotAllowed    = "method_not_allowed"
	codeUnauthorized  = "unauthorized"
	codeNameExhausted = "name_exhausted"
	codeTokenKind     = "wrong_token_kind"
	codeNameInUse     = "name_in_use"
)

// errorResponse is Docker's error shape plus a code.
type errorResponse struct {
	Message string `json:"message"`
	Code    string `json:"code"`
}

// Errors the client returns for the server's refusals, for errors.Is.
var (
	ErrUnknownToken = errors.New("the gateway does not know this token")
	ErrTokenUsed    = errors.New("the token has already been used")
	ErrTokenExpired = errors.New("the token has expired")
	ErrTokenRevoked = errors.New("the token has been revoked")
	// ErrTokenKind: a host token used to log in, or a client token to join.
	ErrTokenKind   = errors.New("the token is for another kind of certificate")
	ErrRateLimited = errors.New("too many failed attempts from this address")
	ErrCertRevoked = errors.New("the certificate has been revoked")
	// ErrCertSuperseded: a renewal replaced the certificate.
	ErrCertSuperseded = errors.New("the certificate has been replaced by a renewal")
	ErrCertExpired    = errors.New("the certificate has expired")
	ErrCAMismatch     = errors.New("the gateway's CA does not match the token")
	// ErrNoHostList: the gateway does not serve HostsPath.
	ErrNoHostList = errors.New("the gateway does not list its fleet")
)

// codeErrors maps refusal codes to the client's errors.
var codeErrors = map[string]error{
	codeUnknownToken: ErrUnknownToken,
	codeTokenUsed:    ErrTokenUsed,
	codeTokenExpired: ErrTokenExpired,
	codeTokenRevoked: ErrTokenRevoked,
	codeTokenKind:    ErrTokenKind,
	codeRateLimited:  ErrRateLimited,
	codeRevoked:      ErrCertRevoked,
	codeExpired:      ErrCertExpired,
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeRefusal(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorResponse{Message: "dockgate: " + msg, Code: code})
}

// refusal is the gateway's error answer: its message, and the client's
// error for its code, for errors.Is.
type refusal struct {
	msg  string
	kind error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// refusedErrors maps the gateway's identity.RefusedHeader, on its answer
// to any request of a revoked or superseded certificate, to the client's
// errors.
var refusedErrors = map[string]error{
	"revoked":    ErrCertRevoked,
	"superseded": ErrCertSuperseded,
}

// refusalError turns an error answer into the client's error.
func refusalError(status int, header http.Header, body []byte) error {
	var e errorResponse
	if json.Unmarshal(body, &e) != nil || e.Message == "" {
		return fmt.Errorf("the gateway answered %d %s", status, http.StatusText(status))
	}
	kind := codeErrors[e.Code]
	if kind == nil {
		kind = refusedErrors[header.Get(identity.RefusedHeader)]
	}
	return &refusal{msg: strings.TrimPrefix(e.Message, "dockgate: "), kind: kind}
}
