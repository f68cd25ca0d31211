package feed

import (
	"bytes"
	"io"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// TestFollowerYieldsDuringBurst: applying a burst lets a goroutine that is
// ready run after the event being applied, even with one thread and the
// whole stream already buffered (no read ever blocks): a request made ready
// meanwhile does not wait for the burst. Not parallel: it sets GOMAXPROCS
// for the whole process.
func TestFollowerYieldsDuringBurst(t *testing.T) {
	const n = 5000
	data := stream(t, n)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var other atomic.Bool
	applied, before := 0, 0 // entries applied, and before the other goroutine ran
	s := (&Client{Apply: func(revocation.Entry) error {
		applied++
		if !other.Load() {
			before = applied
		}
		return nil
	}, Logger: quietLog()}).follower()
	go other.Store(true) // runnable from now on, on the same thread
	d := NewDecoder(bytes.NewReader(data))
	for {
		ev, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.handle(ev); err != nil {
			t.Fatal(err)
		}
	}
	if applied != n {
		t.Fatalf("applied %d entries, want %d", applied, n)
	}
	if before > maxBatchEntries {
		t.Fatalf("another goroutine waited for %d of %d entries to be applied, want at most one event's (%d)", before, n, maxBatchEntries)
	}
}
