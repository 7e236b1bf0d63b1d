package enroll

import (
	"fmt"
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
		ok, wait := l.Allow(s.addr, now)
		if ok != s.wantOK || wait != s.wantWait {
			t.Errorf("step %d: Allow(%s) = %v, %v; want %v, %v", i, s.addr, ok, wait, s.wantOK, s.wantWait)
		}
		if s.fail {
			l.Fail(s.addr, now)
		}
	}
}

func TestLimiterBoundsItsMemory(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(1, time.Hour)
	for i := range maxTrackedAddresses + 10 {
		l.Fail(fmt.Sprintf("10.0.%d.%d", i/256, i%256), start.Add(time.Duration(i)*time.Millisecond))
	}
	if got := len(l.seen); got > maxTrackedAddresses {
		t.Errorf("%d addresses tracked, want at most %d", got, maxTrackedAddresses)
	}
	if ok, _ := l.Allow("10.0.0.0", start.Add(time.Minute)); !ok {
		t.Error("the oldest address is still refused after its entry was evicted")
	}
	last := fmt.Sprintf("10.0.%d.%d", (maxTrackedAddresses+9)/256, (maxTrackedAddresses+9)%256)
	if ok, _ := l.Allow(last, start.Add(time.Minute)); ok {
		t.Error("the newest failing address is allowed")
	}
}
