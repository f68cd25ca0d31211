package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

func testLogEmpty(t *testing.T, s store.Store) {
	ctx := context.Background()
	if h := head(t, s); h != 0 {
		t.Errorf("Head() = %d, want 0", h)
	}
	if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || len(es) != 0 {
		t.Errorf("EntriesAfter(0) = %v, %v, want none", es, err)
	}
	if n, err := s.PruneLog(ctx, t0, t0); err != nil || n != 0 {
		t.Errorf("PruneLog() = %d, %v, want 0", n, err)
	}
}

func testEntriesAfter(t *testing.T, s store.Store) {
	ctx := context.Background()
	var all []revocation.Entry
	for i := range 5 {
		all = append(all, revokeSubject(t, s, fmt.Sprintf("user%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	tests := []struct {
		name  string
		after int64
		limit int
		want  []int64
	}{
		{"from the start, limited", 0, 2, []int64{1, 2}},
		{"from the middle", 2, 10, []int64{3, 4, 5}},
		{"exact limit", 1, 4, []int64{2, 3, 4, 5}},
		{"at the head", 5, 10, []int64{}},
		{"past the head", 9, 10, []int64{}},
		{"no limit", 0, 0, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := s.EntriesAfter(ctx, tt.after, tt.limit)
			if err != nil || !slices.Equal(seqs(es), tt.want) {
				t.Fatalf("EntriesAfter(%d, %d) = %v, %v, want %v", tt.after, tt.limit, seqs(es), err, tt.want)
			}
			for _, e := range es {
				if !entryEqual(e, all[e.Seq-1]) {
					t.Errorf("EntriesAfter() entry %d = %+v, want %+v as appended", e.Seq, e, all[e.Seq-1])
				}
			}
		})
	}
}

func testPruneLog(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Entries 1, 2, 3 expire at t0+1h, t0+2h, t0+3h.
	for i := 1; i <= 3; i++ {
		now := t0.Add(time.Duration(i)*time.Hour - accessLife)
		revokeSubject(t, s, fmt.Sprintf("user%d", i), now)
	}
	steps := []struct {
		name   string
		now    time.Time
		pruned int64
		left   []int64
	}{
		{"nothing expired", t0, 0, []int64{1, 2, 3}},
		{"first expires exactly now", t0.Add(time.Hour), 1, []int64{2, 3}},
		{"all expired, head entry kept", t0.Add(5 * time.Hour), 1, []int64{3}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if n, err := s.PruneLog(ctx, st.now, st.now); err != nil || n != st.pruned {
				t.Errorf("PruneLog(%v) = %d, %v, want %d", st.now, n, err, st.pruned)
			}
			if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || !slices.Equal(seqs(es), st.left) {
				t.Errorf("EntriesAfter(0) after PruneLog = %v, %v, want %v", seqs(es), err, st.left)
			}
			if h := head(t, s); h != 3 {
				t.Errorf("Head() after PruneLog = %d, want 3", h)
			}
		})
	}
	// Seqs carry on from the head; pruned ones are never handed out again.
	if e := revokeSubject(t, s, "user4", t0.Add(5*time.Hour)); e.Seq != 4 {
		t.Errorf("RevokeSubject() after pruning: seq %d, want 4", e.Seq)
	}
	if es, err := s.EntriesAfter(ctx, 0, 10); err != nil || !slices.Equal(seqs(es), []int64{3, 4}) {
		t.Errorf("EntriesAfter(0) = %v, %v, want [3 4]", seqs(es), err)
	}
}

// testLogConcurrentAppends appends from many goroutines while a reader
// follows the log the way the feed does: it must see every seq exactly once,
// in order, and never find an entry below a head it already saw missing.
func testLogConcurrentAppends(t *testing.T, nodes []store.Store) {
	ctx := context.Background()
	s := nodes[0]
	const n = 200
	got := make([]int64, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e, err := nodes[i%len(nodes)].RevokeSubject(ctx, store.SubjectRevocation{
				Subject: fmt.Sprintf("user%d", i), Now: t0, ExpiresAt: t0.Add(accessLife),
				Actor: store.Actor{By: "admin-key"},
			})
			if err != nil {
				t.Errorf("RevokeSubject() #%d = %v", i, err)
			}
			got[i] = e.Seq
		})
	}
	writersDone := make(chan struct{})
	go func() { wg.Wait(); close(writersDone) }()
	close(start)

	// The writers are waited for even when the reader fails, so none of
	// them outlives the store.
	err := follow(s, n, writersDone)
	<-writersDone
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	for i, seq := range got {
		if seq != int64(i+1) {
			t.Fatalf("RevokeSubject() seqs sorted = %v, want 1..%d without gaps or repeats", got, n)
		}
	}
}

// follow reads the log from the start until it has seen n entries, the way
// the feed does, and reports the first entry missed or out of order.
func follow(s store.Store, n int64, writersDone <-chan struct{}) error {
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	var last int64
	for last < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("reader stopped at seq %d of %d", last, n)
		}
		h, err := s.Head(ctx)
		if err != nil {
			return fmt.Errorf("Head() = %w", err)
		}
		es, err := s.EntriesAfter(ctx, last, 1000)
		if err != nil {
			return fmt.Errorf("EntriesAfter(%d) = %w", last, err)
		}
		for _, e := range es {
			if e.Seq != last+1 {
				return fmt.Errorf("EntriesAfter() after seq %d returned seq %d", last, e.Seq)
			}
			last = e.Seq
		}
		if last < h {
			return fmt.Errorf("EntriesAfter() stopped at seq %d although Head() was already %d", last, h)
		}
		select {
		case <-writersDone:
		default:
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}
