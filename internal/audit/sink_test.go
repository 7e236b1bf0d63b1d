package audit

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// flakySink refuses batches with ErrRetry while down, and keeps the lines
// it took.
type flakySink struct {
	mu    sync.Mutex
	down  bool
	tries int
	lines [][]byte
	tried chan struct{}
}

func (s *flakySink) Write(batch []byte, n int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tries++
	select {
	case s.tried <- struct{}{}:
	default:
	}
	if s.down {
		return fmt.Errorf("database away: %w", ErrRetry)
	}
	lines := bytes.SplitAfter(batch, []byte("\n"))
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	if len(lines) != n {
		return fmt.Errorf("batch of %d lines, told %d", len(lines), n)
	}
	s.lines = append(s.lines, lines...)
	return nil
}

func (s *flakySink) Close() error { return nil }

func (s *flakySink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *flakySink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// While the sink is down the batch is retried, not lost; records beyond
// the queue bound are dropped (OnFull drop) and counted; once the sink
// answers every queued record is written, in order.
func TestSinkRetriesWithinTheQueueBound(t *testing.T) {
	sink := &flakySink{down: true, tried: make(chan struct{}, 1)}
	l, err := OpenSink(sink, Options{Queue: 10, OnFull: Drop, RetryInterval: 5 * time.Millisecond, BatchInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := func(i int) *Record { return &Record{Time: time.Unix(int64(i), 0), RequestID: fmt.Sprint(i)} }
	l.Write(rec(0))
	<-sink.tried // the first batch (record 0) failed and is held
	for i := 1; i <= 20; i++ {
		l.Write(rec(i))
	}
	// Record 0 is held (it counts against the queue of 10): 9 more fit.
	if st := l.Stats(); st.Dropped != 11 || st.Written != 0 || st.Failed != 0 {
		t.Fatalf("Stats() while the sink is down = %+v; want 11 dropped, none written or failed", st)
	}
	sink.setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Written < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats() = %+v 5 s after the sink came back; want 10 written", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	if got := sink.count(); got != 10 {
		t.Fatalf("sink holds %d lines, want 10", got)
	}
	for i, line := range sink.lines {
		if want := fmt.Sprintf(`"request_id":"%d"`, i); !bytes.Contains(line, []byte(want)) {
			t.Errorf("line %d = %s; want %s", i, line, want)
		}
	}
}

// Under deny, requests are refused while the sink retries, and admitted
// again once it took the batch.
func TestSinkRetryDeniesUnderDeny(t *testing.T) {
	sink := &flakySink{down: true, tried: make(chan struct{}, 1)}
	l, err := OpenSink(sink, Options{Queue: 10, OnFull: Deny, RetryInterval: 5 * time.Millisecond, BatchInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Write(&Record{RequestID: "a"})
	<-sink.tried
	// The sink signals the try before it answers ErrRetry, and the writer
	// marks the log failing after: wait for the mark.
	for deadline := time.Now().Add(5 * time.Second); l.Admit(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Admit() = true 5 s after the sink refused a write under deny")
		}
	}
	if st := l.Stats(); st.Written != 0 {
		t.Fatalf("Stats() = %+v while the sink is down; want nothing written", st)
	}
	sink.setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for !l.Admit() || l.Stats().Written != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("Admit() still false 5 s after the sink came back; stats %+v", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// A sink error without ErrRetry loses the batch at once, counted failed.
func TestSinkPermanentErrorCountsFailed(t *testing.T) {
	l, err := OpenSink(errSink{}, Options{BatchInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(&Record{})
	l.Close()
	if st := l.Stats(); st.Failed != 1 {
		t.Errorf("Stats() = %+v; want 1 failed", st)
	}
}

type errSink struct{}

func (errSink) Write([]byte, int) error { return errors.New("bad row") }
func (errSink) Close() error            { return nil }
