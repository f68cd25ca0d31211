package testtime

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
)

// Running is the wall clock moved forward by what a test adds. It runs at
// the wall clock's pace, so that what a component does on its own in time
// (reconnect, renew a lease) it still does, and Add jumps it: the timers
// the jump makes due fire at once, as a stopped Clock's do when moved,
// and the others are due that much sooner. It is a clock.Clock, for tests
// of processes that talk to real sockets and must not stand still.
type Running struct {
	off atomic.Int64 // nanoseconds added

	mu     sync.Mutex
	timers map[*runningTimer]struct{} // armed
}

// NewRunning returns a Running clock at the wall clock's time.
func NewRunning() *Running { return &Running{timers: map[*runningTimer]struct{}{}} }

// Now returns the wall clock's time plus what was added.
func (c *Running) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// Add moves the clock by d (forward: d positive) and fires the timers that
// are then due.
func (c *Running) Add(d time.Duration) {
	c.off.Add(int64(d))
	c.mu.Lock()
	armed := make([]*runningTimer, 0, len(c.timers))
	for t := range c.timers {
		armed = append(armed, t)
	}
	c.mu.Unlock()
	for _, t := range armed {
		t.rearm()
	}
}

// AfterFunc calls f in its own goroutine once the clock reaches now + d,
// by running or by Add.
func (c *Running) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &runningTimer{c: c, f: f}
	t.Reset(d)
	return t
}

// runningTimer is one AfterFunc of a Running clock: a wall timer set for
// its time on the clock, set again when Add moves the clock.
type runningTimer struct {
	c *Running
	f func()

	mu    sync.Mutex
	at    time.Time // on the clock
	armed bool
	gen   uint64 // which wall timer is the live one
	wall  *time.Timer
}

func (t *runningTimer) Stop() bool {
	t.mu.Lock()
	active := t.disarmLocked()
	t.mu.Unlock()
	t.c.forget(t)
	return active
}

func (t *runningTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	t.c.timers[t] = struct{}{} // before arming: an Add meanwhile is seen by the time taken below
	t.c.mu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	active := t.disarmLocked()
	t.at, t.armed = t.c.Now().Add(d), true
	t.startLocked(d)
	return active
}

// rearm sets the wall timer again for the timer's time on the moved clock.
func (t *runningTimer) rearm() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.armed {
		return
	}
	t.wall.Stop()
	t.startLocked(t.at.Sub(t.c.Now()))
}

func (t *runningTimer) startLocked(d time.Duration) {
	t.gen++
	gen := t.gen
	t.wall = time.AfterFunc(max(d, 0), func() { t.fire(gen) })
}

func (t *runningTimer) disarmLocked() bool {
	active := t.armed
	t.armed = false
	t.gen++
	if t.wall != nil {
		t.wall.Stop()
	}
	return active
}

// fire calls f if the wall timer of generation gen is still the live one.
func (t *runningTimer) fire(gen uint64) {
	t.mu.Lock()
	if !t.armed || gen != t.gen {
		t.mu.Unlock()
		return
	}
	t.armed = false
	t.mu.Unlock()
	t.c.forget(t)
	t.f()
}

func (c *Running) forget(t *runningTimer) {
	c.mu.Lock()
	delete(c.timers, t)
	c.mu.Unlock()
}
