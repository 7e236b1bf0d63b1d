package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

func testToken(name string, uses int) Token {
	h := sha256.Sum256([]byte("secret-" + name))
	return Token{
		Name:       name,
		SecretHash: h[:],
		Groups:     []string{"dev"},
		CertDays:   30,
		UsesLeft:   uses,
		ExpiresAt:  epoch.Add(time.Hour),
		CreatedAt:  epoch,
	}
}

func TestAddTokenAndList(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		want := testToken("laptop", 1)
		if err := s.AddToken(ctx, want); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, testToken("laptop", 2)); !errors.Is(err, ErrDuplicateToken) {
			t.Errorf("AddToken(same name) error = %v, want ErrDuplicateToken", err)
		}
		invalid := []struct {
			name   string
			mutate func(*Token)
		}{
			{"no name", func(t *Token) { t.Name = "" }},
			{"no hash", func(t *Token) { t.SecretHash = nil }},
			{"no uses", func(t *Token) { t.UsesLeft = 0 }},
			{"no cert days", func(t *Token) { t.CertDays = 0 }},
			{"no expiry", func(t *Token) { t.ExpiresAt = time.Time{} }},
		}
		for _, tt := range invalid {
			t.Run(tt.name, func(t *testing.T) {
				tok := testToken("other", 1)
				tt.mutate(&tok)
				if err := s.AddToken(ctx, tok); err == nil {
					t.Error("AddToken() succeeded, want an error")
				}
			})
		}
		got, err := s.Tokens(ctx)
		if err != nil || len(got) != 1 {
			t.Fatalf("Tokens() = %v, %v; want one", got, err)
		}
		g := got[0]
		if g.Name != want.Name || string(g.SecretHash) != string(want.SecretHash) || !slices.Equal(g.Groups, want.Groups) ||
			g.CertDays != want.CertDays || g.UsesLeft != want.UsesLeft || !g.ExpiresAt.Equal(want.ExpiresAt) ||
			!g.CreatedAt.Equal(want.CreatedAt) || g.Revoked() {
			t.Errorf("Tokens()[0] = %+v, want %+v", g, want)
		}
	})
}

func TestConsumeToken(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		for _, tok := range []Token{testToken("once", 1), testToken("twice", 2), testToken("revoked", 5)} {
			if err := s.AddToken(ctx, tok); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.RevokeToken(ctx, "revoked", epoch); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "revoked", epoch); !errors.Is(err, ErrAlreadyRevoked) {
			t.Errorf("RevokeToken() twice error = %v, want ErrAlreadyRevoked", err)
		}
		if err := s.RevokeToken(ctx, "nobody", epoch); !errors.Is(err, ErrNotFound) {
			t.Errorf("RevokeToken(unknown) error = %v, want ErrNotFound", err)
		}
		now := epoch.Add(time.Minute)
		tests := []struct {
			name     string
			token    string
			now      time.Time
			wantUses int
			wantErr  error
		}{
			{name: "first use", token: "once", now: now, wantUses: 0},
			{name: "second use of single-use", token: "once", now: now, wantErr: ErrTokenUsed},
			{name: "multi-use", token: "twice", now: now, wantUses: 1},
			{name: "expired", token: "twice", now: epoch.Add(time.Hour), wantErr: ErrTokenExpired},
			{name: "multi-use last", token: "twice", now: now, wantUses: 0},
			{name: "revoked", token: "revoked", now: now, wantErr: ErrTokenRevoked},
			{name: "unknown", token: "nobody", now: now, wantErr: ErrNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := s.ConsumeToken(ctx, testToken(tt.token, 1).SecretHash, tt.now)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("ConsumeToken() error = %v, want %v", err, tt.wantErr)
					}
					return
				}
				if err != nil || got.Name != tt.token || got.UsesLeft != tt.wantUses {
					t.Errorf("ConsumeToken() = %s with %d uses left, %v; want %s with %d", got.Name, got.UsesLeft, err, tt.token, tt.wantUses)
				}
			})
		}
	})
}

// TestConsumeTokenConcurrently races consumers on goroutines spread over
// several handles: exactly as many win as the token has uses.
func TestConsumeTokenConcurrently(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		for _, uses := range []int{1, 3} {
			t.Run(string(rune('0'+uses))+" uses", func(t *testing.T) {
				const handles, perHandle = 4, 5
				ctx := context.Background()
				dir := t.TempDir()
				tok := testToken("race", uses)
				if err := b.open(t, dir).AddToken(ctx, tok); err != nil {
					t.Fatal(err)
				}
				var wins, used int
				var mu sync.Mutex
				var wg sync.WaitGroup
				start := make(chan struct{})
				for range handles {
					s := b.open(t, dir)
					for range perHandle {
						wg.Go(func() {
							<-start
							_, err := s.ConsumeToken(ctx, tok.SecretHash, epoch)
							mu.Lock()
							defer mu.Unlock()
							switch {
							case err == nil:
								wins++
							case errors.Is(err, ErrTokenUsed):
								used++
							default:
								t.Errorf("ConsumeToken() error = %v", err)
							}
						})
					}
				}
				close(start)
				wg.Wait()
				if wins != uses || used != handles*perHandle-uses {
					t.Errorf("%d wins and %d 'used' errors, want %d and %d", wins, used, uses, handles*perHandle-uses)
				}
			})
		}
	})
}

