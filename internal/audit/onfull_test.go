package audit

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stalledLog opens a log on a writer that blocks, and returns once the
// writer goroutine is stuck writing a first record: from then on, queue
// records fill the queue and the next one finds it full.
func stalledLog(t *testing.T, opts Options) (*Log, *blockingWriter) {
	t.Helper()
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	opts.Stdout = w
	l, err := Open(Stdout, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	<-w.entered
	for range opts.Queue {
		l.Write(sampleRecord())
	}
	return l, w
}

func TestOnFull(t *testing.T) {
	const queue = 3
	tests := []struct {
		onFull      OnFull
		wantDropped uint64 // of the one record written to the full queue
		admit       bool   // Admit while the queue is full
	}{
		{Drop, 1, true},
		{"", 1, true},
		{Block, 0, true},
		{Deny, 1, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.onFull), func(t *testing.T) {
			l, w := stalledLog(t, Options{Queue: queue, OnFull: tt.onFull})
			if got := l.Admit(); got != tt.admit {
				t.Errorf("Admit() with a full queue = %v, want %v", got, tt.admit)
			}
			returned := make(chan struct{})
			go func() { l.Write(sampleRecord()); close(returned) }()
			if tt.onFull == Block {
				waitFor(t, "a Write waiting for room", func() bool { return l.waiting.Load() == 1 })
				select {
				case <-returned:
					t.Fatal("Write returned while the queue was full")
				default:
				}
			} else {
				<-returned // without waiting for the disk
			}
			if st := l.Stats(); st.Dropped != tt.wantDropped {
				t.Errorf("stats with the writer stalled = %+v, want %d dropped", st, tt.wantDropped)
			}
			close(w.release)
			<-returned
			waitFor(t, "Admit after the writer caught up", l.Admit)
			l.Close()
			st := l.Stats()
			if want := queue + 2 - tt.wantDropped; st.Written != want || st.Dropped != tt.wantDropped || st.Failed != 0 {
				t.Errorf("stats = %+v, want %d written, %d dropped", st, want, tt.wantDropped)
			}
			if got := strings.Count(w.buf.String(), "\n"); uint64(got) != st.Written {
				t.Errorf("%d lines on the writer, want %d", got, st.Written)
			}
		})
	}
}

func TestBlockGivesUpAfterItsTimeout(t *testing.T) {
	l, w := stalledLog(t, Options{Queue: 2, OnFull: Block, blockTimeout: 10 * time.Millisecond})
	l.Write(sampleRecord()) // returns after the timeout
	if st := l.Stats(); st.Dropped != 1 || st.Written != 0 {
		t.Errorf("stats = %+v, want 1 dropped", st)
	}
	close(w.release)
	l.Close()
	if st := l.Stats(); st.Written != 3 || st.Dropped != 1 {
		t.Errorf("stats = %+v, want 3 written, 1 dropped", st)
	}
}

func TestCloseReleasesBlockedWriters(t *testing.T) {
	l, w := stalledLog(t, Options{Queue: 1, OnFull: Block, blockTimeout: time.Hour})
	returned := make(chan struct{})
	go func() { l.Write(sampleRecord()); close(returned) }()
	waitFor(t, "a Write waiting for room", func() bool { return l.waiting.Load() == 1 })
	closed := make(chan struct{})
	go func() { l.Close(); close(closed) }()
	close(w.release)
	<-closed
	<-returned
	// The waiter either got into the last batch or found the log closed.
	if st := l.Stats(); st.Written+st.Dropped != 3 {
		t.Errorf("stats = %+v, want all 3 records accounted for", st)
	}
}

func TestDenyRefusesWhileWritesFail(t *testing.T) {
	w := &failingWriter{fails: 1}
	l, err := Open(Stdout, Options{OnFull: Deny, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !l.Admit() {
		t.Fatal("Admit() = false on a fresh log")
	}
	l.Write(sampleRecord())
	waitStats(t, l, func(s Stats) bool { return s.Failed == 1 })
	if l.Admit() {
		t.Error("Admit() = true after a failed write")
	}
	l.Write(sampleRecord()) // the refusal's own record
	waitStats(t, l, func(s Stats) bool { return s.Written == 1 })
	if !l.Admit() {
		t.Error("Admit() = false after a write succeeded again")
	}
}

func TestAdmitAfterClose(t *testing.T) {
	for _, tt := range []struct {
		onFull OnFull
		want   bool
	}{{Drop, true}, {Block, true}, {Deny, false}} {
		l, err := Open(Stdout, Options{OnFull: tt.onFull, Stdout: &bytes.Buffer{}})
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if got := l.Admit(); got != tt.want {
			t.Errorf("%s: Admit() after Close = %v, want %v", tt.onFull, got, tt.want)
		}
	}
}

func TestOpenRefusesUnknownOnFull(t *testing.T) {
	if l, err := Open(Stdout, Options{OnFull: "wait", Stdout: &bytes.Buffer{}}); err == nil {
		l.Close()
		t.Fatal(`Open with OnFull "wait" succeeded`)
	}
}

func TestCollectorReadsStats(t *testing.T) {
	l, w := stalledLog(t, Options{Queue: 2})
	l.Write(sampleRecord()) // dropped
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collector())
	if got := gatherCounters(t, reg, "dockgate_audit_queued_records"); got[""] != 2 {
		t.Errorf("dockgate_audit_queued_records = %v, want 2 (a full queue)", got[""])
	}
	close(w.release)
	l.Close()
	got := gatherCounters(t, reg, "dockgate_audit_records_total")
	if q := gatherCounters(t, reg, "dockgate_audit_queued_records"); q[""] != 0 {
		t.Errorf("dockgate_audit_queued_records after Close = %v, want 0", q[""])
	}
	want := map[string]float64{"written": 3, "dropped": 1, "failed": 0}
	for result, v := range want {
		if got[result] != v {
			t.Errorf("dockgate_audit_records_total{result=%q} = %v, want %v (all: %v)", result, got[result], v, got)
		}
	}
}

func TestCollectorCountsFailures(t *testing.T) {
	l, err := Open(Stdout, Options{Stdout: &failingWriter{fails: 1}})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	l.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collector())
	if got := gatherCounters(t, reg, "dockgate_audit_records_total"); got["failed"] != 1 || got["written"] != 0 {
		t.Errorf("counters = %v, want 1 failed", got)
	}
}

