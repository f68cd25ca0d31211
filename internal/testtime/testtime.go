// Package testtime is time for tests: a Clock a test moves by hand, and
// Eventually, the one way tests wait for something another goroutine or
// process makes true.
//
// Waiting is a last resort. A test that can run in a testing/synctest
// bubble, or be told by a channel when the thing happened, does that
// instead; Eventually is for what neither reaches: a real server process,
// a real Postgres, a TCP peer. It polls with a deadline that grows under
// the race detector (Scale), so a slow machine makes a test slower, never
// wrong, and a failure says what was awaited and the last reason it was
// not so.
package testtime

import (
	"sync/atomic"
	"testing"
	"time"
)

// Clock is a settable clock, safe for concurrent use and cheap enough for
// benchmarks of hot paths (one atomic load). Times are in UTC. Pass its Now
// where a component takes a clock.
type Clock struct{ ns atomic.Int64 }

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) { c.ns.Add(int64(d)) }

// Set sets the clock to t.
func (c *Clock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// In returns the clock's time plus d.
func (c *Clock) In(d time.Duration) time.Time { return c.Now().Add(d) }

// raceFactor stretches deadlines when the race detector slows everything
// down (see race.go).
const raceFactor = 5

// Scale returns d, stretched under the race detector.
func Scale(d time.Duration) time.Duration {
	if Race {
		return d * raceFactor
	}
	return d
}

// Eventually polls cond until it returns nil, failing tb with what and
// cond's last error once within (scaled) has passed. It polls often at
// first, then every 20 ms.
func Eventually(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(Scale(within))
	pause := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v: %v", what, Scale(within), err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 20*time.Millisecond)
	}
}

// EventuallyTrue is Eventually for a condition without a reason.
func EventuallyTrue(tb testing.TB, within time.Duration, what string, cond func() bool) {
	tb.Helper()
	Eventually(tb, within, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

type notYet struct{}

func (notYet) Error() string { return "condition still false" }

var errNotYet error = notYet{}