// A spent token's name is free again: revoked, used up or expired, a new
// token may take it, and the old row stays listed.
func TestAddTokenReusesSpentName(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		spend := map[string]func(s *Store, tok Token) Token{
			"revoked": func(s *Store, tok Token) Token {
				if err := s.RevokeToken(ctx, tok.Name, epoch); err != nil {
					t.Fatal(err)
				}
				return tok
			},
			"used": func(s *Store, tok Token) Token {
				if _, err := s.ConsumeToken(ctx, tok.SecretHash, epoch); err != nil {
					t.Fatal(err)
				}
				return tok
			},
			"expired": func(_ *Store, tok Token) Token {
				tok.CreatedAt = tok.ExpiresAt // the new token is made after the old one expired
				return tok
			},
		}
		for name, spendFn := range spend {
			t.Run(name, func(t *testing.T) {
				s := b.open(t, t.TempDir())
				old := testToken("bob", 1)
				if err := s.AddToken(ctx, old); err != nil {
					t.Fatal(err)
				}
				next := spendFn(s, testToken("bob", 1))
				h := sha256.Sum256([]byte("second secret"))
				next.SecretHash = h[:]
				next.ExpiresAt = next.CreatedAt.Add(time.Hour)
				if err := s.AddToken(ctx, next); err != nil {
					t.Fatalf("AddToken(bob again) = %v, want nil", err)
				}
				toks, err := s.Tokens(ctx)
				if err != nil || len(toks) != 2 {
					t.Fatalf("Tokens() = %v, %v; want two", toks, err)
				}
				got, err := s.ConsumeToken(ctx, h[:], next.CreatedAt)
				if err != nil || got.Name != "bob" {
					t.Errorf("ConsumeToken(new bob) = %+v, %v; want the new token", got, err)
				}
			})
		}
	})
}

// RevokeToken revokes the newest token of a name, not a spent older one.
func TestRevokeTokenTakesNewest(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		if err := s.AddToken(ctx, testToken("bob", 1)); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "bob", epoch); err != nil {
			t.Fatal(err)
		}
		next := testToken("bob", 1)
		h := sha256.Sum256([]byte("second secret"))
		next.SecretHash = h[:]
		if err := s.AddToken(ctx, next); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, "bob", epoch); err != nil {
			t.Fatalf("RevokeToken(bob) after a new bob = %v, want nil", err)
		}
		if _, err := s.ConsumeToken(ctx, h[:], epoch); !errors.Is(err, ErrTokenRevoked) {
			t.Errorf("ConsumeToken(new bob) = %v, want ErrTokenRevoked", err)
		}
	})
}

// A version 1 inventory, whose tokens were keyed by name, keeps its tokens
// through the migration and then frees spent names.
func TestTokensMigrateFromNameKeys(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeVersion1(t, dir, `INSERT INTO tokens (name, secret_hash, cert_days, uses_left, expires_at, revoked_at, created_at) VALUES ('bob', x'01', 7, 1, 4102444800, 1, 1)`)
	s := openTest(t, dir)
	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Name != "bob" || !toks[0].Revoked() {
		t.Fatalf("Tokens() after migration = %+v, %v; want the revoked bob", toks, err)
	}
	if err := s.AddToken(ctx, testToken("bob", 1)); err != nil {
		t.Errorf("AddToken(bob) after migration = %v, want nil (the old bob is revoked)", err)
	}
}

// TestConsumeTokenOfKind: a token yields only its own kind of certificate,
// and a use for the other kind leaves it unspent.
func TestConsumeTokenOfKind(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		host := testToken("dock2", 1)
		host.Kind = KindServer
		if err := s.AddToken(ctx, host); err != nil {
			t.Fatal(err)
		}
		if err := s.AddToken(ctx, testToken("alice", 1)); err != nil {
			t.Fatal(err)
		}
		now := epoch.Add(time.Minute)
		if _, err := s.ConsumeToken(ctx, host.SecretHash, now); !errors.Is(err, ErrTokenKind) {
			t.Errorf("ConsumeToken(host token) error = %v, want ErrTokenKind", err)
		}
		if _, err := s.ConsumeTokenOfKind(ctx, testToken("alice", 1).SecretHash, KindServer, now); !errors.Is(err, ErrTokenKind) {
			t.Errorf("ConsumeTokenOfKind(client token, server) error = %v, want ErrTokenKind", err)
		}
		got, err := s.ConsumeTokenOfKind(ctx, host.SecretHash, KindServer, now)
		if err != nil || got.Name != "dock2" || got.Kind != KindServer || got.UsesLeft != 0 {
			t.Fatalf("ConsumeTokenOfKind(host token) = %+v, %v; want dock2, server, 0 uses left", got, err)
		}
		if _, err := s.ConsumeTokenOfKind(ctx, host.SecretHash, KindServer, now); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("second use of the host token error = %v, want ErrTokenUsed", err)
		}
		if got, err := s.ConsumeToken(ctx, testToken("alice", 1).SecretHash, now); err != nil || got.Kind != KindClient {
			t.Errorf("ConsumeToken(alice) after a refused server use = %+v, %v; want the unspent client token", got, err)
		}
	})
}
