package feed_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// BenchmarkConfirm measures what a confirmed revocation costs per
// follower, hub and followers together (one process, loopback; 200
// followers, each with its stream and its report stream): an entry
// appended, the hub asked for it, and every follower's report of it
// taken, one confirmation after the other, so that no two share a write,
// an ask or a report however busy the machine is. It reports the CPU time
// of the process (getrusage: every thread, user and system) per
// confirmation per follower, which a busy machine changes far less than
// the wall time. tegata-bench fanout measures the same across processes,
// at a rate, where a busy machine merges confirmations.
func BenchmarkConfirm(b *testing.B) {
	const followers = 200
	log := newMemLog()
	hub := feed.NewHub(log, feed.HubConfig{Logger: testLogger()})
	srv := httptest.NewServer(positionMux(hub))
	defer srv.Close()
	defer srv.CloseClientConnections()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // first: the followers stop reconnecting
	go func() { _ = hub.Run(ctx) }()
	for i := range followers {
		c := &feed.Client{URLs: []string{srv.URL}, Logger: testLogger(),
			Apply:    func(revocation.Entry) error { return nil },
			Follower: &feed.Follower{ID: fmt.Sprintf("bench-%d", i), StaleAfter: 10 * time.Second}}
		go func() { _ = c.Run(ctx) }()
	}
	// As a node's cluster does, the wait looks at the hub after a change
	// at most every evalEvery: a look visits every follower.
	const evalEvery = 2 * time.Millisecond
	confirm := func(seq int64, n int) {
		hub.Ask(seq)
		log.appendN(1, live)
		deadline := time.Now().Add(10 * time.Second)
		for {
			changed := hub.FollowersChanged()
			if safe, _, _ := hub.Safe(); safe >= seq && (n == 0 || hub.FollowerCount() == n) {
				return
			}
			select {
			case <-changed:
			case <-time.After(time.Until(deadline)):
				b.Fatalf("position %d not confirmed within 10s", seq)
			}
			time.Sleep(evalEvery)
		}
	}
	// Every follower connected and reporting, its first lease earned.
	confirm(1, followers)
	seq := int64(1)
	cpu0 := rusageCPU(b)
	b.ResetTimer()
	for range b.N {
		seq++
		confirm(seq, 0)
	}
	b.StopTimer()
	b.ReportMetric(float64(rusageCPU(b)-cpu0)/float64(b.N*followers)/1e3, "cpu-µs/follower")
}

func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
