// Package clock is the one clock of tegata's processes: it tells the time
// and runs timers on that time, so that a test that moves the time (see
// internal/testtime) moves the timers with it, and decisions and timers
// never disagree about what time it is. Real is the wall clock.
//
// Work paced by time (a node's reads of the log after wake-ups, its
// evaluations spaced by their cost, record flushes, heartbeats) is on the
// clock too: on a test's stopped clock it waits for the test to move the
// clock, so tests of a whole node run it on testtime.Running, which also
// moves by itself.
//
// Deadlines on network connections (net.Conn.SetDeadline, a request's
// timeout against the database, the Postgres listener's idle ping and
// reconnect backoff) are the kernel's and stay on the wall clock.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and runs functions after a duration of its time.
// Implementations are safe for concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed on this
	// clock, unless the Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is the handle of an AfterFunc, as *time.Timer's.
type Timer interface {
	// Stop prevents the call if it has not happened; it reports whether
	// it did so.
	Stop() bool
	// Reset makes the call happen d from now (again); it reports whether
	// the timer was active.
	Reset(d time.Duration) bool
}

// Real is the wall clock.
var Real Clock = wall{}

type wall struct{}

func (wall) Now() time.Time                            { return time.Now() }
func (wall) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or returns c, or Real when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Ticker delivers the time of its clock on C every period, as
// *time.Ticker does: a receiver that falls behind misses ticks rather than
// receiving a backlog.
type Ticker struct {
	C <-chan time.Time

	mu      sync.Mutex
	timer   Timer
	stopped bool
}

// NewTicker returns a Ticker of c with the given period, which must be
// positive.
func NewTicker(c Clock, period time.Duration) *Ticker {
	ch := make(chan time.Time, 1)
	t := &Ticker{C: ch}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.timer = c.AfterFunc(period, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.stopped {
			return
		}
		select {
		case ch <- c.Now():
		default:
		}
		t.timer.Reset(period)
	})
	return t
}

// Stop turns the ticker off; no tick is sent after it returns, though one
// sent before may still be in C.
func (t *Ticker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	t.timer.Stop()
}

// WithTimeout is context.WithTimeout on c: the context ends once d has
// passed on c, its cause then context.DeadlineExceeded.
func WithTimeout(ctx context.Context, c Clock, d time.Duration) (context.Context, context.CancelFunc) {
	if c == Real {
		return context.WithTimeout(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	t := c.AfterFunc(d, func() { cancel(context.DeadlineExceeded) })
	return ctx, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// NewTimer returns a Timer of c and the channel on which it sends c's
// time once d has passed on c, as time.NewTimer does on the wall clock. A
// time not received by the next firing is dropped.
func NewTimer(c Clock, d time.Duration) (Timer, <-chan time.Time) {
	ch := make(chan time.Time, 1)
	t := c.AfterFunc(d, func() {
		select {
		case ch <- c.Now():
		default:
		}
	})
	return t, ch
}

// After returns a channel that receives c's time once d has passed on c,
// as time.After does on the wall clock.
func After(c Clock, d time.Duration) <-chan time.Time {
	_, ch := NewTimer(c, d)
	return ch
}
