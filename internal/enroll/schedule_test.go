package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

func certValid(notBefore time.Time, life time.Duration) *x509.Certificate {
	return &x509.Certificate{NotBefore: notBefore, NotAfter: notBefore.Add(life), SerialNumber: big.NewInt(1)}
}

func TestRenewalTime(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	tests := []struct {
		name   string
		jitter float64
		want   time.Duration // after NotBefore
	}{
		{"two thirds", 0, week * 2 / 3},
		{"earliest", -1, week*2/3 - week/20},
		{"latest", 1, week*2/3 + week/20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RenewalTime(certValid(start, week), tt.jitter)
			if want := start.Add(tt.want); !got.Equal(want) {
				t.Errorf("RenewalTime = %s, want %s", got, want)
			}
		})
	}
}

// fakeRenewer hands out certificates whose renewal time has already come,
// so the watcher never sleeps long.
type fakeRenewer struct {
	mu    sync.Mutex
	calls int
	errs  []error // returned by the first calls, in order
	stop  int     // cancel after this many successful renewals
	done  context.CancelFunc
}

func (f *fakeRenewer) renew(context.Context) (*x509.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	f.stop--
	if f.stop == 0 {
		f.done()
	}
	return certValid(time.Now().Add(-time.Hour), time.Hour+time.Minute), nil
}

func TestWatcherRenewsUntilCancelled(t *testing.T) {
	c, cancel := context.WithCancel(context.Background())
	f := &fakeRenewer{stop: 3, done: cancel}
	w := &Watcher{Renew: f.renew, Jitter: func() float64 { return 0 }}
	err := w.Run(c, certValid(time.Now().Add(-time.Hour), time.Hour+time.Minute))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if f.calls != 3 {
		t.Errorf("%d renewals, want 3", f.calls)
	}
}

func TestWatcherStopsOnFatalErrors(t *testing.T) {
	f := &fakeRenewer{errs: []error{ErrCertRevoked}, done: func() {}}
	w := &Watcher{Renew: f.renew, Fatal: func(err error) bool { return errors.Is(err, ErrCertRevoked) }}
	err := w.Run(context.Background(), certValid(time.Now().Add(-time.Hour), time.Hour+time.Minute))
	if !errors.Is(err, ErrCertRevoked) || f.calls != 1 {
		t.Fatalf("Run: %v after %d calls, want ErrCertRevoked after 1", err, f.calls)
	}
}

func TestWatcherGivesUpAtExpiry(t *testing.T) {
	f := &fakeRenewer{errs: []error{errors.New("gateway down"), errors.New("gateway down")}, done: func() {}}
	// Due for renewal at once and expiring sooner than the first retry
	// delay: the retry is the last try, at expiry.
	cert := certValid(time.Now().Add(-time.Hour), time.Hour+500*time.Millisecond)
	w := &Watcher{Renew: f.renew}
	err := w.Run(context.Background(), cert)
	if !errors.Is(err, ErrWatchExpired) {
		t.Fatalf("Run: %v, want ErrWatchExpired", err)
	}
	if f.calls != 2 {
		t.Errorf("%d attempts, want 2 (the first and one last try at expiry)", f.calls)
	}
}
