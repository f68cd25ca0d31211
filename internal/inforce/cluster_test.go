package inforce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// fakeHub is a node's hub whose answers the test sets.
type fakeHub struct {
	mu        sync.Mutex
	safe      int64
	head      int64
	followers []feed.FollowerState
	changed   chan struct{}
	asked     int64 // the highest position asked for
	looks     int   // calls of Safe: evaluations and flushes
}

func newFakeHub(safe, head int64, fs ...feed.FollowerState) *fakeHub {
	return &fakeHub{safe: safe, head: head, followers: fs, changed: make(chan struct{})}
}

func (h *fakeHub) Safe() (int64, int64, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.looks++
	return h.safe, h.head, time.Time{}
}

// state returns the highest position asked for and the calls of Safe so
// far.
func (h *fakeHub) state() (asked int64, looks int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.asked, h.looks
}

func (h *fakeHub) Followers() []feed.FollowerState {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]feed.FollowerState(nil), h.followers...)
}

func (h *fakeHub) FollowerStats() (int, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var longest time.Duration
	for _, f := range h.followers {
		longest = max(longest, f.StaleAfter)
	}
	return len(h.followers), longest
}

// ChangedFollowers returns every follower: the fake keeps no stored state.
func (h *fakeHub) ChangedFollowers() []feed.FollowerState { return h.Followers() }

func (h *fakeHub) Pending(x int64, limit int) ([]feed.FollowerState, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []feed.FollowerState
	n := 0
	for _, f := range h.followers {
		if f.Position < x {
			if n++; len(out) < limit {
				out = append(out, f)
			}
		}
	}
	return out, n
}

func (h *fakeHub) Ask(x int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = max(h.asked, x)
}

func (h *fakeHub) FollowersChanged() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.changed
}

// set changes the hub's safe position and a follower's position.
func (h *fakeHub) set(safe int64, id string, pos int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.safe = safe
	for i := range h.followers {
		if h.followers[i].ID == id {
			h.followers[i].Position = pos
		}
	}
	close(h.changed)
	h.changed = make(chan struct{})
}

