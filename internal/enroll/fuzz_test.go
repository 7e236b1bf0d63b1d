package enroll

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// encodeRaw wraps a payload with a valid checksum, so the fuzzer and the
// tests reach the field decoder.
func encodeRaw(payload []byte) string {
	raw := binary.BigEndian.AppendUint32(append([]byte(nil), payload...), crc32.ChecksumIEEE(payload))
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// FuzzParseToken checks that ParseToken never panics, and that whatever it
// accepts encodes back to a token that parses to the same fields.
func FuzzParseToken(f *testing.F) {
	tok := testToken(f)
	f.Add(tok.String())
	f.Add("")
	f.Add(TokenPrefix)
	f.Add("dgt2.AAAA")
	f.Add(encodeRaw([]byte{1, 2, 3}))
	f.Add(encodeRaw(make([]byte, SecretSize+PinSize+2)))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseToken(s)
		if err != nil {
			return
		}
		again, err := ParseToken(got.String())
		if err != nil {
			t.Fatalf("re-encoded token does not parse: %v", err)
		}
		if again.Name != got.Name || again.Secret != got.Secret || again.CAPin != got.CAPin ||
			len(again.Addresses) != len(got.Addresses) {
			t.Fatalf("round trip changed the token: %+v -> %+v", got, again)
		}
		for i := range got.Addresses {
			if again.Addresses[i] != got.Addresses[i] {
				t.Fatalf("address %d changed: %q -> %q", i, got.Addresses[i], again.Addresses[i])
			}
		}
	})
}
