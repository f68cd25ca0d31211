package feed_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// stoppedRelay runs a relay following upstream on clk until the test
// ends, with heartbeats too far apart to matter: what it reports, it
// reports because it was asked or because its followers moved.
func stoppedRelay(t *testing.T, clk *testtime.Clock, upstream string) (*feed.Relay, *server) {
	t.Helper()
	r := feed.NewRelay(feed.RelayConfig{URLs: []string{upstream}, APIKey: "k", Host: "test", Heartbeat: time.Hour,
		Clock: clk, Logger: testLogger()})
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

// relayRecord returns the upstream hub's record of the relay.
func relayRecord(hub *feed.Hub) (feed.FollowerState, bool) {
	for _, f := range hub.Followers() {
		if f.Name == "relay test" {
			return f, true
		}
	}
	return feed.FollowerState{}, false
}

// TestRelayAnswersAsksThroughItsFollowers: on clocks that do not move, no
// lease is renewed, so a report comes only from an ask: the node's ask
// reaches the follower behind the relay, whose report lets the relay
// answer it. Without the ask passed down the follower never reports;
// without the relay reporting as its followers move it never answers.
func TestRelayAnswersAsksThroughItsFollowers(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(5, live)
	hub := startHub(t, up, feed.HubConfig{Heartbeat: time.Hour})
	// A stream's start brings a report too: the relay's answer must come
	// on the stream it was asked on. (With no heartbeats its client drops
	// a stream after three quarters of its bound, on the wall clock.)
	var opened atomic.Int32
	mux := positionMux(hub)
	srv := serve(t, keyed("k", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.Path {
			opened.Add(1)
		}
		mux.ServeHTTP(w, r)
	})))
	clk := testtime.NewClock(t0)
	relay, rs := stoppedRelay(t, clk, srv.URL)
	waitFor(t, "the relay to be ready", func() bool { return relay.Ready() == nil })
	c := &feed.Client{URLs: []string{rs.URL}, APIKey: "k", Clock: clk, IdleTimeout: time.Hour,
		Follower: &feed.Follower{ID: "behind", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "the follower's lease from the relay", func() bool {
		st := c.State()
		return st.Position == 5 && st.FreshUntil.After(clk.Now())
	})
	up.appendN(1, live)
	hub.Ask(6)
	streams := opened.Load()
	waitFor(t, "the relay's answer to the ask for 6", func() bool {
		f, ok := relayRecord(hub)
		return ok && f.Position == 6 || opened.Load() != streams
	})
	if n := opened.Load(); n != streams {
		t.Fatalf("the relay opened %d more streams before it answered the ask, want it answered on its stream", n-streams)
	}
	if got := relay.Hub().Followers(); len(got) != 1 || got[0].Position != 6 {
		t.Fatalf("the relay's followers = %+v, want the follower at 6", got)
	}
}

// TestRelayWithoutLeaseOpensNoStream: once the relay's own lease has run
// out it opens no stream (a stream's first heartbeat would make a
// follower that does not name itself current) and grants no lease.
func TestRelayWithoutLeaseOpensNoStream(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(3, live)
	// The node stops licensing leases: the relay cannot renew its own.
	var cut atomic.Bool
	hub := startHub(t, up, feed.HubConfig{Heartbeat: time.Hour, License: func() time.Time {
		if cut.Load() {
			return time.Time{}
		}
		return t0.Add(time.Hour)
	}})
	srv := serve(t, keyed("k", positionMux(hub)))
	clk := testtime.NewClock(t0)
	relay, rs := stoppedRelay(t, clk, srv.URL)
	waitFor(t, "the relay to be ready", func() bool { return relay.Ready() == nil })
	auth := map[string]string{"Authorization": "Bearer k"}
	resp, _ := open(t, rs.URL+feed.Path, auth)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a stream from the relay holding a lease = %d, want 200", resp.StatusCode)
	}
	cut.Store(true)
	clk.Add(time.Minute) // past the relay's lease (its bound: 10s)
	for _, named := range []bool{false, true} {
		h := map[string]string{"Authorization": "Bearer k"}
		if named {
			h["Tegata-Verifier"] = "id=named&stale_after_ms=10000"
		}
		resp, _ := open(t, rs.URL+feed.Path, h)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Errorf("a stream (named %v) from the relay past its lease = %d, want 503 with Retry-After", named, resp.StatusCode)
		}
	}
}

