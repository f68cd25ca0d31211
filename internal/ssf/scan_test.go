package ssf

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/store/sqlite"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// listCounter counts a Store's stream listings, one per scan.
type listCounter struct {
	*sqlite.Store
	lists atomic.Int64
}

func (c *listCounter) ListStreams(ctx context.Context) ([]store.Stream, error) {
	c.lists.Add(1)
	return c.Store.ListStreams(ctx)
}

// scanRig is two nodes on one database, as two handles: maker makes
// streams and logs events without running, other runs, on a clock that
// stands still until the test moves it. Neither wakes the other, so only
// other's ticks can find what maker did.
type scanRig struct {
	t      *testing.T
	clk    *testtime.Clock
	now    time.Time
	handle *sqlite.Store // maker's
	maker  *Transmitter
	other  *listCounter
	recv   string
	posts  atomic.Int64
}

func newScanRig(t *testing.T) *scanRig {
	ctx := context.Background()
	path := t.TempDir() + "/t.db"
	var handles []*sqlite.Store
	for range 2 {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		handles = append(handles, st)
	}
	r := &scanRig{t: t, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), handle: handles[0], other: &listCounter{Store: handles[1]}}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r.posts.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(recv.Close)
	r.recv, r.clk = recv.URL, testtime.NewClock(r.now)
	r.maker = New(handles[0], signKeys{}, r.config())
	return r
}

func (r *scanRig) config() Config {
	return Config{Issuer: testIssuer, InsecurePush: true, Clock: r.clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// run runs other's Transmitter and waits for its first scan.
func (r *scanRig) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(r.other, signKeys{}, r.config()).Run(ctx, nil) }()
	r.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Run() = %v", err)
		}
	})
	testtime.EventuallyTrue(r.t, 5*time.Second, "the first scan", func() bool { return r.other.lists.Load() >= 1 })
}

func (r *scanRig) createStream() {
	if _, err := r.maker.Create(context.Background(), StreamRequest{Delivery: &DeliveryConfig{Method: MethodPush, EndpointURL: r.recv},
		EventsRequested: ptr([]string{EventTokenClaimsChange})}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *scanRig) logEvent() {
	claims, _ := json.Marshal(map[string]string{"role": "x"})
	if _, err := r.handle.RevokeSubject(context.Background(), store.SubjectRevocation{Subject: "alice", Claims: claims,
		Now: r.now, ExpiresAt: r.now.Add(time.Hour), Actor: store.Actor{By: "test"}}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *scanRig) waitPost(what string) {
	testtime.EventuallyTrue(r.t, 5*time.Second, what, func() bool { return r.posts.Load() >= 1 })
}

// TestIdleScanFindsAnotherNodesStream: a node whose last scan found no
// push stream scans again after idleScanEvery, and then delivers a stream
// another node made and left undelivered.
func TestIdleScanFindsAnotherNodesStream(t *testing.T) {
	r := newScanRig(t)
	r.run()
	r.createStream()
	r.logEvent()
	r.clk.Add(idleScanEvery)
	r.waitPost("the other node to deliver the stream")
}

// TestScanEverySecondWhilePushing: with a push stream enabled, every tick
// of scanEvery scans, and delivers an event no wake-up announced.
func TestScanEverySecondWhilePushing(t *testing.T) {
	r := newScanRig(t)
	r.createStream()
	r.run()
	r.logEvent()
	r.clk.Add(scanEvery)
	r.waitPost("the tick's scan to deliver the event")
}

// TestScanReportsPushing: scan tells Run whether a push stream is enabled.
func TestScanReportsPushing(t *testing.T) {
	r := newDeliveryRig(t)
	if !r.tr.scan(context.Background()) {
		t.Errorf("scan() with an enabled push stream = false, want true")
	}
	r.setStatus(StatusPaused)
	if r.tr.scan(context.Background()) {
		t.Errorf("scan() with the only push stream paused = true, want false")
	}
	r.tr.deliveries.Wait() // any the first scan started
}
