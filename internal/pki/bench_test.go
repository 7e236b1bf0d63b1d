package pki

import (
	"testing"
	"time"
)

// BenchmarkIssue measures issuing one leaf: generating its key and signing
// the certificate with a CA of the same key type. Key generation dominates
// for RSA, signing for nothing else.
func BenchmarkIssue(b *testing.B) {
	for _, kt := range KeyTypes() {
		b.Run(string(kt), func(b *testing.B) {
			ca := newTestCA(b, kt)
			now := time.Now()
			for b.Loop() {
				key, err := GenerateKey(kt)
				if err != nil {
					b.Fatal(err)
				}
				_, err = ca.Issue(LeafRequest{Kind: KindClient, Name: "bench", PublicKey: key.Public(), Now: now})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
