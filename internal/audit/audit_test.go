package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sampleRecord() *Record {
	return &Record{
		Time:      time.Date(2026, 11, 23, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)),
		RequestID: "0123456789abcdef",
		CN:        "ci-7",
		Serial:    "9f2c",
		Groups:    []string{"ci", "builders"},
		Remote:    "192.0.2.7:50312",
		Method:    "POST",
		RawPath:   "/v1.47/containers/create",
		Path:      "/containers/create",
		Operation: "container.create",
		Decision:  "deny",
		Role:      "ci",
		Rule:      "roles.ci.containers.privileged",
		Reason:    "HostConfig.Privileged is not allowed",
		Status:    403,
		BytesIn:   2031,
		BytesOut:  187,
		Duration:  1500 * time.Microsecond,
		Target:    "",
	}
}

// wantKeys are the keys of every line; the record has no field for a
// body, a query or a header.
var wantKeys = []string{
	"bytes_in", "bytes_out", "cn", "decision", "duration_ms", "groups", "method", "operation", "path", "raw_path",
	"reason", "remote", "request_id", "role", "rule", "serial", "status", "target", "time",
}

func TestAppendJSONFields(t *testing.T) {
	line := AppendJSON(nil, sampleRecord())
	if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var got map[string]any
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatalf("invalid JSON %s: %v", line, err)
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, wantKeys) {
		t.Errorf("keys = %v, want %v", keys, wantKeys)
	}
	want := map[string]any{
		"time": "2026-11-23T09:00:00.123456789Z", "request_id": "0123456789abcdef", "cn": "ci-7", "serial": "9f2c",
		"groups": []any{"ci", "builders"}, "remote": "192.0.2.7:50312", "method": "POST",
		"raw_path": "/v1.47/containers/create", "path": "/containers/create", "operation": "container.create",
		"decision": "deny", "role": "ci", "rule": "roles.ci.containers.privileged",
		"reason": "HostConfig.Privileged is not allowed", "status": 403.0, "bytes_in": 2031.0, "bytes_out": 187.0,
		"duration_ms": 1.5, "target": "",
	}
	for k, v := range want {
		if !reflect.DeepEqual(got[k], v) {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
}

func TestAppendJSONEmptyGroups(t *testing.T) {
	var got struct{ Groups []string }
	if err := json.Unmarshal(AppendJSON(nil, &Record{}), &got); err != nil || got.Groups == nil || len(got.Groups) != 0 {
		t.Errorf("groups = %#v, %v; want []", got.Groups, err)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"", "plain", `quote " and \ backslash`, "line\nbreak\r\ttab", "\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "\u2028\u2029", "héllo wörld ✓", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate",
		"/containers/evil\",\"decision\":\"allow",
	}
	for _, s := range cases {
		assertStringEncoding(t, s)
	}
}

func assertStringEncoding(t *testing.T, s string) {
	t.Helper()
	want, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendString(nil, s); !bytes.Equal(got, want) {
		t.Errorf("appendString(%q) = %s, want %s", s, got, want)
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("/v1.47/containers/web/json")
	f.Add("ci-\n7\"}")
	f.Add("\xff\u2028<>&")
	f.Fuzz(func(t *testing.T, s string) {
		assertStringEncoding(t, s)
	})
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func TestFileIsCreated0600AndAppended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "audit.jsonl")
	for round := range 2 {
		l, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := sampleRecord()
		r.RequestID = fmt.Sprint(round)
		l.Write(r)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(path)); di.Mode().Perm() != 0o700 {
		t.Errorf("directory mode = %#o, want 0700", di.Mode().Perm())
	}
	lines := readLines(t, path)
	if len(lines) != 2 || !strings.Contains(lines[0], `"request_id":"0"`) || !strings.Contains(lines[1], `"request_id":"1"`) {
		t.Errorf("lines = %q, want both rounds in order", lines)
	}
}

func TestExistingFileIsTightenedTo0600(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %#o, want 0600", fi.Mode().Perm())
	}
	if lines := readLines(t, path); len(lines) != 1 || lines[0] != "old" {
		t.Errorf("existing content changed: %q", lines)
	}
}

