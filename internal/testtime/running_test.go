package testtime

import (
	"testing"
	"time"
)

// TestRunning: a Running clock keeps the wall clock's pace; Add jumps it
// and fires at once the timers the jump makes due, while a timer not yet
// due fires by itself when its time comes; a stopped timer never fires.
func TestRunning(t *testing.T) {
	c := NewRunning()
	if d := c.Now().Sub(time.Now()); d < -time.Second || d > time.Second {
		t.Fatalf("Now() is %v off the wall clock, want about 0", d)
	}
	fired := make(chan string, 4)
	c.AfterFunc(time.Hour, func() { fired <- "hour" })
	stopped := c.AfterFunc(time.Hour, func() { fired <- "stopped" })
	c.AfterFunc(20*time.Millisecond, func() { fired <- "soon" })
	if got := <-fired; got != "soon" {
		t.Fatalf("first timer to fire = %q, want soon (20ms of wall time)", got)
	}
	if !stopped.Stop() {
		t.Error("Stop(armed timer) = false, want true")
	}
	c.Add(59 * time.Minute)
	select {
	case got := <-fired:
		t.Fatalf("timer %q fired 59m into an hour", got)
	case <-time.After(10 * time.Millisecond):
	}
	c.Add(time.Minute)
	if got := <-fired; got != "hour" {
		t.Fatalf("timer fired after Add(1h) = %q, want hour", got)
	}
	if d := c.Now().Sub(time.Now()); d < time.Hour-time.Second || d > time.Hour+time.Second {
		t.Errorf("Now() after Add(1h) is %v ahead of the wall clock, want 1h", d)
	}
	select {
	case got := <-fired:
		t.Errorf("timer %q fired, want the stopped one never", got)
	case <-time.After(10 * time.Millisecond):
	}
}
