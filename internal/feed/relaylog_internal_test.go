package feed

import (
	"fmt"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestRelayLogGivesBackExpiredBulk: once a bulk's entries are past their
// expiry and the grace, the log drops them even when nothing more is
// appended (heartbeats move its head), and gives their room back.
func TestRelayLogGivesBackExpiredBulk(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clk := testtime.NewClock(t0)
	l := NewRelayLog(time.Minute, clk)
	const n = 10_000
	es := make([]revocation.Entry, 0, n+1)
	for i := range n {
		es = append(es, revocation.Entry{Seq: int64(i + 1), Kind: revocation.KindSession, Session: fmt.Sprint("s", i),
			ExpiresAt: t0.Add(time.Second)})
	}
	es = append(es, revocation.Entry{Seq: n + 1, Kind: revocation.KindSession, Session: "live", ExpiresAt: t0.Add(time.Hour)})
	l.ApplyMany(es)
	clk.Add(2 * time.Minute)
	l.Advance(n + 5) // a heartbeat: no entry
	l.mu.Lock()
	kept, room := len(l.entries), cap(l.entries)
	l.mu.Unlock()
	if kept != 1 || room > 64 {
		t.Fatalf("after the bulk expired: %d entries kept in room for %d, want 1 in room for at most 64", kept, room)
	}
}
