package enroll

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(2, time.Minute)
	steps := []struct {
		at       time.Duration
		fail     bool
		addr     string
		wantOK   bool
		wantWait time.Duration
	}{
		{0, true, "a", true, 0},
		{10 * time.Second, true, "a", true, 0},
		{20 * time.Second, false, "a", false, 40 * time.Second},
		{20 * time.Second, false, "b", true, 0},
		{59 * time.Second, false, "a", false, time.Second},
		{60 * time.Second, false, "a", true, 0},
	}
	for i, s := range steps {
		now := start.Add(s.at)
		release, ok, wait := l.Reserve(s.addr, now)
		if ok != s.wantOK || wait != s.wantWait {
			t.Errorf("step %d: Reserve(%s) = %v, %v; want %v, %v", i, s.addr, ok, wait, s.wantOK, s.wantWait)
		}
		if !s.fail {
			release() // a success: not counted
		}
	}
}

// Many attempts at once from one address: exactly max get through, since
// each is counted in the same step that checks the count.
func TestLimiterReserveIsAtomic(t *testing.T) {
	const attempts, limit = 60, 10
	l := NewLimiter(limit, time.Minute)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := make(chan struct{})
	var allowed atomic.Int32
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() {
			<-start
			if _, ok, _ := l.Reserve("192.0.2.7", now); ok {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowed.Load(); got != limit {
		t.Errorf("%d of %d concurrent attempts allowed, want exactly %d", got, attempts, limit)
	}
}

func TestLimiterReleaseGivesTheCountBack(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(1, time.Minute)
	release, ok, _ := l.Reserve("a", now)
	if !ok {
		t.Fatal("first attempt refused")
	}
	if _, ok, _ := l.Reserve("a", now); ok {
		t.Fatal("second attempt allowed while the first is counted")
	}
	release()
	release() // a second call gives nothing more back
	if _, ok, _ := l.Reserve("a", now); !ok {
		t.Fatal("attempt refused after the first was given back")
	}
	if _, ok, _ := l.Reserve("a", now); ok {
		t.Fatal("a double release gave back two attempts")
	}
}

func TestLimiterBoundsItsMemory(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(1, time.Hour)
	for i := range maxTrackedAddresses + 10 {
		l.Reserve(fmt.Sprintf("10.0.%d.%d", i/256, i%256), start.Add(time.Duration(i)*time.Millisecond))
	}
	if got := len(l.seen); got > maxTrackedAddresses {
		t.Errorf("%d addresses tracked, want at most %d", got, maxTrackedAddresses)
	}
	if _, ok, _ := l.Reserve("10.0.0.0", start.Add(time.Minute)); !ok {
		t.Error("the oldest address is still refused after its entry was evicted")
	}
	last := fmt.Sprintf("10.0.%d.%d", (maxTrackedAddresses+9)/256, (maxTrackedAddresses+9)%256)
	if _, ok, _ := l.Reserve(last, start.Add(time.Minute)); ok {
		t.Error("the newest failing address is allowed")
	}
}

// 60 enrollments with bad tokens at once from one address, against a limit
// of 10: exactly 10 reach the token check, the rest are answered 429.
func TestEnrollFailureLimitHoldsUnderConcurrency(t *testing.T) {
	const attempts, limit = 60, 10
	env := newTestEnv(t, envOptions{maxFailures: limit})
	_, csrPEM, err := NewKeyAndCSR()
	if err != nil {
		t.Fatal(err)
	}
	bad := make([]byte, SecretSize) // no token has this secret
	body, _ := json.Marshal(enrollRequest{Secret: base64.RawURLEncoding.EncodeToString(bad), CSR: string(csrPEM)})
	start := make(chan struct{})
	var evaluated, limited atomic.Int32
	var wg sync.WaitGroup
	for range attempts {
		wg.Go(func() {
			r := httptest.NewRequest(http.MethodPost, "/enroll", bytes.NewReader(body))
			r.RemoteAddr = "192.0.2.7:40000"
			w := httptest.NewRecorder()
			<-start
			env.server.serveEnroll(w, r)
			if w.Code == http.StatusTooManyRequests {
				limited.Add(1)
			} else {
				evaluated.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if evaluated.Load() != limit || limited.Load() != attempts-limit {
		t.Errorf("%d attempts evaluated and %d refused with 429, want %d and %d",
			evaluated.Load(), limited.Load(), limit, attempts-limit)
	}
}
