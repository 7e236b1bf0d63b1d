package enroll

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"unicode"

	"github.com/dockgate/dockgate/internal/authority"
)

// TokenPrefix starts every token of format version 1. The version is in the
// prefix rather than in the payload so that a token of a future format is
// recognised as such before anything is decoded.
const TokenPrefix = "dgt1."

// Sizes in the token format.
const (
	// SecretSize is 128 bits, the floor for a secret that must not be
	// guessable online or offline; the server keeps only its SHA-256.
	SecretSize = 16
	// PinSize is a SHA-256 digest of the CA's SubjectPublicKeyInfo.
	PinSize = sha256.Size
	// MaxAddresses bounds the gateway addresses in one token: a host has a
	// handful of names and interface addresses, not dozens.
	MaxAddresses = 16
	// maxAddressLength fits any DNS name (253 octets, RFC 1035) with a port.
	maxAddressLength = 255
	crcSize          = 4
)

// Errors Parse returns, for errors.Is.
var (
	ErrNotToken       = errors.New("not a dockgate token")
	ErrTokenVersion   = errors.New("token format not supported by this dockgate")
	ErrTokenDamaged   = errors.New("token is damaged")
	ErrTokenMalformed = errors.New("token is malformed")
)

// Token is what a new client needs to enroll: where the gateway is, how to
// recognise its CA, and the one-time secret.
type Token struct {
	// Name is the identity the token was made for. The server decides the
	// identity from its own record; the name here is for messages and the
	// default context name.
	Name string
	// Addresses are HOST:PORT of the enrollment endpoint, tried in order.
	Addresses []string
	// CAPin is the SHA-256 of the CA certificate's SubjectPublicKeyInfo.
	CAPin [PinSize]byte
	// Secret proves the right to one enrollment.
	Secret [SecretSize]byte
}

// NewSecret returns a fresh random secret.
func NewSecret() ([SecretSize]byte, error) {
	var s [SecretSize]byte
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("failed to generate a token secret: %w", err)
	}
	return s, nil
}

// secretHashContext separates token hashes from any other SHA-256 of the
// same bytes.
const secretHashContext = "dockgate enrollment token v1\x00"

// HashSecret is what the store keeps instead of the secret. A salt would add
// nothing: the secret is 128 random bits, not a password.
func HashSecret(secret []byte) []byte {
	h := sha256.New()
	h.Write([]byte(secretHashContext))
	h.Write(secret)
	return h.Sum(nil)
}

// SecretHash is HashSecret of the token's secret.
func (t Token) SecretHash() []byte { return HashSecret(t.Secret[:]) }

// String encodes the token: TokenPrefix, then unpadded base64url (RFC 4648
// section 5) of
//
//	secret (16) | CA pin (32) | len(name) (1) | name |
//	count (1) | { len(address) (1) | address } | CRC-32 (4)
//
// The alphabet has no characters a shell, URL or YAML file would mangle,
// and the CRC-32 (IEEE) tells a damaged copy from a wrong token before the
// gateway is contacted.
func (t Token) String() string {
	s, err := t.Encode()
	if err != nil {
		return "<invalid token: " + err.Error() + ">"
	}
	return s
}

// Encode is String with an error for a token that cannot be encoded.
func (t Token) Encode() (string, error) {
	if err := t.validate(); err != nil {
		return "", err
	}
	var b bytes.Buffer
	b.Write(t.Secret[:])
	b.Write(t.CAPin[:])
	writeShortString(&b, t.Name)
	b.WriteByte(byte(len(t.Addresses)))
	for _, a := range t.Addresses {
		writeShortString(&b, a)
	}
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b.Bytes()), nil
}

func writeShortString(b *bytes.Buffer, s string) {
	b.WriteByte(byte(len(s)))
	b.WriteString(s)
}

// ParseToken decodes a token. White space anywhere is ignored, so a token
// wrapped by a mail client or a terminal still works.
func ParseToken(s string) (Token, error) {
	s = strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, s)
	payload, err := decodePayload(s)
	if err != nil {
		return Token{}, err
	}
	t, err := decodeFields(payload)
	if err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	if err := t.validate(); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	return t, nil
}

