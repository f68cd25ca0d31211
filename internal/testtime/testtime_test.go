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

// TestClockTimers: an AfterFunc fires when the clock is moved to its time,
// not before, and not at all once stopped; Reset arms it again from the
// clock's time.
func TestClockTimers(t *testing.T) {
	c := NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	fired := make(chan string, 4)
	a := c.AfterFunc(time.Minute, func() { fired <- "a" })
	b := c.AfterFunc(time.Minute, func() { fired <- "b" })
	c.Add(59 * time.Second)
	select {
	case name := <-fired:
		t.Fatalf("timer %s fired at 59s, want at 1m", name)
	default:
	}
	if n := c.Timers(); n != 2 {
		t.Errorf("Timers() = %d with a and b armed, want 2", n)
	}
	if !b.Stop() {
		t.Error("Stop(armed timer) = false, want true")
	}
	c.Add(time.Second)
	if got := <-fired; got != "a" {
		t.Fatalf("fired %s at 1m, want a", got)
	}
	if a.Stop() {
		t.Error("Stop(fired timer) = true, want false")
	}
	a.Reset(time.Second)
	c.Add(time.Second)
	if got := <-fired; got != "a" {
		t.Fatalf("fired %s after Reset(1s) and 1s, want a", got)
	}
	select {
	case name := <-fired:
		t.Errorf("timer %s fired, want b stopped and a once per arming", name)
	default:
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
