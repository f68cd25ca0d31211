package authority

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestObserveCurrent: a head the authority has applied up to keeps it
// fresh and spares its periodic read for two followEvery, with no read of
// its own.
func TestObserveCurrent(t *testing.T) {
	a, clk := newTestAuthority(t)
	if a.observedLately() {
		t.Fatal("observedLately() = true before any Observe")
	}
	for range 12 {
		a.Observe(a.applied.Load())
		clk.Add(time.Second)
	}
	if err := a.fresh(); err != nil {
		t.Errorf("fresh() after 12 s of heads observed = %v, want nil", err)
	}
	if !a.observedLately() {
		t.Errorf("observedLately() 1 s after a head = false, want true")
	}
	clk.Add(time.Second - time.Nanosecond)
	if !a.observedLately() {
		t.Errorf("observedLately() just under 2 s after a head = false, want true")
	}
	clk.Add(time.Nanosecond)
	if a.observedLately() {
		t.Errorf("observedLately() 2 s after a head = true, want false (Run reads the log itself)")
	}
	a.Observe(a.applied.Load() + 1)
	if a.observedLately() {
		t.Errorf("observedLately() after a head ahead of the set = true, want false")
	}
}

// TestObserveAhead: another node's append whose wake-up never came is
// read as soon as a head ahead is observed. The clock stands still, so
// no tick reads the log, and the append's notice goes to the other
// handle's subscribers only.
func TestObserveAhead(t *testing.T) {
	path := t.TempDir() + "/t.db"
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	other, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := testtime.NewClock(now)
	a, err := New(context.Background(), st, bytes.Repeat([]byte{7}, MasterKeySize), Config{Issuer: "https://auth.test", Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	e, err := other.RevokeSubject(context.Background(), store.SubjectRevocation{Subject: "alice", Now: now, ExpiresAt: now.Add(time.Hour)})
	if err != nil {
		t.Fatalf("RevokeSubject() = %v", err)
	}
	if applied := a.applied.Load(); e.Seq <= applied {
		t.Fatalf("the other handle's append has seq %d, want above the %d applied", e.Seq, applied)
	}
	a.Observe(e.Seq)
	testtime.EventuallyTrue(t, 5*time.Second, "the authority to apply the observed head",
		func() bool { return a.applied.Load() == e.Seq })
}
