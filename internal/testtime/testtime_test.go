package testtime

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewClock(start)
	c.Add(time.Minute)
	if got := c.Now(); !got.Equal(start.Add(time.Minute)) {
		t.Errorf("Now after Add(1m) = %v, want %v", got, start.Add(time.Minute))
	}
	if got := c.In(time.Hour); !got.Equal(start.Add(61 * time.Minute)) {
		t.Errorf("In(1h) = %v", got)
	}
	c.Set(start)
	if !c.Now().Equal(start) {
		t.Errorf("Now after Set = %v, want %v", c.Now(), start)
	}
}

func TestEventually(t *testing.T) {
	var n atomic.Int32
	Eventually(t, time.Minute, "the third call", func() error {
		if n.Add(1) < 3 {
			return errors.New("too early")
		}
		return nil
	})
	if n.Load() != 3 {
		t.Errorf("cond called %d times, want 3", n.Load())
	}
}

// TestEventuallyFails: a condition that never holds fails the test with
// what was awaited and why not (checked on a recorder, not on t).
func TestEventuallyFails(t *testing.T) {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Eventually(r, 10*time.Millisecond, "the impossible", func() error { return errors.New("never") })
	}()
	<-done
	if r.msg != "the impossible: not within "+Scale(10*time.Millisecond).String()+": never" {
		t.Errorf("failure = %q", r.msg)
	}
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, as t.Fatalf does.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
