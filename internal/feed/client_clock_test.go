package feed_test

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestLeaseRenewedOnItsClock: a client renews its lease when half of it
// has passed on the client's clock, which is also the clock the lease runs
// out on: a stopped clock moved by half of a 30-minute lease makes the
// next report at once, and the new lease counts from the moved time.
func TestLeaseRenewedOnItsClock(t *testing.T) {
	t.Parallel()
	var reports, ready atomic.Int32 // reports, and those saying the client is ready
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == feed.ReportsPath:
			http.NotFound(w, r) // one request per report
		case r.Method == http.MethodPost:
			if b, _ := io.ReadAll(r.Body); bytes.Contains(b, []byte(`"ready":true`)) {
				ready.Add(1)
			}
			reports.Add(1)
			answerReport(w, r, false, int((30 * time.Minute).Milliseconds()))
		default:
			beatingStream(w, r)
		}
	}))
	clk := stopped()
	c := &feed.Client{URLs: []string{srv.URL}, Clock: clk, Follower: &feed.Follower{ID: "v1", StaleAfter: time.Hour}}
	startClient(t, c)
	leased := func(until time.Time) func() bool {
		return func() bool { return c.State().FreshUntil.Equal(until) }
	}
	waitFor(t, "the first lease, 30 minutes from t0", leased(t0.Add(30*time.Minute)))
	// Once the client has said it is ready, it owes no report until the
	// lease needs renewing.
	waitFor(t, "a report saying the client is ready", func() bool { return ready.Load() > 0 })
	n := reports.Load()
	// The renewal's timer is the only one on the client's clock, and a
	// timer that falls due leaves the clock's list as the clock moves.
	testtime.EventuallyTrue(t, 5*time.Second, "the renewal armed", func() bool { return clk.Timers() == 1 })
	clk.Add(10 * time.Minute)
	if n := clk.Timers(); n != 1 {
		t.Fatalf("%d timers armed once 10 of the lease's 30 minutes passed, want the renewal's: it fell due at a third", n)
	}
	clk.Add(5 * time.Minute)
	testtime.EventuallyTrue(t, 5*time.Second, "a renewal once 15 of the lease's 30 minutes passed on the clock", func() bool {
		return reports.Load() > n
	})
	waitFor(t, "the renewed lease, 30 minutes from the moved clock", leased(t0.Add(45*time.Minute)))
}
