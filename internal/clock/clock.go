// Package clock is the one clock of tegata's processes: it tells the time
// and runs timers on that time, so that a test that moves the time (see
// internal/testtime) moves the timers with it, and decisions and timers
// never disagree about what time it is. Real is the wall clock.
//
// Deadlines on network connections (net.Conn.SetDeadline) are the
// kernel's and stay on the wall clock.
package clock

import "time"

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