func TestSymlinkRefused(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "audit.jsonl")
	if err := os.Symlink(target, link); err != nil {
		t.Skip(err)
	}
	if l, err := Open(link, Options{}); err == nil {
		l.Close()
		t.Fatal("Open followed a symbolic link")
	}
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	first := sampleRecord()
	first.RequestID = "before"
	l.Write(first)
	waitWritten(t, l, 1)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	second := sampleRecord()
	second.RequestID = "after"
	l.Write(second)
	waitWritten(t, l, 2)
	if lines := readLines(t, rotated); len(lines) != 1 || !strings.Contains(lines[0], `"before"`) {
		t.Errorf("rotated file = %q, want the first record only", lines)
	}
	if lines := readLines(t, path); len(lines) != 1 || !strings.Contains(lines[0], `"after"`) {
		t.Errorf("new file = %q, want the second record only", lines)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("reopened file mode = %#o, want 0600", fi.Mode().Perm())
	}
}

func TestReopenFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.jsonl")
	var reported []error
	var mu sync.Mutex
	l, err := Open(path, Options{OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	os.Remove(path)
	if err := os.Symlink(filepath.Join(dir, "x"), path); err != nil {
		t.Skip(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen onto a symbolic link succeeded")
	}
	l.Write(sampleRecord())
	waitWritten(t, l, 1) // still writing, to the old (unlinked) file
	mu.Lock()
	defer mu.Unlock()
	if len(reported) != 1 {
		t.Errorf("OnError called %d times, want 1", len(reported))
	}
}

// waitWritten waits until the writer goroutine has written n lines.
func waitWritten(t *testing.T, l *Log, n uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for l.Stats().Written < n {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v, want %d written", l.Stats(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestConcurrentWritersWriteWholeLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	const writers, each = 8, 500
	l, err := Open(path, Options{Queue: writers * each})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r := sampleRecord()
				r.RequestID = fmt.Sprintf("%d-%d", w, i)
				r.Reason = strings.Repeat("x", i) // lines of many lengths
				l.Write(r)
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	lines := readLines(t, path)
	if uint64(len(lines)) != st.Written || st.Written+st.Dropped != writers*each || st.Failed != 0 {
		t.Fatalf("%d lines, stats %+v, want %d records accounted for", len(lines), st, writers*each)
	}
	seen := map[string]bool{}
	for _, line := range lines {
		var r struct {
			RequestID string `json:"request_id"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("torn line %q: %v", line, err)
		}
		if seen[r.RequestID] {
			t.Fatalf("record %s written twice", r.RequestID)
		}
		seen[r.RequestID] = true
	}
}

// blockingWriter blocks every Write until release is closed; entered is
// closed when the first Write starts.
type blockingWriter struct {
	entered, release chan struct{}
	once             sync.Once
	mu               sync.Mutex
	buf              bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func TestFullQueueDropsInsteadOfBlocking(t *testing.T) {
	const queue, n = 4, 100
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := Open(Stdout, Options{Queue: queue, Stdout: w})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	<-w.entered // the writer is stuck on the first record
	for range n {
		l.Write(sampleRecord()) // returns although the writer is stuck
	}
	if st := l.Stats(); st.Dropped != n-queue {
		t.Errorf("stats = %+v, want %d dropped", st, n-queue)
	}
	close(w.release)
	l.Close()
	st := l.Stats()
	if st.Written != queue+1 || st.Written+st.Dropped != n+1 {
		t.Errorf("stats = %+v, want %d written and every record accounted for", st, queue+1)
	}
	if got := strings.Count(w.buf.String(), "\n"); uint64(got) != st.Written {
		t.Errorf("%d lines on the writer, want %d", got, st.Written)
	}
}

// failingWriter fails its first write halfway through, like a disk that
// filled up, then works.
type failingWriter struct {
	buf   bytes.Buffer
	fails int
}

var errNoSpace = errors.New("no space left on device")

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fails > 0 {
		w.fails--
		half := len(p) / 2
		w.buf.Write(p[:half])
		return half, errNoSpace
	}
	return w.buf.Write(p)
}

func TestFailedWriteIsCountedAndLaterLinesParse(t *testing.T) {
	w := &failingWriter{fails: 1}
	var reported error
	l, err := Open(Stdout, Options{Stdout: w, OnError: func(err error) { reported = err }})
	if err != nil {
		t.Fatal(err)
	}
	l.Write(sampleRecord())
	waitStats(t, l, func(s Stats) bool { return s.Failed == 1 })
	l.Write(sampleRecord())
	l.Close()
	if !errors.Is(reported, errNoSpace) {
		t.Errorf("OnError got %v, want the write error", reported)
	}
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("output %q, want a cut line and a whole one", w.buf.String())
	}
	if err := json.Unmarshal([]byte(lines[1]), new(map[string]any)); err != nil {
		t.Errorf("the line after a failed write does not parse: %q", lines[1])
	}
	if st := l.Stats(); st.Written != 1 || st.Failed != 1 {
		t.Errorf("stats = %+v, want 1 written, 1 failed", st)
	}
}

func waitStats(t *testing.T, l *Log, ok func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("stats = %+v", l.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriteAfterCloseIsDropped(t *testing.T) {
	var buf bytes.Buffer
	l, err := Open(Stdout, Options{Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	l.Write(sampleRecord())
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if st := l.Stats(); st.Dropped != 1 || buf.Len() != 0 {
		t.Errorf("stats %+v, output %q: want the record dropped", st, buf.String())
	}
	if err := l.Reopen(); err != nil {
		t.Errorf("Reopen of stdout = %v, want nil", err)
	}
}

func TestNewRequestID(t *testing.T) {
	a, b := NewRequestID(), NewRequestID()
	if len(a) != 16 || a == b {
		t.Errorf("NewRequestID() = %q, %q", a, b)
	}
}

func BenchmarkWrite(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.jsonl"), Options{Queue: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := sampleRecord()
	b.ReportAllocs()
	for b.Loop() {
		l.Write(r)
	}
}

// countingWriter counts the write(2) calls the writer goroutine makes.
type countingWriter struct {
	out    io.Writer
	writes atomic.Int64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	return w.out.Write(p)
}

// BenchmarkWriteParallel is Write from many request goroutines at once, as
// on a busy gateway: the cost on the request path and its allocations, and
// the write(2) calls per record, up to the last record on disk. The
// queue holds every record, so that none is dropped (a drop costs less
// than a write, and would flatter).
func BenchmarkWriteParallel(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := &countingWriter{out: f}
	l, err := Open(Stdout, Options{Queue: b.N + 1, Stdout: out})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := sampleRecord()
		for pb.Next() {
			l.Write(r)
		}
	})
	l.Close() // timed: the records are on disk, not just queued
	b.StopTimer()
	if st := l.Stats(); st.Dropped != 0 || st.Failed != 0 {
		b.Fatalf("stats = %+v, want nothing lost", st)
	}
	b.ReportMetric(float64(out.writes.Load())/float64(b.N), "writes/op")
}

// BenchmarkWritePaced writes 10 records a millisecond (10,000 requests a
// second, a busy gateway) and reports the write(2) calls per record: how
// often the writer goroutine wakes at a rate the disk keeps up with. Run
// it with -benchtime=20000x (2 s); ns/op is mostly the pacing.
func BenchmarkWritePaced(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "audit.jsonl"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := &countingWriter{out: f}
	l, err := Open(Stdout, Options{Stdout: out})
	if err != nil {
		b.Fatal(err)
	}
	r := sampleRecord()
	b.ReportAllocs()
	for i := range b.N {
		l.Write(r)
		if i%10 == 9 {
			time.Sleep(time.Millisecond) // the load's pace
		}
	}
	l.Close()
	b.StopTimer()
	if st := l.Stats(); st.Dropped != 0 || st.Failed != 0 {
		b.Fatalf("stats = %+v, want nothing lost", st)
	}
	b.ReportMetric(float64(out.writes.Load())/float64(b.N), "writes/op")
}