// TestRelayLooksAtFollowersOnlyForAnAsk: the relay works out how far its
// followers are safe (a look at every record) only while an ask from
// upstream waits for them: a head that moves with no ask waiting costs
// it no look, however often it moves. Then an ask is still answered.
func TestRelayLooksAtFollowersOnlyForAnAsk(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(5, live)
	hub := startHub(t, up, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, keyed("k", positionMux(hub)))
	clk := testtime.NewClock(t0)
	relay, rs := stoppedRelay(t, clk, srv.URL)
	waitFor(t, "the relay to be ready", func() bool { return relay.Ready() == nil })
	c := &feed.Client{URLs: []string{rs.URL}, APIKey: "k", Clock: clk, IdleTimeout: time.Hour,
		Follower: &feed.Follower{ID: "behind", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "the follower's lease from the relay", func() bool {
		st := c.State()
		return st.Position == 5 && st.FreshUntil.After(clk.Now())
	})
	rhub := relay.Hub()
	before := rhub.Looks()
	const moves = 20
	for i := int64(1); i <= moves; i++ {
		up.appendN(1, live)
		waitFor(t, "the relay's hub to reach the entry", func() bool { return rhub.Head() == 5+i })
		waitFor(t, "the follower to apply the entry", func() bool { return c.State().Position == 5+i })
	}
	if n := rhub.Looks() - before; n >= moves/2 {
		t.Errorf("the relay looked at its followers %d times while its hub's head moved %d times with no ask, want fewer than %d", n, moves, moves/2)
	}
	up.appendN(1, live)
	hub.Ask(6 + moves)
	waitFor(t, "the relay's answer to the ask", func() bool {
		f, ok := relayRecord(hub)
		return ok && f.Position == 6+moves
	})
}

// TestRelayAnswersAskOnceSilentFollowerLapses: an ask that waits on a
// follower gone silent is answered once time alone passes the follower's
// bound, with no report or head to wake the relay: before the relay's
// own lease needs renewing (its bound is longer), so no renewal carries
// the answer either.
func TestRelayAnswersAskOnceSilentFollowerLapses(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(5, live)
	hub := startHub(t, up, feed.HubConfig{Heartbeat: time.Hour})
	// The answer must come on the stream the relay was asked on: a new
	// stream's first report would carry it too.
	var opened atomic.Int32
	mux := positionMux(hub)
	srv := serve(t, keyed("k", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.Path {
			opened.Add(1)
		}
		mux.ServeHTTP(w, r)
	})))
	clk := testtime.NewClock(t0)
	relay, rs := stoppedRelay(t, clk, srv.URL)
	waitFor(t, "the relay to be ready", func() bool { return relay.Ready() == nil })
	const bound = 2 * time.Second
	c := &feed.Client{URLs: []string{rs.URL}, APIKey: "k", Clock: clk, IdleTimeout: time.Hour, Logger: testLogger(),
		Apply:    func(revocation.Entry) error { return nil },
		Follower: &feed.Follower{ID: "behind", StaleAfter: bound}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, "the follower's lease from the relay", func() bool {
		st := c.State()
		return st.Position == 5 && st.FreshUntil.After(clk.Now())
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Client.Run() = %v, want nil", err)
	}
	rhub := relay.Hub()
	up.appendN(1, live)
	hub.Ask(6)
	waitFor(t, "the relay's hub to reach 6", func() bool { return rhub.Head() == 6 })
	// A stream opened now (another follower, safe from its start) makes the
	// relay look once more, at 6: the look that must arm its timer.
	looks := rhub.Looks()
	resp, _ := open(t, rs.URL+feed.Path, map[string]string{"Authorization": "Bearer k",
		"Tegata-Verifier": "id=other&stale_after_ms=10000"})
	defer resp.Body.Close()
	waitFor(t, "the relay to look at its followers for the ask", func() bool { return rhub.Looks() > looks })
	if f, ok := relayRecord(hub); !ok || f.Position >= 6 {
		t.Fatalf("the relay's record = %+v (found %v), want it below 6 while its follower holds 5", f, ok)
	}
	streams := opened.Load()
	clk.Add(bound + time.Millisecond)
	waitFor(t, "the relay's answer to the ask once its follower's bound has passed", func() bool {
		f, ok := relayRecord(hub)
		return ok && f.Position == 6 || opened.Load() != streams
	})
	if n := opened.Load(); n != streams {
		t.Fatalf("the relay opened %d more streams before it answered the ask, want it answered on its stream", n-streams)
	}
}
