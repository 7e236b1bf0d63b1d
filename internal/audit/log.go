// Package audit owns dockgate's audit log: one JSON line per request
// saying who asked for what, what the policy decided and how it went.
//
// # Writing
//
// Write encodes the record on the caller's goroutine into a pooled buffer
// and appends it, under a mutex, to the batch waiting for the disk; it
// never waits for the disk (but see OnFull). A single writer goroutine
// wakes when a batch starts, lets lines gather for BatchInterval (or
// until maxBatch bytes wait), and writes the whole batch in one
// write(2). Lines are whole and in the order they were queued, whatever
// the number of concurrent writers, and a busy gateway wakes the writer
// once per interval, not once per request.
//
// # When the disk is full or slow
//
// At most Options.Queue records wait for the disk. What happens to one
// more is Options.OnFull: Drop drops and counts it (Stats().Dropped);
// Block waits up to a second for room, then drops it; Deny drops it too,
// and Admit tells the gateway to refuse requests until there is room. If
// a write fails (ENOSPC, EIO) the records of that write are lost, counted
// (Stats().Failed) and reported to Options.OnError, and the writer
// carries on with the next ones. A line cut short by a failed write is
// terminated before the next one, so every later line still parses.
//
// Losses are never silent: Collector exports the counters as
// dockgate_audit_records_total{result="written|dropped|failed"}, and
// Options.Logger gets one warning at most every ten seconds saying how
// many records were lost since the last one, and why.
//
// # Sinks
//
// Where batches go is a Sink: the file (Open) or, through OpenSink, any
// other store of records, such as a database table several gateways share.
// A sink whose write fails with an error matching ErrRetry keeps its batch:
// the writer tries it again (every RetryInterval) until it is stored or
// the log is closed, and while it waits its records count against Queue,
// so OnFull applies to the records beyond it exactly as for a slow disk.
//
// # Files
//
// The log file is created 0600 (and set to 0600 if it exists with wider
// permissions), opened for appending, never truncated. A file that ends
// in the middle of a line (a write cut by kill -9) gets that line ended
// before the first new one. Reopen, called on
// SIGHUP, opens the path again, so logrotate can rename the file and have
// the gateway write to a new one (no copytruncate needed). Path "-" is
// standard output. With Options.Sync the file is fsynced after each
// batch.
package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Stdout is the path that writes the log to standard output.
const Stdout = "-"

// DefaultQueue bounds the records waiting for the disk: at 4096 lines of
// about 400 bytes, 1.6 MB, several seconds of a busy gateway's traffic.
const DefaultQueue = 4096

// DefaultBatchInterval is how long the writer lets lines gather before a
// write: 5 ms is nothing for an audit trail and, at thousands of requests
// a second, turns a wake-up and a write(2) per line into one per batch.
// It is also the most a kill -9 can take from a gateway that was keeping
// up (docs/OPERATIONS.md).
const DefaultBatchInterval = 5 * time.Millisecond

// maxBatch wakes the writer before the interval is over: 256 KiB, about
// 600 lines, bounds one write(2) under a burst.
const maxBatch = 256 << 10

// blockTimeout bounds how long Block makes a request wait for room: far
// longer than a healthy disk needs to take a batch (milliseconds), short
// enough that a stalled disk makes the gateway slow, not stuck, and that
// waiting requests cannot pile up without end.
const blockTimeout = time.Second

// lossReportInterval spaces the warnings about lost records, so that a
// stalled or full disk is one line every ten seconds, not one per request.
const lossReportInterval = 10 * time.Second

// OnFull says what Write does when Options.Queue records already wait.
type OnFull string

// What Write does with a record the queue has no room for.
const (
	// Drop drops and counts it: the request is never slowed by the disk.
	Drop OnFull = "drop"
	// Block waits for room, at most a second, then drops and counts it.
	Block OnFull = "block"
	// Deny drops and counts it, and Admit reports false, so that the
	// gateway refuses requests until the log has room again.
	Deny OnFull = "deny"
)

// ErrRetry marks a sink write that failed for now (a database that does
// not answer): the batch is kept and written again, not lost.
var ErrRetry = errors.New("retry later")

// DefaultRetryInterval is how long the writer waits before it writes a
// batch again after an ErrRetry.
const DefaultRetryInterval = 500 * time.Millisecond

// Sink stores batches of records. Write gets n records as n JSON lines
// (AppendJSON); it is called on one goroutine at a time. An error that
// matches ErrRetry keeps the batch for another try; any other error loses
// it (counted as failed).
type Sink interface {
	Write(batch []byte, n int) error
	Close() error
}

