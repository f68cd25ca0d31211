package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestTickerFollowsItsClock: a ticker of a moved clock ticks when the clock
// passes each period, drops the ticks a receiver did not take, and sends
// nothing once stopped.
func TestTickerFollowsItsClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := testtime.NewClock(start)
	tk := clock.NewTicker(c, time.Second)
	c.Add(999 * time.Millisecond)
	select {
	case got := <-tk.C:
		t.Fatalf("tick at %v, before the period passed", got)
	default:
	}
	c.Add(time.Millisecond)
	if got := <-tk.C; !got.Equal(start.Add(time.Second)) {
		t.Errorf("tick = %v, want %v", got, start.Add(time.Second))
	}
	// The next tick is armed once the first has been delivered.
	testtime.EventuallyTrue(t, 10*time.Second, "the ticker re-armed", func() bool {
		c.Add(time.Second)
		select {
		case <-tk.C:
			return true
		default:
			return false
		}
	})
	tk.Stop()
	c.Add(time.Hour)
	select {
	case got := <-tk.C:
		t.Errorf("tick at %v after Stop", got)
	default:
	}
}

// TestWithTimeout: a context of a moved clock ends when the clock passes
// its timeout, not before, with context.DeadlineExceeded as its cause.
func TestWithTimeout(t *testing.T) {
	c := testtime.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := clock.WithTimeout(context.Background(), c, time.Minute)
	defer cancel()
	c.Add(59 * time.Second)
	if err := ctx.Err(); err != nil {
		t.Fatalf("ctx.Err() at 59s = %v, want nil", err)
	}
	c.Add(time.Second)
	<-ctx.Done()
	if cause := context.Cause(ctx); cause != context.DeadlineExceeded {
		t.Errorf("context.Cause at 1m = %v, want %v", cause, context.DeadlineExceeded)
	}
}
