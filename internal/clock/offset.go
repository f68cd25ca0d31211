package clock

import "time"

// Offset returns c moved by d: its time is c's plus d, and its timers are
// c's, so it runs (or stands still) as c does. It is the clock of a
// process whose clock is off from another's: the skew tests, the chaos
// benchmark's skewed verifiers.
func Offset(c Clock, d time.Duration) Clock { return offset{c, d} }

type offset struct {
	c Clock
	d time.Duration
}

func (o offset) Now() time.Time { return o.c.Now().Add(o.d) }

func (o offset) AfterFunc(d time.Duration, f func()) Timer { return o.c.AfterFunc(d, f) }
