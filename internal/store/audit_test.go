package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dockgate/dockgate/internal/audit"
	"github.com/dockgate/dockgate/internal/store/storetest"
)

func auditBatch(recs ...*audit.Record) []byte {
	var b []byte
	for _, r := range recs {
		b = audit.AppendJSON(b, r)
	}
	return b
}

func TestAuditSinkWritesAndQueryFilters(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := t.TempDir()
		s := b.open(t, dir)
		t0 := time.Date(2026, 12, 5, 8, 0, 0, 0, time.UTC)
		rec := func(i int, cn, op, decision string, status int) *audit.Record {
			return &audit.Record{Time: t0.Add(time.Duration(i) * time.Minute), RequestID: fmt.Sprint("r", i), CN: cn,
				Operation: op, Decision: decision, Role: "ci", Status: status, Reason: map[bool]string{true: "not allowed"}[decision == "deny"]}
		}
		a := s.AuditSink("host-a")
		if err := a.Write(auditBatch(rec(0, "ci", "container.list", "allow", 200), rec(1, "ci", "container.create", "deny", 403)), 2); err != nil {
			t.Fatal(err)
		}
		// Another gateway on the same store.
		other := b.open(t, dir).AuditSink("host-b")
		if err := other.Write(auditBatch(rec(2, "ops", "container.list", "deny", 403), rec(3, "ci", "image.pull", "allow", 200)), 2); err != nil {
			t.Fatal(err)
		}
		ids := func(f audit.Filter) string {
			t.Helper()
			es, err := s.QueryAudit(ctx, f)
			if err != nil {
				t.Fatalf("QueryAudit(%+v) error = %v", f, err)
			}
			var out []string
			for _, e := range es {
				out = append(out, e.Host+"/"+e.RequestID)
			}
			return strings.Join(out, " ")
		}
		for _, c := range []struct {
			f    audit.Filter
			want string
		}{
			{audit.Filter{}, "host-b/r3 host-b/r2 host-a/r1 host-a/r0"},
			{audit.Filter{Decision: "deny"}, "host-b/r2 host-a/r1"},
			{audit.Filter{CN: "ci"}, "host-b/r3 host-a/r1 host-a/r0"},
			{audit.Filter{Host: "host-a"}, "host-a/r1 host-a/r0"},
			{audit.Filter{Op: "container.*"}, "host-b/r2 host-a/r1 host-a/r0"},
			{audit.Filter{Op: "container.l?st"}, "host-b/r2 host-a/r0"},
			{audit.Filter{Op: "container_list"}, ""}, // _ is no wildcard
			{audit.Filter{Since: t0.Add(2 * time.Minute)}, "host-b/r3 host-b/r2"},
			{audit.Filter{Limit: 1}, "host-b/r3"},
		} {
			if got := ids(c.f); got != c.want {
				t.Errorf("QueryAudit(%+v) = %q; want %q", c.f, got, c.want)
			}
		}
		es, err := s.QueryAudit(ctx, audit.Filter{Limit: 1, Decision: "deny"})
		if err != nil || len(es) != 1 {
			t.Fatalf("QueryAudit = %v, %v", es, err)
		}
		e := es[0]
		if e.Status != 403 || e.Reason != "not allowed" || e.Role != "ci" || !e.Time.Equal(t0.Add(2*time.Minute)) ||
			!strings.Contains(string(e.JSON), `"request_id":"r2"`) || strings.HasSuffix(string(e.JSON), "\n") {
			t.Errorf("entry = %+v, JSON %s", e, e.JSON)
		}
		// More rows than one INSERT takes.
		var many []*audit.Record
		for i := range 1200 {
			many = append(many, rec(10+i, "bulk", "system.ping", "allow", 200))
		}
		if err := a.Write(auditBatch(many...), len(many)); err != nil {
			t.Fatal(err)
		}
		if es, err := s.QueryAudit(ctx, audit.Filter{CN: "bulk"}); err != nil || len(es) != 1200 {
			t.Errorf("QueryAudit(bulk) = %d rows, %v; want 1200", len(es), err)
		}
	})
}

// A gateway whose link to PostgreSQL is cut keeps its audit records in
// the queue (the sink answers audit.ErrRetry), drops and counts only what
// does not fit, and writes the rest once the link is back.
func TestAuditSinkRetriesThroughAnOutage(t *testing.T) {
	direct := storetest.PostgresURL(t)
	proxied, proxy := storetest.ProxiedURL(t, direct)
	ctx := context.Background()
	admin, err := OpenWith(t.TempDir(), Options{URL: direct})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	gw, err := OpenWith(t.TempDir(), Options{URL: proxied})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	sink := gw.AuditSink("host-a")
	proxy.Cut()
	if err := sink.Write(auditBatch(&audit.Record{RequestID: "x"}), 1); !errors.Is(err, audit.ErrRetry) {
		t.Fatalf("Write through a cut link error = %v; want audit.ErrRetry", err)
	}
	l, err := audit.OpenSink(sink, audit.Options{Queue: 5, OnFull: audit.Drop, RetryInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		l.Write(&audit.Record{Time: time.Now(), RequestID: fmt.Sprint("r", i), CN: "ci", Decision: "deny"})
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().Written+l.Stats().Dropped < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("Stats() = %+v 10 s after the link returned", l.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	l.Close()
	st := l.Stats()
	es, err := admin.QueryAudit(ctx, audit.Filter{Host: "host-a"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Failed != 0 || st.Written < 5 || st.Written+st.Dropped != 8 || uint64(len(es)) != st.Written {
		t.Errorf("Stats() = %+v, %d rows in the table; want none failed, at least the 5 the queue holds written, each written one stored", st, len(es))
	}
	t.Logf("through the outage: %+v", st)
}