// Options tune a Log; the zero value is ready to use.
type Options struct {
	// Queue is how many records may wait for the disk (DefaultQueue when
	// <= 0). What happens beyond it is OnFull.
	Queue int
	// OnFull is Drop (when empty), Block or Deny.
	OnFull OnFull
	// BatchInterval is how long lines gather before a write
	// (DefaultBatchInterval when <= 0).
	BatchInterval time.Duration
	// Sync fsyncs the file after each batch, so that a power loss cannot
	// take lines already written. Standard output and pipes are not synced.
	Sync bool
	// Logger gets a warning at most every ten seconds while records are
	// lost; nil logs nothing (the counters still count).
	Logger *slog.Logger
	// OnError is called on the writer goroutine when a write or a reopen
	// fails; nil ignores errors (they are still counted).
	OnError func(error)
	// Stdout is where path "-" writes; nil means os.Stdout.
	Stdout io.Writer
	// RetryInterval spaces the writes of a batch a sink asked to retry
	// (DefaultRetryInterval when <= 0).
	RetryInterval time.Duration

	// Test hooks: the wait of Block and the clock of the loss warnings.
	blockTimeout time.Duration
	after        func(time.Duration) <-chan time.Time
}

// Stats counts what happened to records since Open.
type Stats struct {
	Written uint64 // lines written
	Dropped uint64 // lines dropped because the queue was full or the log closed
	Failed  uint64 // lines lost in a failed write
}

// Log is an open audit log, safe for concurrent use.
type Log struct {
	path         string
	onFull       OnFull
	queueCap     int
	interval     time.Duration
	blockTimeout time.Duration
	onError      func(error)
	retry        time.Duration

	mu     sync.Mutex
	buf    []byte        // lines waiting for the writer
	queued int           // records in buf
	held   int           // records of a batch the sink asked to retry
	closed bool          // Write drops, the writer exits once buf is written
	room   chan struct{} // closed when the writer takes buf; Block waits on it

	full    atomic.Bool  // queued has reached queueCap, or the log is closed
	failing atomic.Bool  // the last write failed
	waiting atomic.Int64 // Block waiters, for tests

	wake   chan struct{} // a batch started or filled up, or Close
	reopen chan chan error
	done   chan struct{}

	losses *lossReporter

	written, dropped, failed atomic.Uint64
}

// linePool holds the buffers records are encoded into before they are
// copied into the batch, so that Write allocates nothing.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledLine keeps a record with a huge path from pinning its buffer.
const maxPooledLine = 64 << 10

// Open opens (creating it if needed) the audit log at path, or standard
// output for "-". A missing parent directory is created 0700.
func Open(path string, opts Options) (*Log, error) {
	if err := checkOnFull(&opts); err != nil {
		return nil, err
	}
	out, err := openOutput(path, opts.Stdout)
	if err != nil {
		return nil, err
	}
	cut := path != Stdout && endsCut(out.(*os.File), path)
	sink := &fileSink{w: &lineWriter{out: out, partial: cut}, sync: opts.Sync}
	return start(path, sink, opts), nil
}

// OpenSink starts a log that writes its batches to sink. Reopen does
// nothing on it; Close closes the sink after the last batch.
func OpenSink(sink Sink, opts Options) (*Log, error) {
	if err := checkOnFull(&opts); err != nil {
		return nil, err
	}
	return start("", sink, opts), nil
}

func checkOnFull(opts *Options) error {
	switch opts.OnFull {
	case "":
		opts.OnFull = Drop
	case Drop, Block, Deny:
	default:
		return fmt.Errorf("failed to open audit log: %q is not drop, block or deny", opts.OnFull)
	}
	return nil
}

func start(path string, sink Sink, opts Options) *Log {
	l := &Log{
		path:         path,
		onFull:       opts.OnFull,
		queueCap:     orDefault(opts.Queue, DefaultQueue),
		interval:     orDefault(opts.BatchInterval, DefaultBatchInterval),
		blockTimeout: orDefault(opts.blockTimeout, blockTimeout),
		onError:      opts.OnError,
		retry:        orDefault(opts.RetryInterval, DefaultRetryInterval),
		room:         make(chan struct{}),
		wake:         make(chan struct{}, 1),
		reopen:       make(chan chan error),
		done:         make(chan struct{}),
	}
	if opts.Logger != nil {
		l.losses = newLossReporter(l, opts.Logger, opts.after)
		go l.losses.run()
	}
	go l.run(sink)
	return l
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

func openOutput(path string, stdout io.Writer) (io.Writer, error) {
	if path == Stdout {
		if stdout == nil {
			stdout = os.Stdout
		}
		return stdout, nil
	}
	return openFile(path)
}

// openFile opens path for appending, 0600. It refuses a symbolic link,
// so that the log cannot be pointed at another file.
func openFile(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("failed to create audit log directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("failed to open audit log %s: it is a symbolic link", path)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("failed to open audit log: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("failed to set audit log permissions: %w", err)
	}
	return f, nil
}

// endsCut reports whether the file at path, open as f, ends in the middle
// of a line: a write cut short by a kill -9 (Linux stops a write to a file
// between pages when the process gets SIGKILL). The next write then ends
// that line first, so that every later line parses.
func endsCut(f *os.File, path string) bool {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return false
	}
	r, err := os.Open(path)
	if err != nil {
		return false
	}
	defer r.Close()
	if ri, err := r.Stat(); err != nil || !os.SameFile(fi, ri) {
		return false
	}
	last := make([]byte, 1)
	_, err = r.ReadAt(last, fi.Size()-1)
	return err == nil && last[0] != '\n'
}

