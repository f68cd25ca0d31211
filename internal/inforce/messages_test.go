package inforce_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/store/postgres"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// pgNode starts a Cluster named id over hub on a Postgres store of its
// own, as a node process has, in cluster epoch.
func pgNode(t *testing.T, dsn, id, epoch string, hub inforce.Hub, clk clock.Clock) (*inforce.Cluster, *postgres.Store) {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := inforce.New(inforce.Config{NodeID: id, URL: "http://" + id, Epoch: epoch, Hub: hub, Store: st, Broadcaster: st, Clock: clk})
	if err := c.Register(context.Background()); err != nil {
		t.Fatalf("Register(%s) = %v", id, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, st
}

// wire is what the test reads of the nodes' messages.
type wire struct {
	Epoch, From string
	Want        int64
	Sentinel    bool
}

// TestWaitsShareOneAsk: the calls waiting on one node make it ask the
// other nodes once, not once each, and again (a message may have been
// lost) once per inforce.WantEvery of its clock, however many wait. Each
// ask is a NOTIFY, which Postgres commits one at a time for the whole
// server, the log's appends included. Every call is answered in force
// once the lagging node has caught up. Three nodes on one schema, each
// with a store of its own, as three processes.
func TestWaitsShareOneAsk(t *testing.T) {
	dsn := pgtest.Schema(t)
	epoch := "asks-" + t.Name() + "-" + time.Now().Format(time.RFC3339Nano) // Postgres tells every schema's listeners
	start := time.Now()
	clk := testtime.NewClock(start)
	hubA := newFakeHub(5, 5, follower("va", 5, start))
	hubB := newFakeHub(3, 5, follower("vb", 3, start))
	a, stA := pgNode(t, dsn, "a", epoch, hubA, clk)
	pgNode(t, dsn, "b", epoch, hubB, clk)
	_, stC := pgNode(t, dsn, "c", epoch, newFakeHub(5, 5, follower("vc", 5, start)), clk)
	msgs, stop := stC.Listen()
	defer stop()

	const calls = 20
	timers := clk.Timers()
	done := make(chan inforce.Confirmation, calls)
	for range calls {
		go func() { done <- a.Confirm(context.Background(), 5, time.Minute) }()
	}
	// A wait arms its ask ticker once its first ask has gone.
	testtime.EventuallyTrue(t, 10*time.Second, "every call waits", func() bool { return clk.Timers() >= timers+2*calls })

	wants := 0
	heard := func(stopAt func(wire) bool) {
		t.Helper()
		timeout := time.After(testtime.Scale(10 * time.Second))
		for {
			select {
			case s := <-msgs:
				var m wire
				if json.Unmarshal([]byte(s), &m) != nil || m.Epoch != epoch {
					continue
				}
				if m.From == "a" && m.Want > 0 {
					wants++
				}
				if stopAt(m) {
					return
				}
			case <-timeout:
				t.Fatalf("%d asks from a heard; the message awaited never came", wants)
			}
		}
	}
	heard(func(wire) bool { return wants >= 1 })
	// A message may have been lost: once WantEvery has passed, a asks
	// again.
	clk.Add(inforce.WantEvery)
	advanced := inforce.WantEvery
	heard(func(wire) bool { return wants >= 2 })

	hubB.set(5, "vb", 5)
	answered := 0
	testtime.EventuallyTrue(t, 10*time.Second, "every call answered", func() bool {
		for {
			select {
			case c := <-done:
				if !c.InForce {
					t.Fatalf("Confirm(5) once b holds 5 = %+v, want in force", c)
				}
				answered++
				continue
			default:
			}
			break
		}
		// b evaluates its hub again once a moment has passed.
		clk.Add(time.Millisecond)
		advanced += time.Millisecond
		return answered == calls
	})
	// NOTIFYs arrive in commit order: once a's last message is heard,
	// every ask it sent before was.
	if err := stA.Broadcast(context.Background(), `{"epoch":"`+epoch+`","from":"a","sentinel":true}`); err != nil {
		t.Fatal(err)
	}
	heard(func(m wire) bool { return m.Sentinel })
	if most := 1 + int(advanced/inforce.WantEvery); wants > most {
		t.Errorf("%d calls waiting while the clock moved %v made node a ask %d times, want at most %d", calls, advanced, wants, most)
	}
}

// TestLaggingNodeSpeaksOnChange: a node behind a position another node
// waits for tells it who holds it up only when that changes, and only
// once it has been behind for inforce.LagAfter: a wait that ends sooner
// gets its record alone. With more lagging followers than a message
// names, it says nothing, however many of them catch up meanwhile (the
// waiting node has nothing to name them by); once few enough remain it
// names them, and speaks again as each catches up; with all of them
// there, its record puts the position in force.
func TestLaggingNodeSpeaksOnChange(t *testing.T) {
	dsn := pgtest.Schema(t)
	epoch := "lag-" + t.Name() + "-" + time.Now().Format(time.RFC3339Nano)
	start := time.Now()
	clk := testtime.NewClock(start)
	const lagging = 30
	var fs []feed.FollowerState
	for i := range lagging {
		fs = append(fs, follower(fmt.Sprintf("v%02d", i), 3, start))
	}
	hubB := newFakeHub(2, 5, fs...)
	a, stA := pgNode(t, dsn, "a", epoch, newFakeHub(5, 5, follower("va", 5, start)), clk)
	_, stB := pgNode(t, dsn, "b", epoch, hubB, clk)
	pgNode(t, dsn, "c", epoch, newFakeHub(5, 5, follower("vc", 5, start)), clk)
	msgs, stop := stA.Listen()
	defer stop()

	// b reaches 3 while a waits for it, and says so: what follows is
	// news of the wait for 5 alone.
	done := make(chan inforce.Confirmation, 1)
	go func() { done <- a.Confirm(context.Background(), 3, time.Minute) }()
	testtime.EventuallyTrue(t, 10*time.Second, "b is asked for 3", func() bool {
		asked, _ := hubB.state()
		return asked == 3
	})
	hubB.set(3, fs[0].ID, 3)
	if c := <-done; !c.InForce {
		t.Fatalf("Confirm(3) once b is safe there = %+v, want in force", c)
	}
	go func() { done <- a.Confirm(context.Background(), 5, time.Minute) }()
	testtime.EventuallyTrue(t, 10*time.Second, "b is asked for 5", func() bool {
		asked, _ := hubB.state()
		return asked == 5
	})
	clk.Add(inforce.LagAfter)
	// The followers catch up one at a time, and b looks at its hub after
	// each.
	for i, f := range fs {
		_, looks := hubB.state()
		safe := int64(3)
		if i == len(fs)-1 {
			safe = 5
		}
		hubB.set(safe, f.ID, 5)
		testtime.EventuallyTrue(t, 10*time.Second, "b looks at its hub", func() bool {
			clk.Add(time.Millisecond) // b evaluates at most every few moments
			_, l := hubB.state()
			return l > looks
		})
	}
	if c := <-done; !c.InForce {
		t.Fatalf("Confirm(5) once b's followers hold 5 = %+v, want in force", c)
	}
	if err := stB.Broadcast(context.Background(), `{"epoch":"`+epoch+`","from":"b","sentinel":true}`); err != nil {
		t.Fatal(err)
	}
	// About the wait for 3, over at once: no list. About the wait for 5:
	// one per change from ten named down to one, none saying too many.
	const most = 10
	lags, unnamed, early := 0, 0, 0
	timeout := time.After(testtime.Scale(10 * time.Second))
	for {
		select {
		case s := <-msgs:
			var m struct {
				Epoch, From string
				Sentinel    bool
				Node        *struct {
					Want     int64
					Complete bool
				}
			}
			if json.Unmarshal([]byte(s), &m) != nil || m.Epoch != epoch || m.From != "b" {
				continue
			}
			if m.Sentinel {
				if lags == 0 || lags > most || unnamed > 0 {
					t.Errorf("b, behind with %d followers catching up one by one, said who lags %d times (%d too many to name), want 1 to %d (none)",
						lagging, lags, unnamed, most)
				}
				if early > 0 {
					t.Errorf("b, behind 3 for less than %v, said who lags %d times, want none", inforce.LagAfter, early)
				}
				return
			}
			if m.Node != nil && m.Node.Want == 3 && m.Node.Complete {
				early++
			}
			if m.Node != nil && m.Node.Want == 5 {
				lags++
				if !m.Node.Complete {
					unnamed++
				}
			}
		case <-timeout:
			t.Fatalf("b's last message never came (%d about who lags before it)", lags)
		}
	}
}
