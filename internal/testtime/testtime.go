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
	"cmp"
	"flag"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
)

// Clock is a settable clock, safe for concurrent use and cheap enough for
// benchmarks of hot paths (one atomic load). Times are in UTC. It is a
// clock.Clock: its timers fire when Add or Set moves it to or past their
// time, each in its own goroutine as time.AfterFunc's do. Pass it (or its Now) where a
// component takes a clock.
type Clock struct {
	ns atomic.Int64

	mu     sync.Mutex
	timers []*timer // armed, in no order
}

// NewClock returns a Clock set to t.
func NewClock(t time.Time) *Clock {
	c := &Clock{}
	c.Set(t)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

// Add moves the clock by d and fires the timers that are then due.
func (c *Clock) Add(d time.Duration) {
	c.ns.Add(int64(d))
	c.fire()
}

// Set sets the clock to t and fires the timers that are then due.
func (c *Clock) Set(t time.Time) {
	c.ns.Store(t.UnixNano())
	c.fire()
}

// AfterFunc calls f in its own goroutine once the clock has been moved d
// past now (at once when d is not positive).
func (c *Clock) AfterFunc(d time.Duration, f func()) clock.Timer {
	t := &timer{c: c, f: f}
	t.Reset(d)
	return t
}

// fire starts the due timers, earliest first.
func (c *Clock) fire() {
	now := c.ns.Load()
	c.mu.Lock()
	var due []*timer
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at <= now {
			due = append(due, t)
		} else {
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *timer) int { return cmp.Compare(a.at, b.at) })
	for _, t := range due {
		go t.f()
	}
}

// timer is one AfterFunc of a Clock.
type timer struct {
	c  *Clock
	f  func()
	at int64 // Unix nanoseconds; guarded by c.mu
}

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, o := range t.c.timers {
		if o == t {
			t.c.timers = slices.Delete(t.c.timers, i, i+1)
			return true
		}
	}
	return false
}

func (t *timer) Reset(d time.Duration) bool {
	active := t.Stop()
	t.c.mu.Lock()
	t.at = t.c.ns.Load() + int64(d)
	t.c.timers = append(t.c.timers, t)
	t.c.mu.Unlock()
	if d <= 0 {
		t.c.fire()
	}
	return active
}

// Timers returns how many timers are armed: a test that must move the
// clock only once a component waits on it awaits their number.
func (c *Clock) Timers() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

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

// DefaultParallel makes n tests run at once (-test.parallel) unless the
// command line says otherwise, for packages whose tests mostly wait rather
// than compute, where go test's default, the CPU count, leaves the machine
// idle. Call it from TestMain; it parses the flags.
func DefaultParallel(n int) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(n))
	}
}