// Write queues one record. It does not wait for the disk unless OnFull is
// Block and the queue is full; a record the queue has no room for is
// dropped and counted. Writing to a closed Log drops the record too.
func (l *Log) Write(r *Record) {
	bp := linePool.Get().(*[]byte)
	line := AppendJSON((*bp)[:0], r)
	l.enqueue(line)
	if cap(line) <= maxPooledLine {
		*bp = line
		linePool.Put(bp)
	}
}

// Admit reports whether the log can take a record now. It is false only
// with OnFull Deny, while the queue is full, the last write failed, or the
// log is closed: the gateway then refuses the request rather than serve
// it unrecorded. It is a check, not a reservation: under a burst a few
// admitted records may still find the queue full, and are counted as
// dropped.
func (l *Log) Admit() bool {
	return l.onFull != Deny || (!l.full.Load() && !l.failing.Load())
}

func (l *Log) enqueue(line []byte) {
	l.mu.Lock()
	var timeout <-chan time.Time
	for l.queued+l.held >= l.queueCap && !l.closed {
		if l.onFull != Block {
			l.mu.Unlock()
			l.lose(&l.dropped)
			return
		}
		room := l.room
		l.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(l.blockTimeout)
			defer t.Stop()
			timeout = t.C
		}
		if !l.waitRoom(room, timeout) {
			l.lose(&l.dropped)
			return
		}
		l.mu.Lock()
	}
	if l.closed {
		l.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	first := len(l.buf) == 0
	l.buf = append(l.buf, line...)
	l.queued++
	l.full.Store(l.queued+l.held >= l.queueCap)
	filled := len(l.buf) >= maxBatch
	l.mu.Unlock()
	if first || filled {
		l.signal()
	}
}

// waitRoom waits until the writer takes the batch; false on timeout.
func (l *Log) waitRoom(room <-chan struct{}, timeout <-chan time.Time) bool {
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case <-room:
		return true
	case <-timeout:
		return false
	}
}

// lose counts lost records and wakes the loss reporter.
func (l *Log) lose(counter *atomic.Uint64) {
	counter.Add(1)
	if l.losses != nil {
		l.losses.notify()
	}
}

// signal wakes the writer; a wake-up already pending is enough.
func (l *Log) signal() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Reopen opens the path again and writes to the new file from the next
// batch on (after logrotate has renamed the old one). On failure the old
// file stays in use. Reopen of standard output does nothing.
func (l *Log) Reopen() error {
	if l.path == Stdout || l.path == "" {
		return nil
	}
	reply := make(chan error, 1)
	select {
	case l.reopen <- reply:
		return <-reply
	case <-l.done:
		return errors.New("failed to reopen audit log: it is closed")
	}
}

// Close writes what is queued and closes the file. Records written after
// Close are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		<-l.done
		return nil
	}
	l.closed = true
	l.full.Store(true)
	l.mu.Unlock()
	l.signal()
	<-l.done
	if l.losses != nil {
		l.losses.stop()
	}
	return nil
}

// Queued returns how many records wait for the writer to take them (not
// counting the batch it is writing): Options.Queue is full.
func (l *Log) Queued() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.queued
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// run is the writer goroutine: it owns the sink.
func (l *Log) run(w Sink) {
	defer close(l.done)
	timer := time.NewTimer(l.interval)
	timer.Stop()
	var spare []byte
	for {
		select {
		case <-l.wake:
		case reply := <-l.reopen:
			reply <- l.swap(w)
			continue
		}
		l.gather(timer)
		batch, n, closed := l.take(spare)
		if n > 0 {
			l.flush(w, batch, n)
		}
		spare = batch[:0]
		if cap(spare) > 4*maxBatch {
			spare = nil // a burst is over; do not keep its buffer
		}
		if closed {
			w.Close()
			return
		}
	}
}

