package audit

import (
	"log/slog"
	"sync"
	"time"
)

// lossReporter logs lost records, at most once per lossReportInterval:
// how many were dropped and how many failed since its last line, and why.
// It runs on a goroutine of its own, so that it reports while the writer
// is stuck on a stalled disk. It logs counts and the write error, never a
// record.
type lossReporter struct {
	log   *slog.Logger
	l     *Log
	after func(time.Duration) <-chan time.Time

	lost     chan struct{} // a record was lost
	quit     chan struct{}
	finished chan struct{}

	mu      sync.Mutex
	lastErr error // the last failed write's error
	last    Stats // the counters at the last line
}

func newLossReporter(l *Log, log *slog.Logger, after func(time.Duration) <-chan time.Time) *lossReporter {
	if after == nil {
		after = time.After
	}
	return &lossReporter{
		log: log, l: l, after: after,
		lost: make(chan struct{}, 1), quit: make(chan struct{}), finished: make(chan struct{}),
	}
}

// notify wakes the reporter without waiting.
func (r *lossReporter) notify() {
	select {
	case r.lost <- struct{}{}:
	default:
	}
}

func (r *lossReporter) failedWith(err error) {
	r.mu.Lock()
	r.lastErr = err
	r.mu.Unlock()
	r.notify()
}

// stop logs what was lost since the last line and ends the reporter.
func (r *lossReporter) stop() {
	close(r.quit)
	<-r.finished
}

func (r *lossReporter) run() {
	defer close(r.finished)
	defer r.warn()
	for {
		select {
		case <-r.lost:
		case <-r.quit:
			return
		}
		r.warn()
		select {
		case <-r.after(lossReportInterval):
		case <-r.quit:
			return
		}
	}
}

// warn logs the records lost since the last line, if any.
func (r *lossReporter) warn() {
	now := r.l.Stats()
	r.mu.Lock()
	dropped, failed := now.Dropped-r.last.Dropped, now.Failed-r.last.Failed
	r.last = now
	lastErr := r.lastErr
	r.mu.Unlock()
	if dropped == 0 && failed == 0 {
		return
	}
	attrs := []any{"dropped", dropped, "failed", failed, "on_full", string(r.l.onFull)}
	if dropped > 0 {
		attrs = append(attrs, "dropped_because", r.dropReason())
	}
	if failed > 0 && lastErr != nil {
		attrs = append(attrs, "err", lastErr.Error())
	}
	r.log.Warn("audit records lost since the last warning", attrs...)
}

func (r *lossReporter) dropReason() string {
	if r.l.onFull == Block {
		return "the queue stayed full for the whole wait: the audit log's disk is slower than the requests, or stalled"
	}
	return "the queue was full: the audit log's disk is slower than the requests, or stalled"
}
