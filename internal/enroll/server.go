package enroll

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dockgate/dockgate/internal/authority"
	"github.com/dockgate/dockgate/internal/identity"
	"github.com/dockgate/dockgate/internal/pki"
	"github.com/dockgate/dockgate/internal/store"
)

// maxNameSuffix bounds the numbered names tried when a token's name
// already has a valid certificate (NAME-2 ... NAME-999). Token names are
// kept short enough for the suffix (MaxTokenNameLength).
const maxNameSuffix = 999

// MaxTokenNameLength leaves room for a "-999" suffix within the 64
// characters of a certificate name.
const MaxTokenNameLength = 60

// Server answers enrollment and renewal requests with the CA of Authority.
type Server struct {
	Authority *authority.Authority
	// GatewayPort is the Docker API port new clients are told to use.
	GatewayPort string
	// Limiter counts failed enrollments per source address; nil: no limit.
	Limiter *Limiter
	// Logger gets one audit line per attempt; never a secret.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// EnrollHandler serves the enrollment listener: POST EnrollPath and GET
// CAPath, and 404 for every other path, the Docker API's above all.
func (s *Server) EnrollHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+EnrollPath, s.serveEnroll)
	mux.HandleFunc("GET "+CAPath, s.serveCA)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == EnrollPath || r.URL.Path == CAPath {
			writeRefusal(w, http.StatusMethodNotAllowed, codeNotAllowed, r.Method+" is not allowed on "+r.URL.Path)
			return
		}
		writeRefusal(w, http.StatusNotFound, codeNotFound,
			"this port only enrolls new clients; the Docker API is on the gateway port, with a client certificate")
	})
	return mux
}

// RenewHandler serves POST RenewPath behind the gateway, which has verified
// the caller's certificate: identity.FromContext says who asks.
func (s *Server) RenewHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+RenewPath, s.serveRenew)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeRefusal(w, http.StatusNotFound, codeNotFound, "no such endpoint "+r.URL.Path)
	})
	return mux
}

// serveCA sends the CA certificate. It is public: the client checks it
// against the pin in its token before trusting anything.
func (s *Server) serveCA(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(pki.EncodeCertPEM(s.Authority.Cert()))
}

// attempt is one enrollment as the audit log records it.
type attempt struct {
	remote string
	token  string // the token's name, once known
	result string
	err    error
	cert   *x509.Certificate
}

func (s *Server) audit(event string, a attempt) {
	attrs := []any{"event", event, "remote", a.remote, "result", a.result}
	if a.token != "" {
		attrs = append(attrs, "token", a.token)
	}
	if a.cert != nil {
		attrs = append(attrs, "cn", a.cert.Subject.CommonName, "serial", pki.SerialHex(a.cert.SerialNumber),
			"not_after", a.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if a.err != nil {
		attrs = append(attrs, "err", a.err.Error())
	}
	level := slog.LevelInfo
	if a.result != "ok" {
		level = slog.LevelWarn
	}
	s.log().Log(context.Background(), level, event, attrs...)
}

func (s *Server) serveEnroll(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	a := attempt{remote: remoteIP(r)}
	release := func() {}
	if s.Limiter != nil {
		var ok bool
		var wait time.Duration
		if release, ok, wait = s.Limiter.Reserve(a.remote, now); !ok {
			a.result = codeRateLimited
			s.audit("enroll", a)
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)+1))
			writeRefusal(w, http.StatusTooManyRequests, codeRateLimited,
				fmt.Sprintf("too many failed attempts from %s: try again in %s", a.remote, wait.Round(time.Second)))
			return
		}
	}
	status, code, msg := s.enroll(w, r, now, &a)
	if status == http.StatusOK {
		release()
		a.result = "ok"
		s.audit("enroll", a)
		return
	}
	if status == http.StatusInternalServerError {
		release() // our failure, not the client's
	}
	a.result = code
	s.audit("enroll", a)
	writeRefusal(w, status, code, msg)
}

