package fairshare

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var lim = Limits{Connections: 2, Requests: 3, Streams: 1, Rate: 10, Burst: 5}

func TestAcquireStopsAtTheCapPerClient(t *testing.T) {
	l := New(nil)
	var releases []func()
	for i := range lim.Requests {
		release, held, ok := l.Acquire("a", "ci", Requests, lim)
		if !ok || held != i+1 {
			t.Fatalf("acquire %d: ok=%v held=%d, want ok and %d", i, ok, held, i+1)
		}
		releases = append(releases, release)
	}
	if _, held, ok := l.Acquire("a", "ci", Requests, lim); ok || held != lim.Requests {
		t.Fatalf("acquire over the cap: ok=%v held=%d, want refused at %d", ok, held, lim.Requests)
	}
	// Another client, and another kind of the same client, are untouched.
	if _, _, ok := l.Acquire("b", "ci", Requests, lim); !ok {
		t.Error("client b refused while a is at its cap")
	}
	if _, _, ok := l.Acquire("a", "ci", Streams, lim); !ok {
		t.Error("a's stream refused while only its requests are at the cap")
	}
	releases[0]()
	releases[0]() // a second call must not free a slot twice
	if got := l.Held("a", Requests); got != lim.Requests-1 {
		t.Errorf("held after one release (called twice) = %d, want %d", got, lim.Requests-1)
	}
	if _, _, ok := l.Acquire("a", "ci", Requests, lim); !ok {
		t.Error("a refused after releasing a slot")
	}
}

func TestZeroCapIsNoCap(t *testing.T) {
	l := New(nil)
	for range 1000 {
		if _, _, ok := l.Acquire("a", "admin", Connections, Limits{}); !ok {
			t.Fatal("refused without a cap")
		}
	}
	if ok, _ := l.Take("a", Limits{}); !ok {
		t.Error("rate limited without a rate")
	}
}

func TestLoweredCapKeepsWhatIsHeld(t *testing.T) {
	l := New(nil)
	for range 3 {
		l.Acquire("a", "ci", Connections, Limits{Connections: 3})
	}
	if _, held, ok := l.Acquire("a", "ci", Connections, Limits{Connections: 2}); ok || held != 3 {
		t.Errorf("after lowering the cap: ok=%v held=%d, want refused with 3 held", ok, held)
	}
}

func TestReleaseOnPanic(t *testing.T) {
	l := New(nil)
	func() {
		defer func() { _ = recover() }()
		release, _, _ := l.Acquire("a", "ci", Streams, lim)
		defer release()
		panic(errors.New("handler failed"))
	}()
	if got := l.Held("a", Streams); got != 0 {
		t.Errorf("held after a panic = %d, want 0", got)
	}
	if got := l.ByRole(); len(got) != 0 {
		t.Errorf("ByRole after every release = %+v, want empty", got)
	}
}

func TestConcurrentAcquireNeverExceedsTheCap(t *testing.T) {
	l := New(nil)
	const workers, rounds, cap = 16, 200, 4
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				release, held, ok := l.Acquire("a", "ci", Requests, Limits{Requests: cap})
				if !ok {
					continue
				}
				granted.Add(1)
				if held > cap {
					t.Errorf("acquired as number %d, cap %d", held, cap)
				}
				release()
			}
		})
	}
	wg.Wait()
	if granted.Load() == 0 {
		t.Error("nothing was granted")
	}
	if got := l.Held("a", Requests); got != 0 {
		t.Errorf("held after all released = %d, want 0", got)
	}
}

func TestByRoleSumsClientsOfARole(t *testing.T) {
	l := New(nil)
	l.Acquire("a", "ci", Connections, lim)
	l.Acquire("b", "ci", Connections, lim)
	rel, _, _ := l.Acquire("b", "ci", Streams, lim)
	l.Acquire("c", "dev", Requests, lim)
	want := []RoleUse{{Role: "ci", Connections: 2, Streams: 1}, {Role: "dev", Requests: 1}}
	if got := l.ByRole(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("ByRole = %+v, want %+v", got, want)
	}
	rel()
	if got := l.ByRole(); got[0].Streams != 0 {
		t.Errorf("ByRole after release = %+v", got)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestTakeIsATokenBucket(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := New(c.now)
	for i := range lim.Burst {
		if ok, _ := l.Take("a", lim); !ok {
			t.Fatalf("take %d of a full burst refused", i)
		}
	}
	ok, wait := l.Take("a", lim)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("take from an empty bucket: ok=%v wait=%v, want refused, 100ms", ok, wait)
	}
	if ok, _ := l.Take("b", lim); !ok {
		t.Error("client b refused while a's bucket is empty")
	}
	c.t = c.t.Add(250 * time.Millisecond) // 2.5 tokens at 10/s
	for i := range 2 {
		if ok, _ := l.Take("a", lim); !ok {
			t.Fatalf("take %d after 250ms refused", i)
		}
	}
	if ok, wait := l.Take("a", lim); ok || wait != 50*time.Millisecond {
		t.Errorf("third take after 250ms: ok=%v wait=%v, want refused, 50ms", ok, wait)
	}
	c.t = c.t.Add(time.Hour)
	n := 0
	for {
		if ok, _ := l.Take("a", lim); !ok {
			break
		}
		n++
	}
	if n != lim.Burst {
		t.Errorf("after an hour %d tokens, want the burst %d", n, lim.Burst)
	}
}

func TestClockStepBackRefillsNothing(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := New(c.now)
	one := Limits{Rate: 1, Burst: 1}
	l.Take("a", one)
	c.t = c.t.Add(-time.Hour)
	if ok, _ := l.Take("a", one); ok {
		t.Error("a clock step back refilled the bucket")
	}
}

func TestIdleClientsAreSweptButKeepTheirBucketAWhile(t *testing.T) {
	c := &clock{t: time.Unix(1e9, 0)}
	l := New(c.now)
	one := Limits{Rate: 1, Burst: 1}
	l.Take("a", one)
	for i := range 100 { // enough new clients to trigger a sweep
		rel, _, _ := l.Acquire(string(rune('A'+i)), "ci", Connections, lim)
		rel()
	}
	if ok, _ := l.Take("a", one); ok {
		t.Error("a sweep gave an idle client its burst back at once")
	}
	c.t = c.t.Add(2 * sweepAge)
	for i := range 300 {
		l.Acquire(string(rune(0x1000+i)), "ci", Requests, lim)
	}
	l.mu.Lock()
	_, kept := l.clients["a"]
	n := len(l.clients)
	l.mu.Unlock()
	if kept {
		t.Error("an idle client past sweepAge was kept")
	}
	if n < 300 {
		t.Errorf("%d clients left, want the 300 that hold a request", n)
	}
}
