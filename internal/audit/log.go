// Package audit owns dockgate's audit log: one JSON line per request
// saying who asked for what, what the policy decided and how it went.
//
// # Writing
//
// Write encodes the record on the caller's goroutine and hands the line
// to a single writer goroutine through a bounded queue; it never waits for
// the disk. The writer appends everything queued in one write(2) and
// then waits for more, so lines are whole and in the order they were
// queued, whatever the number of concurrent writers.
//
// # When the disk is full or slow
//
// The request path never blocks on the audit log. If the queue is full
// (the disk cannot keep up or is stalled) the record is dropped and
// counted (Stats().Dropped); if a write fails (ENOSPC, EIO) the records
// of that write are lost, counted (Stats().Failed) and reported to
// Options.OnError, and the writer carries on with the next ones. A line
// cut short by a failed write is terminated before the next one, so every
// later line still parses. Alert on the counters: a gap in the audit log
// is visible there, never silent.
//
// # Files
//
// The log file is created 0600 (and set to 0600 if it exists with wider
// permissions), opened for appending, never truncated. Reopen, called on
// SIGHUP, opens the path again, so logrotate can rename the file and have
// the gateway write to a new one (no copytruncate needed). Path "-" is
// standard output.
package audit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Stdout is the path that writes the log to standard output.
const Stdout = "-"

// DefaultQueue bounds the records waiting for the disk: at 4096 lines of
// about 400 bytes, 1.6 MB, several seconds of a busy gateway's traffic.
const DefaultQueue = 4096

// Options tune a Log; the zero value is ready to use.
type Options struct {
	// Queue is how many records may wait for the disk (DefaultQueue when
	// <= 0). Beyond it, records are dropped, not waited for.
	Queue int
	// OnError is called on the writer goroutine when a write or a reopen
	// fails; nil ignores errors (they are still counted).
	OnError func(error)
	// Stdout is where path "-" writes; nil means os.Stdout.
	Stdout io.Writer
}

// Stats counts what happened to records since Open.
type Stats struct {
	Written uint64 // lines written
	Dropped uint64 // lines dropped because the queue was full
	Failed  uint64 // lines lost in a failed write
}

// Log is an open audit log, safe for concurrent use.
type Log struct {
	path    string
	onError func(error)

	mu     sync.RWMutex // guards closed against sends on a closed queue
	closed bool
	queue  chan []byte
	reopen chan chan error
	done   chan struct{}

	written, dropped, failed atomic.Uint64
}

// Open opens (creating it if needed) the audit log at path, or standard
// output for "-". A missing parent directory is created 0700.
func Open(path string, opts Options) (*Log, error) {
	out, err := openOutput(path, opts.Stdout)
	if err != nil {
		return nil, err
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	l := &Log{
		path:    path,
		onError: opts.OnError,
		queue:   make(chan []byte, opts.Queue),
		reopen:  make(chan chan error),
		done:    make(chan struct{}),
	}
	go l.run(out)
	return l, nil
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

// Write queues one record. It does not wait for the disk: when the queue
// is full the record is dropped and counted. Writing to a closed Log
// drops the record too.
func (l *Log) Write(r *Record) {
	line := AppendJSON(make([]byte, 0, 512), r)
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.Add(1)
		return
	}
	select {
	case l.queue <- line:
	default:
		l.dropped.Add(1)
	}
}

// Reopen opens the path again and writes to the new file from the next
// record on (after logrotate has renamed the old one). On failure the old
// file stays in use. Reopen of standard output does nothing.
func (l *Log) Reopen() error {
	if l.path == Stdout {
		return nil
	}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return errors.New("failed to reopen audit log: it is closed")
	}
	reply := make(chan error, 1)
	l.reopen <- reply
	l.mu.RUnlock()
	return <-reply
}

// Close writes what is queued and closes the file. Records written after
// Close are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.queue)
	l.mu.Unlock()
	<-l.done
	return nil
}

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Written: l.written.Load(), Dropped: l.dropped.Load(), Failed: l.failed.Load()}
}

// batchDelay is how long the writer lets lines gather before a write: a
// millisecond is nothing for an audit trail and, at thousands of requests
// a second, turns a wake-up and a write(2) per line into one per batch.
const batchDelay = time.Millisecond

// maxBatch bounds one write(2): 256 KiB, well past a busy gateway's
// lines per millisecond, small enough not to hold the writer long.
const maxBatch = 256 << 10

// run is the writer goroutine: it owns the output.
func (l *Log) run(out io.Writer) {
	defer close(l.done)
	w := &lineWriter{out: out}
	batch := make([]byte, 0, 64<<10)
	for {
		select {
		case line, ok := <-l.queue:
			if !ok {
				w.close()
				return
			}
			// Let a busy gateway's next lines gather: while the writer
			// sleeps, sending to the queue wakes nobody, so one wake-up and
			// one write(2) serve every line of the interval.
			time.Sleep(batchDelay)
			var n int
			batch, n = l.fill(append(batch[:0], line...), 1)
			l.flush(w, batch, n)
		case reply := <-l.reopen:
			reply <- l.swap(w)
		}
	}
}

// fill appends whatever else is queued, up to maxBatch bytes.
func (l *Log) fill(batch []byte, n int) ([]byte, int) {
	for len(batch) < maxBatch {
		select {
		case line, ok := <-l.queue:
			if !ok {
				return batch, n
			}
			batch = append(batch, line...)
			n++
		default:
			return batch, n
		}
	}
	return batch, n
}

func (l *Log) flush(w *lineWriter, batch []byte, n int) {
	if err := w.write(batch); err != nil {
		l.failed.Add(uint64(n))
		l.report(fmt.Errorf("failed to write audit log: %w", err))
		return
	}
	l.written.Add(uint64(n))
}

func (l *Log) swap(w *lineWriter) error {
	f, err := openFile(l.path)
	if err != nil {
		l.report(err)
		return err
	}
	w.close()
	w.out, w.partial = f, false
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
