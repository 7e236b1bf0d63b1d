package enroll

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Renewal timing. Renewing at two thirds of the lifetime leaves a third for
// retries when the gateway is briefly unreachable: two and a half days of a
// seven-day client certificate, four months of a server certificate.
const (
	renewNumerator   = 2
	renewDenominator = 3
	// JitterFraction spreads renewals by up to ±5% of the lifetime, so a
	// fleet enrolled in the same hour does not renew in the same second.
	JitterFraction = 0.05
	// Retries after a failed renewal start at retryMin and double up to
	// retryMax, but never wait past the certificate's expiry.
	retryMin = 30 * time.Second
	retryMax = 30 * time.Minute
)

// RenewalTime is when cert should be renewed: at two thirds of its
// lifetime, moved by jitter (in [-1, 1]) times JitterFraction of it.
func RenewalTime(cert *x509.Certificate, jitter float64) time.Time {
	life := cert.NotAfter.Sub(cert.NotBefore)
	at := life * renewNumerator / renewDenominator
	at += time.Duration(jitter * JitterFraction * float64(life))
	return cert.NotBefore.Add(at)
}

// Watcher keeps a certificate renewed: it sleeps until RenewalTime, renews,
// and starts over with the new certificate.
type Watcher struct {
	// Renew renews and stores the certificate, returning the new one.
	Renew func(ctx context.Context) (*x509.Certificate, error)
	// Fatal reports errors retrying cannot fix (e.g. a revoked
	// certificate); nil: none are.
	Fatal func(error) bool
	// Logf hears about each renewal and failure; nil: silence.
	Logf func(format string, args ...any)
	// Now and Jitter default to time.Now and a uniform value in [-1, 1].
	Now    func() time.Time
	Jitter func() float64
}

// ErrWatchExpired ends Run when the certificate expired before a renewal
// succeeded.
var ErrWatchExpired = errors.New("the certificate expired before it could be renewed")

// Run renews cert and its successors until ctx ends (returning nil) or a
// renewal fails for good.
func (w *Watcher) Run(ctx context.Context, cert *x509.Certificate) error {
	for {
		at := RenewalTime(cert, w.jitter())
		w.logf("next renewal of %q at %s (expires %s)", cert.Subject.CommonName,
			at.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
		if !sleepUntil(ctx, w.now(), at) {
			return nil
		}
		next, err := w.renewWithRetries(ctx, cert)
		if err != nil || next == nil {
			return err
		}
		w.logf("renewed %q: serial %x, expires %s", next.Subject.CommonName, next.SerialNumber,
			next.NotAfter.UTC().Format(time.RFC3339))
		cert = next
	}
}

// renewWithRetries renews, retrying with backoff until the certificate
// expires. A nil certificate and error mean ctx ended.
func (w *Watcher) renewWithRetries(ctx context.Context, cert *x509.Certificate) (*x509.Certificate, error) {
	wait := retryMin
	for {
		next, err := w.Renew(ctx)
		if err == nil {
			return next, nil
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		if w.Fatal != nil && w.Fatal(err) {
			return nil, err
		}
		now := w.now()
		if !now.Before(cert.NotAfter) {
			return nil, fmt.Errorf("%w (last error: %v)", ErrWatchExpired, err)
		}
		retry := now.Add(wait)
		if retry.After(cert.NotAfter) {
			retry = cert.NotAfter // one last try; then it has expired
		}
		w.logf("renewal failed, retrying at %s: %v", retry.UTC().Format(time.RFC3339), err)
		if !sleepUntil(ctx, now, retry) {
			return nil, nil
		}
		wait = min(wait*2, retryMax)
	}
}

// sleepUntil waits until at; false means ctx ended first.
func sleepUntil(ctx context.Context, now, at time.Time) bool {
	if ctx.Err() != nil {
		return false // select below would pick at random when both are ready
	}
	t := time.NewTimer(max(at.Sub(now), 0))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (w *Watcher) now() time.Time {
	if w.Now != nil {
		return w.Now()
	}
	return time.Now()
}

func (w *Watcher) jitter() float64 {
	if w.Jitter != nil {
		return w.Jitter()
	}
	return rand.Float64()*2 - 1
}

func (w *Watcher) logf(format string, args ...any) {
	if w.Logf != nil {
		w.Logf(format, args...)
	}
}