func follower(id string, pos int64, heard time.Time) feed.FollowerState {
	return feed.FollowerState{Follower: feed.Follower{ID: id, Name: "name-" + id, Host: "host", StaleAfter: 10 * time.Second},
		Position: pos, Ready: true, Heard: heard, Streams: 1}
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/tegata.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// node starts a Cluster named id over hub, sharing st (and its in-process
// broadcast) with the other nodes of the test.
func node(t *testing.T, id string, hub inforce.Hub, st *sqlite.Store, clk clock.Clock) (*inforce.Cluster, context.CancelFunc) {
	t.Helper()
	c := inforce.New(inforce.Config{NodeID: id, URL: "http://" + id, Hub: hub, Store: st, Broadcaster: st, Clock: clk})
	if err := c.Register(context.Background()); err != nil {
		t.Fatalf("Register(%s) = %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

// confirmMoving is c.Confirm(seq, wait) with clk moved ahead while it
// waits, so that a wait that ends not in force ends without the wall
// clock's wait.
func confirmMoving(t *testing.T, c *inforce.Cluster, clk *testtime.Running, seq int64, wait time.Duration) inforce.Confirmation {
	t.Helper()
	done := make(chan inforce.Confirmation, 1)
	go func() { done <- c.Confirm(context.Background(), seq, wait) }()
	var conf inforce.Confirmation
	testtime.EventuallyTrue(t, 10*time.Second, "the confirmation's answer", func() bool {
		select {
		case conf = <-done:
			return true
		default:
			clk.Add(wait / 10)
			return false
		}
	})
	return conf
}

// TestConfirmWaitsForOtherNode: a position is in force once every live
// node says its verifiers hold it; until then the answer names the other
// node's lagging verifier; a node whose record expired no longer counts.
func TestConfirmWaitsForOtherNode(t *testing.T) {
	st := openStore(t)
	// The nodes' flushes and evaluations go on while the test waits.
	clk := testtime.NewRunning()
	hubA := newFakeHub(5, 5, follower("va", 5, clk.Now()))
	hubB := newFakeHub(3, 5, follower("vb", 3, clk.Now()))
	a, _ := node(t, "a", hubA, st, clk)
	_, stopB := node(t, "b", hubB, st, clk)

	c := confirmMoving(t, a, clk, 5, 200*time.Millisecond)
	if c.InForce || len(c.Pending) != 1 || c.Pending[0].ID != "vb" || c.Pending[0].Node != "b" || c.Confirmed != 1 {
		t.Fatalf("Confirm(5) with b at 3 = %+v, want not in force, vb pending on b, 1 confirmed", c)
	}

	done := make(chan inforce.Confirmation, 1)
	go func() { done <- a.Confirm(context.Background(), 5, 20*time.Second) }()
	hubB.set(5, "vb", 5)
	c = <-done
	if !c.InForce || c.Confirmed != 2 || len(c.Pending) != 0 {
		t.Fatalf("Confirm(5) once b holds 5 = %+v, want in force on 2", c)
	}

	// b stops (it will write nothing more) stuck below 7: in force once
	// its record has expired, not before.
	hubB.set(5, "vb", 5)
	stopB()
	hubA.set(7, "va", 7)
	if c := confirmMoving(t, a, clk, 7, 100*time.Millisecond); c.InForce {
		t.Fatalf("Confirm(7) with b's record live at 5 = %+v, want not in force", c)
	}
	clk.Add(time.Minute)
	if c := a.Confirm(context.Background(), 7, 5*time.Second); !c.InForce {
		t.Fatalf("Confirm(7) with b's record expired = %+v, want in force", c)
	}
}

// TestConfirmPendingCapped: a confirmation names at most MaxPending of
// the verifiers it waits for, and counts them all.
func TestConfirmPendingCapped(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	var fs []feed.FollowerState
	for i := range inforce.MaxPending + 50 {
		fs = append(fs, follower(fmt.Sprint("v", i), 1, now))
	}
	fs = append(fs, follower("current", 2, now))
	a, _ := node(t, "a", newFakeHub(1, 2, fs...), st, clock.Real)
	c := a.Confirm(context.Background(), 2, 10*time.Millisecond)
	if c.InForce || len(c.Pending) != inforce.MaxPending || c.PendingCount != inforce.MaxPending+50 || c.Confirmed != 1 {
		t.Fatalf("Confirm(2) = in force %v, %d named, %d pending, %d confirmed; want %d named of %d, 1 confirmed",
			c.InForce, len(c.Pending), c.PendingCount, c.Confirmed, inforce.MaxPending, inforce.MaxPending+50)
	}
}

// TestConfirmOnAStoppedClock: confirmations one after the other at the
// same instant of the node's clock each end in force once the hub holds
// their position: the spacing of the hub's evaluations runs on the wall
// clock, so a clock that stands still (a test's) does not hold them back.
func TestConfirmOnAStoppedClock(t *testing.T) {
	st := openStore(t)
	hub := newFakeHub(1, 1)
	a, _ := node(t, "a", hub, st, testtime.NewClock(time.Now()))
	for seq := int64(1); seq <= 3; seq++ {
		hub.set(seq, "", 0)
		done := make(chan inforce.Confirmation, 1)
		go func() { done <- a.Confirm(context.Background(), seq, time.Minute) }()
		var c inforce.Confirmation
		testtime.EventuallyTrue(t, 10*time.Second, fmt.Sprintf("Confirm(%d) to answer", seq), func() bool {
			select {
			case c = <-done:
				return true
			default:
				return false
			}
		})
		if !c.InForce {
			t.Fatalf("Confirm(%d) with the hub at %d = %+v, want in force", seq, seq, c)
		}
	}
}

// TestConfirmEmptyLog: confirming "the head" of an empty log is
// immediate.
func TestConfirmEmptyLog(t *testing.T) {
	st := openStore(t)
	a, _ := node(t, "a", newFakeHub(0, 0), st, clock.Real)
	if c := a.Confirm(context.Background(), 0, time.Second); !c.InForce {
		t.Fatalf("Confirm(head of an empty log) = %+v, want in force", c)
	}
}

// TestList: every live verifier of every node, with its state and lag.
func TestList(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	now := time.Now()
	entries := []revocation.Entry{}
	for i := range 3 {
		e, err := st.RevokeSubject(ctx, store.SubjectRevocation{Subject: "s", Now: now.Add(time.Duration(i-3) * time.Second),
			ExpiresAt: now.Add(time.Hour), Actor: store.Actor{By: "test"}})
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	hub := newFakeHub(1, 3,
		follower("current", 3, now),
		follower("behind", 1, now), // lacks 2, recorded 2s before now
		feed.FollowerState{Follower: feed.Follower{ID: "notready", StaleAfter: 10 * time.Second}, Position: 3, Heard: now},
		follower("gone", 3, now.Add(-11*time.Second)), // silent past its bound
	)
	clk := testtime.NewClock(now)
	a, _ := node(t, "a", hub, st, clk)
	// Another node's verifiers, known from their stored records only:
	// "remote" silent for longer than its record may lag while it is well
	// (half its bound plus 2s, at List's end), within its bound;
	// "lagging" heard since, by a record as old as another node leaves
	// it while the verifier renews its lease (every renewal, half the
	// bound apart, and a flush).
	if _, err := st.SaveFollowers(ctx, store.NodeRecord{ID: "b", URL: "http://b", Safe: 3, Head: 3, Followers: 1, Version: 1,
		UpdatedAt: now, ExpiresAt: now.Add(time.Minute)},
		[]store.VerifierRecord{
			{ID: "remote", Name: "r", Node: "b", Position: 3, Ready: true, StaleAfter: 10 * time.Second, HeardAt: now.Add(-8 * time.Second)},
			{ID: "lagging", Name: "l", Node: "b", Position: 3, Ready: true, StaleAfter: 10 * time.Second, HeardAt: now.Add(-5 * time.Second)},
		}); err != nil {
		t.Fatal(err)
	}
	// List first waits a second of the clock for the verifiers to catch
	// up, which "behind" never does; the clock passes that second once
	// List waits (its two timers armed beside Run's two).
	type listed struct {
		l   inforce.Listing
		err error
	}
	done := make(chan listed, 1)
	go func() {
		l, err := a.List(ctx)
		done <- listed{l, err}
	}()
	testtime.EventuallyTrue(t, 10*time.Second, "List waits for the verifiers", func() bool { return clk.Timers() >= 4 })
	clk.Add(time.Second)
	res := <-done
	l, err := res.l, res.err
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]inforce.VerifierView{}
	for _, v := range l.Verifiers {
		got[v.ID] = v
	}
	want := map[string]string{"current": "current", "behind": "behind", "notready": "stale", "remote": "stale", "lagging": "current"}
	if len(got) != len(want) {
		t.Fatalf("List() = %+v, want %v (not gone)", l.Verifiers, want)
	}
	for id, state := range want {
		if got[id].State != state {
			t.Errorf("%s: state %q, want %q (%+v)", id, got[id].State, state, got[id])
		}
	}
	if b := got["behind"]; b.LagEntries != 2 || b.LagMS != now.Sub(entries[1].CreatedAt).Milliseconds() || b.NodeURL != "http://a" {
		t.Errorf("behind = %+v, want lag 2 entries, %d ms, node http://a", b, now.Sub(entries[1].CreatedAt).Milliseconds())
	}
	if r := got["remote"]; r.NodeURL != "http://b" || r.LagEntries != 0 {
		t.Errorf("remote = %+v, want node http://b, no lag", r)
	}
	if l.Head != 3 || len(l.Nodes) != 2 {
		t.Errorf("head %d, nodes %+v; want 3 and nodes a and b", l.Head, l.Nodes)
	}
}

// TestOtherClustersIgnored: Postgres delivers NOTIFY to every listener of
// the database, whatever its schema; a node ignores the messages of a
// cluster with another epoch, and heeds its own cluster's.
func TestOtherClustersIgnored(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	clk := testtime.NewRunning()
	c := inforce.New(inforce.Config{NodeID: "a", Epoch: "ours", Hub: newFakeHub(5, 5), Store: st, Broadcaster: st, Clock: clk})
	if err := c.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	y := store.NodeRecord{ID: "y", Safe: 1, Head: 5, Version: 1, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := st.SaveFollowers(ctx, y, nil); err != nil {
		t.Fatal(err)
	}
	if conf := confirmMoving(t, c, clk, 5, 100*time.Millisecond); conf.InForce {
		t.Fatalf("Confirm(5) with node y at 1 = %+v, want not in force", conf)
	}
	record := func(epoch, node string, safe, version int64) string {
		b, _ := json.Marshal(map[string]any{"epoch": epoch, "from": node, "node": map[string]any{
			"id": node, "safe": safe, "head": 5, "version": version, "updated": now.UnixMicro(), "expires": now.Add(time.Hour).UnixMicro()}})
		return string(b)
	}
	// Another cluster's node z, stuck at 1; then our y, at 5. The loop
	// handles them in order: once y's counts, z's was seen too.
	for _, m := range []string{record("theirs", "z", 1, 1), record("ours", "y", 5, 2)} {
		if err := st.Broadcast(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if conf := c.Confirm(ctx, 5, 10*time.Second); !conf.InForce {
		t.Fatalf("Confirm(5) once y says 5 = %+v, want in force: z belongs to another cluster", conf)
	}
}

// countingStore counts the reads of verifier records.
type countingStore struct {
	*sqlite.Store
	mu    sync.Mutex
	reads int
}

func (s *countingStore) FeedVerifiers(ctx context.Context, heardAfter time.Time) ([]store.VerifierRecord, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.FeedVerifiers(ctx, heardAfter)
}

// TestMetricsShareOneListing: scrapes of the unauthenticated /metrics share
// one listing of the cluster's verifiers per few seconds, so scraping
// cannot make the store list them at will.
func TestMetricsShareOneListing(t *testing.T) {
	st := &countingStore{Store: openStore(t)}
	clk := testtime.NewClock(time.Now())
	c := inforce.New(inforce.Config{NodeID: "a", Hub: newFakeHub(0, 0, follower("v", 0, clk.Now())), Store: st, Clock: clk})
	reg := prometheus.NewRegistry()
	if err := reg.Register(c.Collector()); err != nil {
		t.Fatal(err)
	}
	gauge := func() string {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				if mf.GetName() == "tegata_verifiers" && m.GetLabel()[0].GetValue() == "current" {
					return fmt.Sprint(m.GetGauge().GetValue())
				}
			}
		}
		return "absent"
	}
	for range 10 {
		if g := gauge(); g != "1" {
			t.Fatalf(`tegata_verifiers{state="current"} = %s, want 1`, g)
		}
	}
	if st.reads != 1 {
		t.Fatalf("10 scrapes read the verifier records %d times, want 1", st.reads)
	}
	clk.Add(10 * time.Second)
	gauge()
	if st.reads != 2 {
		t.Errorf("a scrape after the listing aged read the records %d times in all, want 2", st.reads)
	}
}

// heldStore is a store whose SaveFollowers, once held, waits until the
// flush's context ends: a write that takes long.
type heldStore struct {
	*sqlite.Store
	held    atomic.Bool
	entered chan struct{} // receives when a held flush begins
}

func (s *heldStore) SaveFollowers(ctx context.Context, n store.NodeRecord, vs []store.VerifierRecord) ([]store.NodeRecord, error) {
	if !s.held.Load() {
		return s.Store.SaveFollowers(ctx, n, vs)
	}
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestConfirmDuringAFlush: a confirmation is answered while the node's
// write of its records takes long: the flush holds up neither the
// evaluations of the hub nor the messages a confirmation waits for.
func TestConfirmDuringAFlush(t *testing.T) {
	st := &heldStore{Store: openStore(t), entered: make(chan struct{}, 1)}
	clk := testtime.NewClock(time.Now())
	hub := newFakeHub(1, 2)
	c := inforce.New(inforce.Config{NodeID: "a", URL: "http://a", Hub: hub, Store: st, Clock: clk})
	if err := c.Register(context.Background()); err != nil {
		t.Fatalf("Register() = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	st.held.Store(true)
	testtime.EventuallyTrue(t, 10*time.Second, "a flush to begin", func() bool {
		clk.Add(time.Second)
		select {
		case <-st.entered:
			return true
		default:
			return false
		}
	})
	hub.set(2, "", 0)
	answer := make(chan inforce.Confirmation, 1)
	go func() { answer <- c.Confirm(context.Background(), 2, time.Minute) }()
	var conf inforce.Confirmation
	testtime.EventuallyTrue(t, 10*time.Second, "Confirm(2) to answer while the flush is held", func() bool {
		select {
		case conf = <-answer:
			return true
		default:
			return false
		}
	})
	if !conf.InForce {
		t.Fatalf("Confirm(2) with the hub safe at 2 = %+v, want in force", conf)
	}
}
