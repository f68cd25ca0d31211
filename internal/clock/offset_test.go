package clock_test

import (
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestOffset: an offset clock tells its base's time plus the offset, and
// its timers fire when the base's time reaches them, not the offset's.
func TestOffset(t *testing.T) {
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	base := testtime.NewClock(start)
	c := clock.Offset(base, -time.Minute)
	if got := c.Now(); !got.Equal(start.Add(-time.Minute)) {
		t.Errorf("Now() = %v, want %v", got, start.Add(-time.Minute))
	}
	fired := make(chan struct{})
	c.AfterFunc(time.Second, func() { close(fired) })
	base.Add(999 * time.Millisecond)
	select {
	case <-fired:
		t.Fatal("timer fired before its base moved 1s")
	default:
	}
	base.Add(time.Millisecond)
	<-fired
}
