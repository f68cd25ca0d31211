package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

func leases(t *testing.T, s store.Store) []store.LifetimeLease {
	t.Helper()
	ls, err := s.LifetimeLeases(context.Background())
	if err != nil {
		t.Fatalf("LifetimeLeases() = %v", err)
	}
	return ls
}

func lease(t *testing.T, s store.Store, lifetime time.Duration, until time.Time) {
	t.Helper()
	if err := s.LeaseLifetime(context.Background(), lifetime, until); err != nil {
		t.Fatalf("LeaseLifetime(%v, %v) = %v", lifetime, until, err)
	}
}

// testLifetimes: one lease per lifetime, never shortened, pruned once no
// token minted under it can be valid.
func testLifetimes(t *testing.T, s store.Store) {
	if ls := leases(t, s); len(ls) != 0 {
		t.Fatalf("LifetimeLeases() on a new store = %v, want none", ls)
	}
	long, short := time.Hour, 5*time.Minute
	lease(t, s, long, t0.Add(time.Minute))
	lease(t, s, short, t0.Add(2*time.Minute))
	lease(t, s, long, t0.Add(30*time.Second)) // earlier: ignored
	lease(t, s, short, t0.Add(3*time.Minute)) // later: kept
	want := []store.LifetimeLease{{Lifetime: short, Until: t0.Add(3 * time.Minute)}, {Lifetime: long, Until: t0.Add(time.Minute)}}
	got := leases(t, s)
	if len(got) != 2 || got[0].Lifetime != want[0].Lifetime || !got[0].Until.Equal(want[0].Until) ||
		got[1].Lifetime != want[1].Lifetime || !got[1].Until.Equal(want[1].Until) {
		t.Fatalf("LifetimeLeases() = %v, want %v", got, want)
	}
	ctx := context.Background()
	// The short lease covers tokens until t0+8m, the long one until t0+61m.
	if n, err := s.PruneLifetimeLeases(ctx, t0.Add(8*time.Minute)); err != nil || n != 0 {
		t.Errorf("PruneLifetimeLeases(at the last short-lived token's expiry) = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneLifetimeLeases(ctx, t0.Add(9*time.Minute)); err != nil || n != 1 {
		t.Errorf("PruneLifetimeLeases(after it) = %d, %v; want 1", n, err)
	}
	if got := leases(t, s); len(got) != 1 || got[0].Lifetime != long {
		t.Errorf("LifetimeLeases() after pruning = %v, want the long one", got)
	}
}