func gatherCounters(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 0 {
				got[""] = m.GetGauge().GetValue()
				continue
			}
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return got
}

// syncBuffer is a log destination safe for the reporter's goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

func (b *syncBuffer) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), "\n")
}

func TestLossWarningsAreRateLimited(t *testing.T) {
	var logs syncBuffer
	tick := make(chan time.Time)
	l, w := stalledLog(t, Options{
		Queue:  1,
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		after:  func(time.Duration) <-chan time.Time { return tick },
	})
	secret := sampleRecord()
	secret.CN = "secret-cn"
	for range 3 {
		l.Write(secret) // dropped
	}
	waitFor(t, "the first warning", func() bool { return logs.count() == 1 })
	for range 4 {
		l.Write(secret) // dropped while the reporter is quiet
	}
	waitFor(t, "the drops counted", func() bool { return l.Stats().Dropped == 7 })
	if n := logs.count(); n != 1 {
		t.Fatalf("%d warnings before the interval ended, want 1: %q", n, logs.lines())
	}
	tick <- time.Now() // the interval is over
	waitFor(t, "the second warning", func() bool { return logs.count() == 2 })
	close(w.release)
	l.Close()
	lines := logs.lines()
	if len(lines) != 2 {
		t.Fatalf("warnings = %q, want 2", lines)
	}
	for i, want := range []string{"dropped=", "dropped="} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], want) || !strings.Contains(lines[i], "queue was full") {
			t.Errorf("warning %d = %q", i, lines[i])
		}
	}
	// The first line may have seen 1 to 3 drops; together they say 7.
	var total int
	for _, line := range lines {
		var n int
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "dropped="); ok {
				fmt.Sscan(v, &n)
			}
		}
		total += n
	}
	if total != 7 {
		t.Errorf("warnings count %d drops, want 7: %q", total, lines)
	}
	if strings.Contains(strings.Join(lines, "\n"), "secret-cn") {
		t.Error("a warning contains a record's content")
	}
}

func TestLossWarningSaysWhyWritesFailed(t *testing.T) {
	var logs syncBuffer
	l, err := Open(Stdout, Options{Stdout: &failingWriter{fails: 1}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	l.Close()
	lines := logs.lines()
	if len(lines) != 1 || !strings.Contains(lines[0], "failed=1") || !strings.Contains(lines[0], "no space left on device") {
		t.Errorf("warnings = %q, want one saying 1 failed and why", lines)
	}
}

// syncingWriter records writes and syncs in order; a sync fails while
// syncErr is set.
type syncingWriter struct {
	calls   []string
	syncErr error
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	w.calls = append(w.calls, fmt.Sprintf("write %d", bytes.Count(p, []byte("\n"))))
	return len(p), nil
}

func (w *syncingWriter) Sync() error {
	w.calls = append(w.calls, "sync")
	return w.syncErr
}

func TestSync(t *testing.T) {
	tests := []struct {
		sync    bool
		syncErr error
		want    []string
		wantSt  Stats
	}{
		{false, nil, []string{"write 2"}, Stats{Written: 2}},
		{true, nil, []string{"write 2", "sync"}, Stats{Written: 2}},
		{true, errNoSpace, []string{"write 2", "sync"}, Stats{Failed: 2}},
	}
	for _, tt := range tests {
		w := &syncingWriter{syncErr: tt.syncErr}
		l, err := Open(Stdout, Options{Stdout: w, Sync: tt.sync, BatchInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		l.Write(sampleRecord())
		l.Write(sampleRecord())
		l.Close() // ends the batch interval: one batch
		if strings.Join(w.calls, ",") != strings.Join(tt.want, ",") || l.Stats() != tt.wantSt {
			t.Errorf("sync %v, error %v: calls %q, stats %+v; want %q, %+v", tt.sync, tt.syncErr, w.calls, l.Stats(), tt.want, tt.wantSt)
		}
	}
}

func TestSyncOfAFile(t *testing.T) {
	path := t.TempDir() + "/audit.jsonl"
	l, err := Open(path, Options{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	l.Close()
	if st := l.Stats(); st.Written != 1 || st.Failed != 0 {
		t.Errorf("stats = %+v, want 1 written", st)
	}
	if lines := readLines(t, path); len(lines) != 1 {
		t.Errorf("%d lines, want 1", len(lines))
	}
}

func TestBatchesAreOneWrite(t *testing.T) {
	w := &syncingWriter{}
	l, err := Open(Stdout, Options{Stdout: w, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for range 50 {
		l.Write(sampleRecord())
	}
	l.Close()
	if strings.Join(w.calls, ",") != "write 50" {
		t.Errorf("writes = %q, want the 50 lines in one write", w.calls)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFullBatchIsWrittenBeforeTheInterval(t *testing.T) {
	var buf syncBuffer
	l, err := Open(Stdout, Options{Stdout: &buf, BatchInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := sampleRecord()
	r.Reason = strings.Repeat("x", 10<<10)
	for range maxBatch/len(r.Reason) + 1 {
		l.Write(r)
	}
	waitFor(t, "a write before the hour is over", func() bool { return l.Stats().Written > 0 })
}
