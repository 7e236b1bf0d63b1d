package enroll

import (
	"fmt"
	"testing"
	"time"
)

func BenchmarkParseToken(b *testing.B) {
	s := testToken(b).String()
	for b.Loop() {
		if _, err := ParseToken(s); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLogin is a whole enrollment on loopback: CA fetch and pin check,
// key and CSR, the token spent, the certificate signed and recorded. Making
// each token is outside the timing.
func BenchmarkLogin(b *testing.B) {
	env := newTestEnv(b, envOptions{})
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tok := env.token(fmt.Sprintf("bench%d", i), 1, time.Hour)
		b.StartTimer()
		if _, err := Login(ctx, tok, LoginOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
