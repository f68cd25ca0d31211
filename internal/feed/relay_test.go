package feed_test

import (
	"context"
	"net/http"
	"testing"
	"time"
	"unsafe"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

func relayEntry(seq int64, sid []byte, exp time.Time) revocation.Entry {
	return revocation.Entry{Seq: seq, Kind: revocation.KindSession, Session: unsafe.String(&sid[0], len(sid)),
		CreatedAt: exp.Add(-time.Hour), ExpiresAt: exp}
}

func seqsOf(es []revocation.Entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// TestRelayLog: the log keeps copies of the keys it is given, skips
// entries at or below its head, moves its head without entries, and prunes
// entries past the grace beyond their expiry.
func TestRelayLog(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := testtime.NewClock(t0)
	l := feed.NewRelayLog(time.Minute, clk)
	wake, stop := l.Subscribe()
	defer stop()
	buf := []byte("session-a")
	if n, err := l.ApplyMany([]revocation.Entry{relayEntry(3, buf, t0.Add(time.Second)), relayEntry(5, buf, live)}); n != 2 || err != nil {
		t.Fatalf("ApplyMany = %d, %v; want 2, nil", n, err)
	}
	select {
	case <-wake:
	default:
		t.Fatal("ApplyMany woke no subscriber")
	}
	copy(buf, "XXXXXXXXX") // the client reuses its buffer
	es, _ := l.EntriesAfter(ctx, 0, 10)
	if len(es) != 2 || es[0].Session != "session-a" || es[1].Session != "session-a" {
		t.Fatalf("EntriesAfter(0) = %+v, want seqs 3 and 5 with the keys as applied", es)
	}
	l.ApplyMany([]revocation.Entry{relayEntry(4, []byte("old"), live)})
	l.Advance(9)
	if head, _ := l.Head(ctx); head != 9 {
		t.Fatalf("Head after Advance(9) = %d, want 9", head)
	}
	if es, _ := l.EntriesAfter(ctx, 3, 10); len(es) != 1 || es[0].Seq != 5 {
		t.Fatalf("EntriesAfter(3) = %v, want [5] (seq 4 came below the head)", seqsOf(es))
	}
	// Seq 3 expires at t0+1s: kept through the grace, pruned after it at
	// the next append.
	clk.Add(time.Minute)
	l.ApplyMany([]revocation.Entry{relayEntry(10, []byte("s10"), live)})
	if got := l.Len(); got != 3 {
		t.Fatalf("Len within the grace = %d, want 3", got)
	}
	clk.Add(time.Minute)
	l.ApplyMany([]revocation.Entry{relayEntry(11, []byte("s11"), live)})
	if es, _ := l.EntriesAfter(ctx, 0, 10); len(seqsOf(es)) != 3 || es[0].Seq != 5 {
		t.Fatalf("EntriesAfter(0) past the grace = %v, want [5 10 11]", seqsOf(es))
	}
	l.Clear()
	if head, _ := l.Head(ctx); head != 0 || l.Len() != 0 {
		t.Fatalf("after Clear: head %d, %d entries; want 0, 0", head, l.Len())
	}
}

// startRelay runs a relay following upstream until the test ends and
// serves it.
func startRelay(t *testing.T, key string, upstream ...string) (*feed.Relay, *server) {
	t.Helper()
	r := feed.NewRelay(feed.RelayConfig{URLs: upstream, APIKey: key, Host: "test", Heartbeat: 50 * time.Millisecond,
		Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Relay.Run() = %v, want nil", err)
		}
	})
	return r, serve(t, r)
}

// keyed requires the bearer key key in front of h, as a node does.
func keyed(key string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+key {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TestRelayPassesResetOn: an upstream whose log is replaced in place (its
// head goes back, same epoch) resets the followers behind a relay, which
// then follow the new log; an upstream ask reaches them too.
func TestRelayPassesResetOn(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(5, live)
	hub := startHub(t, up, feed.HubConfig{})
	srv := serve(t, keyed("k", positionMux(hub)))
	relay, rs := startRelay(t, "k", srv.URL)
	waitFor(t, "the relay to serve", func() bool { return relay.Hub() != nil })
	c := &feed.Client{URLs: []string{rs.URL}, APIKey: "k", Follower: &feed.Follower{ID: "behind", StaleAfter: 10 * time.Second}}
	rec := startClient(t, c)
	waitPosition(t, c, 5)
	checkSeqs(t, "the follower behind the relay", rec.applied(), 5)
	up.replace(3, live)
	waitFor(t, "the follower to reset", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.resets > 0
	})
	up.appendN(5, live)
	waitPosition(t, c, 8)
	checkSeqs(t, "the follower behind the relay, after the reset", rec.applied(), 8)
	// An ask for the head is answered by the relay only once the
	// follower behind it reported the head.
	hub.Ask(8)
	waitFor(t, "the relay's report of the head", func() bool {
		for _, f := range hub.Followers() {
			if f.Name == "relay test" && f.Position == 8 {
				return true
			}
		}
		return false
	})
	if got := relay.Hub().Followers(); len(got) != 1 || got[0].Position != 8 {
		t.Fatalf("the relay's followers = %+v, want one at 8", got)
	}
}
