package store

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// copySource is a SQLite inventory as a host has it: its CA, a valid
// client, a revoked one, one renewed (superseded), a used token, a live
// one, and three CRLs issued.
func copySource(t *testing.T) (*Store, Cert) {
	t.Helper()
	ctx := context.Background()
	src := openTest(t, t.TempDir())
	ca := testCert(randomSerial(), KindCA, "dockgate CA")
	ca.NotAfter = epoch.Add(10 * 365 * 24 * time.Hour)
	alice := testCert(randomSerial(), KindClient, "alice")
	bob := testCert(randomSerial(), KindClient, "bob")
	old, renewed := testCert(randomSerial(), KindClient, "carol"), testCert(randomSerial(), KindClient, "carol")
	for _, c := range []Cert{ca, alice, bob, old} {
		if err := src.AddCert(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	renewed.State = StatePending
	renewed.PEM = nil
	if err := src.AddCert(ctx, renewed); err != nil {
		t.Fatal(err)
	}
	if err := src.CompleteCert(ctx, renewed.Serial, []byte("renewed pem"), renewed.Fingerprint, &Supersession{Serial: old.Serial, At: epoch}); err != nil {
		t.Fatal(err)
	}
	if err := src.Revoke(ctx, bob.Serial, "key-compromise", epoch); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []Token{testToken("used", 1), testToken("live", 2)} {
		if err := src.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := src.ConsumeToken(ctx, testToken("used", 1).SecretHash, epoch); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := src.NextCRLNumber(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return src, alice
}

func certRows(t *testing.T, s *Store) []Cert {
	t.Helper()
	certs, err := s.Certs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func tokenRows(t *testing.T, s *Store) []Token {
	t.Helper()
	tokens, err := s.Tokens(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i := range tokens {
		tokens[i].id = 0 // the row number is the destination's own
	}
	return tokens
}

func TestCopyIsExactAndIdempotent(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		src, _ := copySource(t)
		dst := b.open(t, t.TempDir())
		r, err := Copy(ctx, src, dst, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if r.CertsCopied != 5 || r.TokensCopied != 2 || r.CertsPresent != 0 || len(r.Conflicts) != 0 {
			t.Errorf("first Copy() = %+v, want 5 certificates and 2 tokens copied", r)
		}
		if got, want := certRows(t, dst), certRows(t, src); !slices.EqualFunc(got, want, sameCert) {
			t.Errorf("destination certificates = %+v\nwant %+v", got, want)
		}
		if got, want := tokenRows(t, dst), tokenRows(t, src); !slices.EqualFunc(got, want, func(a, b Token) bool {
			return sameToken(a, b) && string(a.SecretHash) == string(b.SecretHash)
		}) {
			t.Errorf("destination tokens = %+v\nwant %+v", got, want)
		}
		if n, err := dst.NextCRLNumber(ctx); err != nil || n != 4 {
			t.Errorf("destination NextCRLNumber() = %d, %v; want 4 (after the source's 3)", n, err)
		}
		// The used token stays used: copying never gives a use back.
		if _, err := dst.ConsumeToken(ctx, testToken("used", 1).SecretHash, epoch); !errors.Is(err, ErrTokenUsed) {
			t.Errorf("ConsumeToken(used) on the destination error = %v, want ErrTokenUsed", err)
		}
		if _, err := src.ConsumeToken(ctx, testToken("live", 2).SecretHash, epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := dst.ConsumeToken(ctx, testToken("live", 2).SecretHash, epoch); err != nil {
			t.Fatal(err)
		}

		gen, _ := dst.RevocationGeneration(ctx)
		r, err = Copy(ctx, src, dst, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if r.CertsCopied != 0 || r.TokensCopied != 0 || r.CertsPresent != 5 || r.TokensPresent != 2 || len(r.Conflicts) != 0 {
			t.Errorf("second Copy() = %+v, want everything present", r)
		}
		if again, _ := dst.RevocationGeneration(ctx); again != gen {
			t.Errorf("a Copy that copied nothing moved the revocation generation %d -> %d", gen, again)
		}
	})
}

func TestCopyReportsConflictsAndKeepsTheDestination(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		src, alice := copySource(t)
		dst := b.open(t, t.TempDir())
		if _, err := Copy(ctx, src, dst, epoch); err != nil {
			t.Fatal(err)
		}
		// Since the first copy: alice revoked here only, a token used here
		// only, and a new dave here while the destination has its own dave.
		if err := src.Revoke(ctx, alice.Serial, "superseded", epoch); err != nil {
			t.Fatal(err)
		}
		if _, err := src.ConsumeToken(ctx, testToken("live", 2).SecretHash, epoch); err != nil {
			t.Fatal(err)
		}
		theirDave, ourDave := testCert(randomSerial(), KindClient, "dave"), testCert(randomSerial(), KindClient, "dave")
		if err := dst.AddCert(ctx, theirDave); err != nil {
			t.Fatal(err)
		}
		if err := src.AddCert(ctx, ourDave); err != nil {
			t.Fatal(err)
		}
		before := certRows(t, dst)
		r, err := Copy(ctx, src, dst, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Conflicts) != 3 || r.CertsCopied != 0 {
			t.Fatalf("Copy() = %+v, want 3 conflicts (alice, token live, dave) and nothing copied", r)
		}
		for i, want := range []string{"alice", "dave", "token live"} {
			if !strings.Contains(r.Conflicts[i], want) {
				t.Errorf("conflict %d = %q, want it to name %s", i, r.Conflicts[i], want)
			}
		}
		if after := certRows(t, dst); !slices.EqualFunc(after, before, sameCert) {
			t.Errorf("a Copy with conflicts changed the destination's certificates")
		}
		if c, err := dst.CertBySerial(ctx, alice.Serial); err != nil || c.Revoked() {
			t.Errorf("destination alice = %+v, %v; want it left unrevoked (a conflict is never overwritten)", c, err)
		}
	})
}

func TestCopyRefusesAnotherCAsInventory(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		src, _ := copySource(t)
		dst := b.open(t, t.TempDir())
		other := testCert(randomSerial(), KindCA, "another CA")
		other.Fingerprint = strings.Repeat("cd", 32)
		if err := dst.AddCert(ctx, other); err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(ctx, src, dst, epoch); !errors.Is(err, ErrOtherCA) {
			t.Errorf("Copy() into another CA's inventory error = %v, want ErrOtherCA", err)
		}
		if n := len(certRows(t, dst)); n != 1 {
			t.Errorf("destination has %d certificates after a refused copy, want 1", n)
		}
	})
}