// enroll does the work of serveEnroll and writes the certificate on
// success; otherwise it returns the refusal to send.
func (s *Server) enroll(w http.ResponseWriter, r *http.Request, now time.Time, a *attempt) (status int, code, msg string) {
	var req enrollRequest
	if err := decodeBody(w, r, &req); err != nil {
		a.err = err
		return http.StatusBadRequest, codeBadRequest, err.Error()
	}
	secret, err := base64.RawURLEncoding.DecodeString(req.Secret)
	if err != nil || len(secret) != SecretSize {
		a.err = errors.New("malformed secret")
		return http.StatusBadRequest, codeBadRequest, "malformed token secret"
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		a.err = err
		return http.StatusBadRequest, codeBadRequest, err.Error()
	}
	kind := store.KindClient
	switch req.Kind {
	case "", store.KindClient:
		if len(req.SANs) > 0 {
			a.err = errors.New("SANs in a client request")
			return http.StatusBadRequest, codeBadRequest, "a client certificate has no DNS names or IP addresses"
		}
	case store.KindServer:
		kind = store.KindServer
		if err := checkJoinSANs(req.SANs); err != nil {
			a.err = err
			return http.StatusBadRequest, codeBadRequest, err.Error()
		}
	default:
		a.err = fmt.Errorf("unknown kind %q", req.Kind)
		return http.StatusBadRequest, codeBadRequest, fmt.Sprintf("unknown certificate kind %q", req.Kind)
	}
	tok, err := s.Authority.Store().ConsumeTokenOfKind(r.Context(), HashSecret(secret), kind, now)
	if err != nil {
		a.err = err
		return tokenRefusal(err)
	}
	a.token = tok.Name
	var cert *x509.Certificate
	if kind == store.KindServer {
		cert, err = s.Authority.SignCSR(r.Context(), csr, authority.Request{Kind: pki.KindServer, Name: tok.Name,
			SANs: req.SANs, Validity: time.Duration(tok.CertDays) * 24 * time.Hour, Now: now})
	} else {
		cert, err = s.signForToken(r.Context(), csr, tok, now)
	}
	if err != nil {
		a.err = err
		switch {
		case errors.Is(err, errNamesExhausted):
			return http.StatusConflict, codeNameExhausted, err.Error()
		case errors.Is(err, authority.ErrNameInUse):
			return http.StatusConflict, codeNameInUse, fmt.Sprintf("host %s already has a valid server certificate: "+
				"revoke it ('dockgate revoke %s') and create a new host token", tok.Name, tok.Name)
		}
		return http.StatusInternalServerError, codeInternal, "failed to issue the certificate; the gateway's log says why"
	}
	a.cert = cert
	s.writeCert(w, cert, s.GatewayPort)
	return http.StatusOK, "", ""
}

// tokenRefusal names a token problem. Saying which one leaks nothing: the
// token is looked up by its secret, so only its holder learns its state.
func tokenRefusal(err error) (int, string, string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return http.StatusForbidden, codeUnknownToken, "unknown token: check that it was copied whole, or ask for a new one"
	case errors.Is(err, store.ErrTokenUsed):
		return http.StatusForbidden, codeTokenUsed, "this token has already been used: ask for a new one"
	case errors.Is(err, store.ErrTokenExpired):
		return http.StatusForbidden, codeTokenExpired, "this token has expired: ask for a new one"
	case errors.Is(err, store.ErrTokenRevoked):
		return http.StatusForbidden, codeTokenRevoked, "this token has been revoked: ask for a new one"
	case errors.Is(err, store.ErrTokenKind):
		return http.StatusForbidden, codeTokenKind, "this token is for another kind of certificate: " +
			"a host token joins a gateway ('dockgate serve --join'), a client token logs in ('dockgate login'); it was not spent"
	}
	return http.StatusInternalServerError, codeInternal, "failed to check the token; the gateway's log says why"
}

var errNamesExhausted = errors.New("no free certificate name")

// checkJoinSANs checks the names a joining host asks for before its token
// is spent: at least one, at most MaxJoinSANs, each a DNS name or an IP
// address.
func checkJoinSANs(sans []string) error {
	if len(sans) == 0 {
		return errors.New("a server certificate needs at least one DNS name or IP address")
	}
	if len(sans) > MaxJoinSANs {
		return fmt.Errorf("%d names asked for, at most %d are allowed", len(sans), MaxJoinSANs)
	}
	if _, _, err := pki.ParseSANs(sans); err != nil {
		return fmt.Errorf("invalid name in the request: %v", err)
	}
	return nil
}