// gather lets lines join the batch for one interval. While the writer
// waits, Write appends to the batch without waking anyone; a full batch
// or Close ends the wait early.
func (l *Log) gather(timer *time.Timer) {
	l.mu.Lock()
	ready := l.closed || len(l.buf) >= maxBatch
	l.mu.Unlock()
	if ready {
		return
	}
	timer.Reset(l.interval)
	select {
	case <-timer.C:
	case <-l.wake:
		timer.Stop()
	}
}

// take hands the batch to the writer and gives Write an empty buffer.
func (l *Log) take(spare []byte) (batch []byte, n int, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	batch, l.buf = l.buf, spare
	n, l.queued = l.queued, 0
	l.full.Store(l.closed)
	if n > 0 {
		close(l.room) // Block's waiters have room again
		l.room = make(chan struct{})
	}
	return batch, n, l.closed
}

// flush writes one batch. With Sync a failed fsync loses the batch as a
// failed write does: its lines may be on disk, but not for sure.
func (l *Log) flush(w Sink, batch []byte, n int) {
	err := w.Write(batch, n)
	if errors.Is(err, ErrRetry) {
		err = l.retryBatch(w, batch, n, err)
	}
	if err != nil {
		l.failing.Store(true)
		l.failed.Add(uint64(n))
		err = fmt.Errorf("failed to write audit log: %w", err)
		if l.losses != nil {
			l.losses.failedWith(err)
		}
		l.report(err)
		return
	}
	l.failing.Store(false)
	l.written.Add(uint64(n))
}

// retryBatch writes a batch again every RetryInterval until the sink
// takes it, it fails for good, or the log is closed (then it tries once
// more). Meanwhile the batch counts against the queue, and Admit is false
// under Deny.
func (l *Log) retryBatch(w Sink, batch []byte, n int, err error) error {
	l.failing.Store(true)
	l.hold(n)
	defer l.hold(0)
	if l.losses != nil {
		l.losses.failedWith(fmt.Errorf("failed to write audit records, retrying: %w", err))
	}
	l.report(fmt.Errorf("failed to write audit records, retrying: %w", err))
	t := time.NewTimer(l.retry)
	defer t.Stop()
	for errors.Is(err, ErrRetry) {
		l.mu.Lock()
		closed := l.closed
		l.mu.Unlock()
		if !closed {
			select {
			case <-t.C:
				t.Reset(l.retry)
			case reply := <-l.reopen:
				reply <- nil // only a file reopens; its writes never retry
				continue
			case <-l.wake:
				continue // Write or Close: look at closed again
			}
		}
		err = w.Write(batch, n)
		if closed {
			break
		}
	}
	return err
}

// hold counts a batch under retry against the queue (n > 0) or lets it go
// (n == 0), waking Block's waiters.
func (l *Log) hold(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = n
	l.full.Store(l.closed || l.queued+l.held >= l.queueCap)
	if n == 0 {
		close(l.room)
		l.room = make(chan struct{})
		if len(l.buf) > 0 {
			l.signal() // the retry loop took the wake-ups of these records
		}
	}
}

func (l *Log) swap(s Sink) error {
	fs, ok := s.(*fileSink)
	if !ok {
		return nil
	}
	w := fs.w
	f, err := openFile(l.path)
	if err != nil {
		l.report(err)
		return err
	}
	w.close()
	w.out, w.partial = f, endsCut(f, l.path)
	return nil
}

// fileSink writes batches to the log file (or standard output).
type fileSink struct {
	w    *lineWriter
	sync bool
}

func (s *fileSink) Write(batch []byte, _ int) error {
	err := s.w.write(batch)
	if err == nil && s.sync {
		err = s.w.sync()
	}
	return err
}

func (s *fileSink) Close() error {
	s.w.close()
	return nil
}

func (l *Log) report(err error) {
	if l.onError != nil {
		l.onError(err)
	}
}

// lineWriter writes whole batches of lines and, after a short write, ends
// the cut line before the next batch.
type lineWriter struct {
	out     io.Writer
	partial bool
}

func (w *lineWriter) write(b []byte) error {
	if w.partial {
		if _, err := w.out.Write([]byte{'\n'}); err != nil {
			return err
		}
		w.partial = false
	}
	n, err := w.out.Write(b)
	if err != nil && n > 0 && n < len(b) {
		w.partial = true
	}
	return err
}

func (w *lineWriter) close() {
	if f, ok := w.out.(*os.File); ok && f != os.Stdout && f != os.Stderr {
		f.Close()
	}
}

// sync flushes a file to stable storage. Standard output, pipes and
// terminals cannot be synced (EINVAL) and are not.
func (w *lineWriter) sync() error {
	f, ok := w.out.(interface{ Sync() error })
	if !ok || f == os.Stdout || f == os.Stderr {
		return nil
	}
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