// decodePayload checks the prefix and the checksum and returns the fields.
func decodePayload(s string) ([]byte, error) {
	if !strings.HasPrefix(s, TokenPrefix) {
		if version, _, ok := strings.Cut(s, "."); ok && strings.HasPrefix(version, "dgt") {
			return nil, fmt.Errorf("%w (format %q; this dockgate reads %q)", ErrTokenVersion, version, strings.TrimSuffix(TokenPrefix, "."))
		}
		return nil, fmt.Errorf("%w: it should start with %q", ErrNotToken, TokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, TokenPrefix))
	if err != nil {
		return nil, fmt.Errorf("%w (incomplete or altered copy?): %v", ErrTokenDamaged, err)
	}
	if len(raw) < crcSize {
		return nil, fmt.Errorf("%w: too short (incomplete copy?)", ErrTokenDamaged)
	}
	payload, sum := raw[:len(raw)-crcSize], raw[len(raw)-crcSize:]
	if crc32.ChecksumIEEE(payload) != binary.BigEndian.Uint32(sum) {
		return nil, fmt.Errorf("%w: checksum mismatch (incomplete or altered copy?)", ErrTokenDamaged)
	}
	return payload, nil
}

// decodeFields reads the fields in String's layout; nothing may follow them.
func decodeFields(p []byte) (Token, error) {
	var t Token
	r := bytes.NewReader(p)
	if _, err := readFull(r, t.Secret[:], "secret"); err != nil {
		return t, err
	}
	if _, err := readFull(r, t.CAPin[:], "CA pin"); err != nil {
		return t, err
	}
	var err error
	if t.Name, err = readShortString(r, "name"); err != nil {
		return t, err
	}
	count, err := r.ReadByte()
	if err != nil {
		return t, errors.New("address count missing")
	}
	for i := 0; i < int(count); i++ {
		a, err := readShortString(r, fmt.Sprintf("address %d", i+1))
		if err != nil {
			return t, err
		}
		t.Addresses = append(t.Addresses, a)
	}
	if r.Len() != 0 {
		return t, fmt.Errorf("%d unexpected bytes at the end", r.Len())
	}
	return t, nil
}

func readFull(r *bytes.Reader, dst []byte, what string) (int, error) {
	n, _ := r.Read(dst)
	if n != len(dst) {
		return n, fmt.Errorf("%s truncated", what)
	}
	return n, nil
}

func readShortString(r *bytes.Reader, what string) (string, error) {
	n, err := r.ReadByte()
	if err != nil {
		return "", fmt.Errorf("%s missing", what)
	}
	buf := make([]byte, n)
	if _, err := readFull(r, buf, what); err != nil {
		return "", err
	}
	return string(buf), nil
}

// validate checks what Encode writes and Parse accepts.
func (t Token) validate() error {
	if err := authority.ValidateName(t.Name); err != nil {
		return err
	}
	if len(t.Addresses) == 0 {
		return errors.New("token has no gateway address")
	}
	if len(t.Addresses) > MaxAddresses {
		return fmt.Errorf("token has %d addresses, at most %d are allowed", len(t.Addresses), MaxAddresses)
	}
	for _, a := range t.Addresses {
		if err := ValidateAddress(a); err != nil {
			return err
		}
	}
	return nil
}

// ValidateAddress accepts HOST:PORT with a host name or IP address (IPv6 in
// brackets) and a port from 1 to 65535.
func ValidateAddress(addr string) error {
	if len(addr) > maxAddressLength {
		return fmt.Errorf("address %.40q... is longer than %d characters", addr, maxAddressLength)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q is not HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("address %q: port must be a number from 1 to 65535", addr)
	}
	if host == "" || strings.ContainsAny(host, "/@?#%[] \t\r\n") {
		return fmt.Errorf("address %q: invalid host", addr)
	}
	if strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return fmt.Errorf("address %q: invalid IPv6 address", addr)
	}
	return nil
}
