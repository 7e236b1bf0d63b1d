package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// FuzzCertBySerial feeds arbitrary user input (the NAME|SERIAL argument of
// revoke, say) to the serial lookup: it must never fail other than with
// ErrNotFound or ErrAmbiguous, and a match must really start with the input.
func FuzzCertBySerial(f *testing.F) {
	for _, seed := range []string{"abcd", "AB:CD:EF", "abcdef0123", "", "%", "_", "ab'cd", "abcdg", "0000"} {
		f.Add(seed)
	}
	ctx := context.Background()
	s := openTest(f, f.TempDir())
	for _, serial := range []string{"abcdef0123", "abcdff4567", "12345678"} {
		if err := s.AddCert(ctx, testCert(serial, KindClient, "c")); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, query string) {
		got, err := s.CertBySerial(ctx, query)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrAmbiguous) {
				t.Fatalf("CertBySerial(%q) error = %v, want ErrNotFound or ErrAmbiguous", query, err)
			}
			return
		}
		if !strings.HasPrefix(got.Serial, NormalizeSerial(query)) {
			t.Fatalf("CertBySerial(%q) = %s, which does not start with the query", query, got.Serial)
		}
	})
}
