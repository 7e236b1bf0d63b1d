package enroll

import (
	"bytes"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
)

func testToken(t testing.TB) Token {
	t.Helper()
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	tok := Token{Name: "alice", Addresses: []string{"gw.example:2386", "192.0.2.10:2386", "[2001:db8::1]:2386"}, Secret: secret}
	for i := range tok.CAPin {
		tok.CAPin[i] = byte(i)
	}
	return tok
}

func TestTokenRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Token)
	}{
		{"three addresses", func(*Token) {}},
		{"one address", func(tk *Token) { tk.Addresses = tk.Addresses[:1] }},
		{"longest name", func(tk *Token) { tk.Name = strings.Repeat("n", 64) }},
		{"most addresses", func(tk *Token) {
			tk.Addresses = nil
			for i := 0; i < MaxAddresses; i++ {
				tk.Addresses = append(tk.Addresses, "h"+strings.Repeat("x", i)+".example:1")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := testToken(t)
			tt.mutate(&want)
			s, err := want.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(s, TokenPrefix) {
				t.Errorf("token %q lacks the prefix %q", s, TokenPrefix)
			}
			if strings.ContainsAny(s, "+/=\"'\\ \n") {
				t.Errorf("token %q has characters that are not copy-paste safe", s)
			}
			got, err := ParseToken(s)
			if err != nil {
				t.Fatalf("ParseToken(%q): %v", s, err)
			}
			if got.Name != want.Name || !slices.Equal(got.Addresses, want.Addresses) ||
				got.CAPin != want.CAPin || got.Secret != want.Secret {
				t.Errorf("round trip: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestTokenIsCompact(t *testing.T) {
	tok := testToken(t)
	tok.Addresses = []string{"192.0.2.10:2386"}
	s := tok.String()
	// secret, pin, name with its length, address count, address with its
	// length, CRC-32: 75 bytes, 100 base64url characters.
	n := SecretSize + PinSize + 1 + len("alice") + 1 + 1 + len("192.0.2.10:2386") + crcSize
	if got, want := len(s), len(TokenPrefix)+base64.RawURLEncoding.EncodedLen(n); got != want {
		t.Errorf("token length %d, want %d: %s", got, want, s)
	}
}

func TestParseTokenIgnoresWhiteSpace(t *testing.T) {
	tok := testToken(t)
	s := tok.String()
	wrapped := "  " + s[:20] + "\n" + s[20:40] + "\r\n\t" + s[40:] + "\n"
	got, err := ParseToken(wrapped)
	if err != nil {
		t.Fatalf("ParseToken of a wrapped token: %v", err)
	}
	if got.Secret != tok.Secret {
		t.Error("wrapped token decoded to another secret")
	}
}

func TestParseTokenErrors(t *testing.T) {
	good := testToken(t).String()
	body := strings.TrimPrefix(good, TokenPrefix)
	flipped := []byte(body)
	// Another base64url character: valid encoding, different bytes.
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	tests := []struct {
		name, in string
		want     error
		msg      string
	}{
		{"empty", "", ErrNotToken, `should start with "dgt1."`},
		{"other text", "hello", ErrNotToken, "not a dockgate token"},
		{"future version", "dgt2." + body, ErrTokenVersion, `format "dgt2"`},
		{"truncated", good[:len(good)-5], ErrTokenDamaged, "incomplete or altered copy"},
		{"one character changed", TokenPrefix + string(flipped), ErrTokenDamaged, "checksum mismatch"},
		{"not base64url", TokenPrefix + "abc+def/", ErrTokenDamaged, "incomplete or altered copy"},
		{"too short", TokenPrefix + "AAA", ErrTokenDamaged, "too short"},
		{"valid checksum, short fields", encodeRaw([]byte{1, 2, 3}), ErrTokenMalformed, "secret truncated"},
		{"trailing bytes", encodeRaw(append(fields(t, testToken(t)), 0)), ErrTokenMalformed, "unexpected bytes"},
		{"no address", encodeRaw(fieldsWith(t, "alice", nil)), ErrTokenMalformed, "no gateway address"},
		{"bad name", encodeRaw(fieldsWith(t, "-alice", []string{"h:1"})), ErrTokenMalformed, "invalid name"},
		{"bad port", encodeRaw(fieldsWith(t, "alice", []string{"h:0"})), ErrTokenMalformed, "port must be"},
		{"no port", encodeRaw(fieldsWith(t, "alice", []string{"host"})), ErrTokenMalformed, "not HOST:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseToken(%q): got %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestEncodeRefusesInvalidTokens(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Token)
	}{
		{"no name", func(tk *Token) { tk.Name = "" }},
		{"long name", func(tk *Token) { tk.Name = strings.Repeat("n", 65) }},
		{"no address", func(tk *Token) { tk.Addresses = nil }},
		{"too many addresses", func(tk *Token) { tk.Addresses = slices.Repeat([]string{"h:1"}, MaxAddresses+1) }},
		{"address without port", func(tk *Token) { tk.Addresses = []string{"gw.example"} }},
		{"IPv6 without brackets", func(tk *Token) { tk.Addresses = []string{"2001:db8::1:2386"} }},
		{"URL", func(tk *Token) { tk.Addresses = []string{"https://gw:2386"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := testToken(t)
			tt.mutate(&tok)
			if s, err := tok.Encode(); err == nil {
				t.Fatalf("Encode accepted %+v as %s", tok, s)
			}
		})
	}
}

func TestHashSecret(t *testing.T) {
	a, b := testToken(t), testToken(t)
	if a.Secret == b.Secret {
		t.Fatal("two secrets are equal")
	}
	ha, hb := a.SecretHash(), b.SecretHash()
	if len(ha) != 32 || bytes.Equal(ha, hb) {
		t.Errorf("hashes %x and %x: want two distinct SHA-256 digests", ha, hb)
	}
	if bytes.Contains(ha, a.Secret[:]) {
		t.Error("the hash contains the secret")
	}
	if !bytes.Equal(ha, HashSecret(a.Secret[:])) {
		t.Error("SecretHash differs from HashSecret of the secret")
	}
}

// fields is a token's payload without its checksum.
func fields(t *testing.T, tok Token) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(tok.String(), TokenPrefix))
	if err != nil {
		t.Fatal(err)
	}
	return raw[:len(raw)-crcSize]
}

// fieldsWith builds a payload by hand, bypassing Encode's validation.
func fieldsWith(t *testing.T, name string, addrs []string) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write(make([]byte, SecretSize+PinSize))
	writeShortString(&b, name)
	b.WriteByte(byte(len(addrs)))
	for _, a := range addrs {
		writeShortString(&b, a)
	}
	return b.Bytes()
}