// signForToken signs csr as a client named after the token. When that name
// already has a valid certificate (a token for several machines, or a
// second enrollment), the next free NAME-2, NAME-3, ... is used, so that
// each machine has its own certificate and can be revoked alone.
func (s *Server) signForToken(ctx context.Context, csr *x509.CertificateRequest, tok store.Token, now time.Time) (*x509.Certificate, error) {
	req := authority.Request{Kind: pki.KindClient, Groups: tok.Groups,
		Validity: time.Duration(tok.CertDays) * 24 * time.Hour, Now: now}
	for n := 1; n <= maxNameSuffix; n++ {
		req.Name = tok.Name
		if n > 1 {
			req.Name = fmt.Sprintf("%s-%d", tok.Name, n)
		}
		cert, err := s.Authority.SignCSR(ctx, csr, req)
		if !errors.Is(err, authority.ErrNameInUse) {
			return cert, err
		}
	}
	return nil, fmt.Errorf("%w for token %s: %s-2 to %s-%d all have valid certificates", errNamesExhausted,
		tok.Name, tok.Name, tok.Name, maxNameSuffix)
}

func (s *Server) serveRenew(w http.ResponseWriter, r *http.Request) {
	a := attempt{remote: remoteIP(r)}
	id, ok := identity.FromContext(r.Context())
	if !ok {
		a.result = codeUnauthorized
		s.audit("renew", a)
		writeRefusal(w, http.StatusUnauthorized, codeUnauthorized, "renewal needs the client certificate being renewed")
		return
	}
	status, code, msg := s.renew(w, r, id, &a)
	if status == http.StatusOK {
		a.result = "ok"
		s.audit("renew", a)
		return
	}
	a.result = code
	s.audit("renew", a)
	writeRefusal(w, status, code, msg)
}

func (s *Server) renew(w http.ResponseWriter, r *http.Request, id *identity.Identity, a *attempt) (int, string, string) {
	var req renewRequest
	if err := decodeBody(w, r, &req); err != nil {
		a.err = err
		return http.StatusBadRequest, codeBadRequest, err.Error()
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		a.err = err
		return http.StatusBadRequest, codeBadRequest, err.Error()
	}
	cert, err := s.Authority.RenewCSR(r.Context(), csr, id.Serial, s.now())
	if err != nil {
		a.err = fmt.Errorf("renewing %s (serial %s): %w", id.CN, id.Serial, err)
		switch {
		case errors.Is(err, authority.ErrRenewRevoked):
			return http.StatusForbidden, codeRevoked, "certificate " + id.Serial + " is revoked: enroll again with a new token"
		case errors.Is(err, authority.ErrRenewExpired):
			return http.StatusForbidden, codeExpired, "certificate " + id.Serial + " has expired: enroll again with a new token"
		case errors.Is(err, store.ErrNotFound):
			return http.StatusForbidden, codeUnknownCert, "certificate " + id.Serial + " is not in this gateway's inventory"
		}
		return http.StatusInternalServerError, codeInternal, "failed to renew the certificate; the gateway's log says why"
	}
	a.cert = cert
	s.writeCert(w, cert, "")
	return http.StatusOK, "", ""
}

func (s *Server) writeCert(w http.ResponseWriter, cert *x509.Certificate, gatewayPort string) {
	writeJSON(w, http.StatusOK, certResponse{
		Name:        cert.Subject.CommonName,
		Serial:      pki.SerialHex(cert.SerialNumber),
		NotAfter:    cert.NotAfter.UTC(),
		Cert:        string(pki.EncodeCertPEM(cert)),
		CA:          string(pki.EncodeCertPEM(s.Authority.Cert())),
		GatewayPort: gatewayPort,
	})
}

// decodeBody reads one JSON object of at most maxRequestBytes, refusing
// unknown fields so a confused client hears about it.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed request: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed request: data after the JSON object")
	}
	return nil
}

// parseCSR parses and checks a CSR before a token is spent on it.
func parseCSR(data string) (*x509.CertificateRequest, error) {
	csr, err := pki.ParseCSRPEM([]byte(data))
	if err != nil {
		return nil, fmt.Errorf("malformed certificate request: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request has a bad signature: %v", err)
	}
	if _, err := pki.KeyTypeOf(csr.PublicKey); err != nil {
		return nil, fmt.Errorf("certificate request: %v", err)
	}
	return csr, nil
}

// remoteIP is the peer's address without the port: the key for rate
// limits. Forwarding headers are ignored; they are the client's to forge.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
