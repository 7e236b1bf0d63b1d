package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConfigVersionsPushHistoryAndDedup(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := b.open(t, t.TempDir())
		if n, err := s.LatestConfigNumber(ctx); err != nil || n != 0 {
			t.Fatalf("LatestConfigNumber() = %d, %v; want 0 on an empty store", n, err)
		}
		if _, err := s.ConfigVersionAt(ctx, 0); !errors.Is(err, ErrNotFound) {
			t.Fatalf("ConfigVersionAt(0) error = %v; want ErrNotFound", err)
		}
		now := time.Unix(1_700_000_000, 0)
		v1, created, err := s.PushConfig(ctx, "listen: \":2376\"\n", "alice@a", "first", now)
		if err != nil || !created || v1.Version == 0 {
			t.Fatalf("PushConfig(first) = %+v, %v, %v", v1, created, err)
		}
		again, created, err := s.PushConfig(ctx, "listen: \":2376\"\n", "bob@b", "same", now)
		if err != nil || created || again.Version != v1.Version || again.Author != "alice@a" {
			t.Fatalf("PushConfig(same text) = %+v, %v, %v; want version %d unchanged", again, created, err, v1.Version)
		}
		v2, created, err := s.PushConfig(ctx, "listen: \":2377\"\n", "bob@b", "", now.Add(time.Minute))
		if err != nil || !created || v2.Version <= v1.Version {
			t.Fatalf("PushConfig(second) = %+v, %v, %v", v2, created, err)
		}
		// Pushing version 1's text again is a new version: history only grows.
		v3, created, err := s.PushConfig(ctx, v1.YAML, "carol@c", "rollback to 1", now.Add(2*time.Minute))
		if err != nil || !created || v3.Version <= v2.Version {
			t.Fatalf("PushConfig(v1 text again) = %+v, %v, %v", v3, created, err)
		}
		all, err := s.ConfigVersions(ctx)
		if err != nil || len(all) != 3 {
			t.Fatalf("ConfigVersions() = %d versions, %v; want 3", len(all), err)
		}
		if all[0].Version != v1.Version || all[2].Version != v3.Version || all[2].Comment != "rollback to 1" ||
			all[1].Author != "bob@b" || !all[1].CreatedAt.Equal(now.Add(time.Minute)) || all[0].SHA256 != ConfigSHA256(v1.YAML) {
			t.Errorf("ConfigVersions() = %+v", all)
		}
		got, err := s.ConfigVersionAt(ctx, v2.Version)
		if err != nil || got.YAML != "listen: \":2377\"\n" {
			t.Errorf("ConfigVersionAt(%d) = %+v, %v", v2.Version, got, err)
		}
		latest, err := s.ConfigVersionAt(ctx, 0)
		if err != nil || latest.Version != v3.Version || latest.YAML != v1.YAML {
			t.Errorf("ConfigVersionAt(0) = %+v, %v; want version %d", latest, err, v3.Version)
		}
		if _, err := s.ConfigVersionAt(ctx, 99); !errors.Is(err, ErrNotFound) {
			t.Errorf("ConfigVersionAt(99) error = %v; want ErrNotFound", err)
		}
	})
}

// A push through one handle reaches ConfigChanges on another handle of
// the same inventory (another process, or another host's gateway).
func TestConfigChangesSeesAPushFromElsewhere(t *testing.T) {
	forBackends(t, func(t *testing.T, b backend) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		dir := t.TempDir()
		watcher, pusher := b.open(t, dir), b.open(t, dir)
		// A poll far longer than the test: on PostgreSQL the notification
		// must carry the change; on SQLite a short poll is the only way.
		poll := time.Hour
		if b.name == "sqlite" {
			poll = 20 * time.Millisecond
		}
		ch := watcher.ConfigChanges(ctx, poll, func(err error) { t.Errorf("ConfigChanges: %v", err) })
		start := time.Now()
		if _, _, err := pusher.PushConfig(ctx, "log: {level: debug}\n", "alice@a", "", time.Now()); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
			t.Logf("%s: change seen %v after the push began", b.name, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatal("no change seen within 5 s of a push")
		}
	})
}
