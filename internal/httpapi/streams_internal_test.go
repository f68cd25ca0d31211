package httpapi

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestKeyCheckedOncePerKey: the keys of open streams are checked again
// once per key every recheck, however many streams each has open; a
// refused key ends its streams and no other; a key whose streams all
// ended is no longer checked.
func TestKeyCheckedOncePerKey(t *testing.T) {
	clk := testtime.NewClock(time.Unix(1_800_000_000, 0))
	var mu sync.Mutex
	checks := map[string]int{}
	refused := map[string]bool{}
	checked := make(chan struct{}, 16)
	ss := newStreams(DefaultLimits(), 0, clk, func(_ context.Context, secret string) error {
		mu.Lock()
		defer mu.Unlock()
		defer func() { checked <- struct{}{} }()
		checks[secret]++
		if refused[secret] {
			return authority.ErrUnauthorized
		}
		return nil
	})
	type open struct {
		ctx  context.Context
		stop func()
	}
	streamOf := func(key, secret string) open {
		ctx, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		return open{ctx, ss.watch(&stream{key: key, cancel: cancel}, secret)}
	}
	a := []open{streamOf("a", "sa"), streamOf("a", "sa"), streamOf("a", "sa")}
	b := streamOf("b", "sb")
	tick := func(want int) {
		t.Helper()
		clk.Add(ss.recheck)
		for range want {
			select {
			case <-checked:
			case <-time.After(10 * time.Second):
				t.Fatalf("fewer than %d key checks after a recheck interval", want)
			}
		}
		testtime.EventuallyTrue(t, 10*time.Second, "the checks rearmed", func() bool { return clk.Timers() == want })
	}
	tick(2)
	tick(2)
	mu.Lock()
	if checks["sa"] != 2 || checks["sb"] != 2 {
		t.Errorf("checks after two intervals = %v, want 2 for each key (three streams of a, one of b)", checks)
	}
	refused["sb"] = true
	mu.Unlock()
	tick(2)
	select {
	case <-b.ctx.Done():
		if context.Cause(b.ctx) != errKeyRevoked {
			t.Errorf("b ended with %v, want %v", context.Cause(b.ctx), errKeyRevoked)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the stream of the refused key did not end")
	}
	for _, s := range a {
		if s.ctx.Err() != nil {
			t.Fatal("a stream of a key still accepted ended")
		}
	}
	b.stop()
	for _, s := range a {
		s.stop()
	}
	if n := clk.Timers(); n != 0 {
		t.Errorf("%d timers armed once every stream ended, want 0", n)
	}
}
