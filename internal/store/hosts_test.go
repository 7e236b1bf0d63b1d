package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestHostRegistry(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dir := t.TempDir()
		a, other := b.open(t, dir), b.open(t, dir) // two gateways, one inventory
		t0 := time.Unix(1_800_000_000, 0).UTC()
		prod := Host{Name: "h1", Addresses: []string{"h1.example.net:2376", "192.0.2.1:2376"},
			EnrollAddresses: []string{"h1.example.net:2386"}, Labels: map[string]string{"env": "prod"},
			Version: "v1.0.0", CAFingerprint: "ab12"}
		if err := a.RegisterHost(ctx, prod, t0); err != nil {
			t.Fatal(err)
		}
		if err := other.RegisterHost(ctx, Host{Name: "h2", Labels: nil}, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := a.Heartbeat(ctx, "h1", t0.Add(20*time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := a.Heartbeat(ctx, "nobody", t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("Heartbeat(unregistered) error = %v, want ErrNotFound", err)
		}
		hosts, err := other.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(hosts) != 2 {
			t.Fatalf("Hosts() = %+v, want h1 and h2", hosts)
		}
		want := prod
		want.FirstSeen, want.LastSeen = t0, t0.Add(20*time.Second)
		if !reflect.DeepEqual(hosts[0], want) {
			t.Errorf("Hosts()[0] = %+v\nwant %+v", hosts[0], want)
		}
		if h := hosts[1]; h.Name != "h2" || len(h.Labels) != 0 || h.Labels == nil || h.Addresses == nil {
			t.Errorf("Hosts()[1] = %+v, want h2 with empty (not nil) labels and addresses", h)
		}

		// Registering again (a restart with new labels) keeps first_seen.
		prod.Labels = map[string]string{"env": "staging"}
		if err := a.RegisterHost(ctx, prod, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		hosts, err = a.Hosts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h := hosts[0]; !h.FirstSeen.Equal(t0) || !h.LastSeen.Equal(t0.Add(time.Hour)) || h.Labels["env"] != "staging" {
			t.Errorf("after re-registering: %+v; want first_seen %s, last_seen an hour later, env=staging", h, t0)
		}
	})
}

func TestHostHealthy(t *testing.T) {
	seen := time.Unix(1_800_000_000, 0)
	h := Host{LastSeen: seen}
	for _, tt := range []struct {
		after time.Duration
		want  bool
	}{{0, true}, {29 * time.Second, true}, {30 * time.Second, false}, {time.Hour, false}} {
		if got := h.Healthy(seen.Add(tt.after)); got != tt.want {
			t.Errorf("Healthy(%s after the heartbeat) = %v, want %v", tt.after, got, tt.want)
		}
	}
}
