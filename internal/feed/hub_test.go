package feed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	iclock "github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

var (
	live    = t0.Add(time.Hour)
	expired = t0.Add(-time.Hour)
)

func TestServeRejects(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	tests := []struct {
		name       string
		method     string
		query      string
		lastID     string
		wantStatus int
	}{
		{"after not a number", "GET", "after=abc", "", http.StatusBadRequest},
		{"after negative", "GET", "after=-1", "", http.StatusBadRequest},
		{"after overflows", "GET", "after=99999999999999999999", "", http.StatusBadRequest},
		{"Last-Event-ID not a number", "GET", "after=0", "x", http.StatusBadRequest},
		{"unknown version", "GET", "v=3", "", http.StatusBadRequest},
		{"POST", "POST", "", "", http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+feed.Path+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.lastID != "" {
				req.Header.Set("Last-Event-ID", tt.lastID)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.wantStatus || err != nil || body.Error != "invalid_request" || body.ErrorDescription == "" {
				t.Errorf("%s ?%s = %d %+v (decode: %v), want %d invalid_request", tt.method, tt.query, resp.StatusCode, body, err, tt.wantStatus)
			}
		})
	}
}

func TestStreamCatchUpThenLive(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	resp, d := open(t, srv.URL+feed.Path, nil)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	wantEntries(t, d, 1, 2, 3)
	checkHeartbeat(t, wantEvent(t, d, feed.EventHeartbeat, "3"), 3)
	log.appendN(2, live)
	wantEntries(t, d, 4, 5)
	waitFor(t, "hub head 5", func() bool { return hub.Head() == 5 })
}

// wantEntries reads revocations events until it has the session entries
// seqs (as memLog.appendN makes them), in order, and fails on anything
// else.
func wantEntries(t *testing.T, d *feed.Decoder, seqs ...int64) {
	t.Helper()
	for len(seqs) > 0 {
		ev := next(t, d)
		if ev.Type != feed.EventRevocations {
			t.Fatalf("Next() = %s id %q data %s, want revocations with seqs %v", ev.Type, ev.ID, ev.Data, seqs)
		}
		es, err := feed.ParseLines(ev.Data)
		if err != nil {
			t.Fatalf("revocations data %q: %v", ev.Data, err)
		}
		for _, e := range es {
			if len(seqs) == 0 {
				t.Fatalf("revocations event holds seq %d, want no more entries", e.Seq)
			}
			want := revocation.Entry{Seq: seqs[0], Kind: revocation.KindSession, Session: sidOf(seqs[0]),
				CreatedAt: live.Add(-time.Hour).UTC(), ExpiresAt: live.UTC()}
			if e != want {
				t.Fatalf("entry = %+v, want %+v", e, want)
			}
			seqs = seqs[1:]
		}
		if last := es[len(es)-1].Seq; ev.ID != strconv.FormatInt(last, 10) {
			t.Fatalf("revocations event id %q, want its last seq %d", ev.ID, last)
		}
	}
}

func checkHeartbeat(t *testing.T, ev feed.Event, head int64) {
	t.Helper()
	var hb struct{ Head, Time int64 }
	if err := json.Unmarshal(ev.Data, &hb); err != nil {
		t.Fatalf("heartbeat data %s: %v", ev.Data, err)
	}
	if hb.Head != head || hb.Time != t0.UnixMilli() {
		t.Errorf("heartbeat = %s, want head %d time %d", ev.Data, head, t0.UnixMilli())
	}
}

func TestStreamSkipsExpired(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(1, live)    // 1
	log.appendN(1, expired) // 2
	log.appendN(1, live)    // 3
	log.appendN(1, expired) // 4
	log.skip(2)             // 5, 6 pruned
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	_, d := open(t, srv.URL+feed.Path+"?after=0", nil)
	wantEntries(t, d, 1, 3)
	checkHeartbeat(t, wantEvent(t, d, feed.EventHeartbeat, "6"), 6)
	log.appendN(1, expired) // 7
	log.appendN(1, live)    // 8
	wantEntries(t, d, 8)
}

func TestHeartbeatCadence(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond}))
	_, d := open(t, srv.URL+feed.Path+"?after=2", nil)
	for range 5 {
		checkHeartbeat(t, wantEvent(t, d, feed.EventHeartbeat, "2"), 2)
	}
	// The head moving past pruned entries shows in the next heartbeats.
	log.skip(3)
	for i := 0; ; i++ {
		ev := next(t, d)
		if ev.Type == feed.EventHeartbeat && ev.ID == "5" {
			checkHeartbeat(t, ev, 5)
			return
		}
		if ev.Type != feed.EventHeartbeat || i > 1000 {
			t.Fatalf("Next() = %s id %q, want a heartbeat at 5", ev.Type, ev.ID)
		}
	}
}

func TestResetWhenAheadOfLog(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	_, d := open(t, srv.URL+feed.Path+"?after=1", map[string]string{"Last-Event-ID": "10"})
	ev := wantEvent(t, d, feed.EventReset, "")
	if string(ev.Data) != `{"head":3}` {
		t.Errorf("reset data = %s, want {\"head\":3}", ev.Data)
	}
	wantEntries(t, d, 1, 2, 3)
	wantEvent(t, d, feed.EventHeartbeat, "3")
}

func TestLastEventIDTakesPrecedence(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	q := url.Values{"after": {"0"}}
	_, d := open(t, srv.URL+feed.Path+"?"+q.Encode(), map[string]string{"Last-Event-ID": "2"})
	wantEntries(t, d, 3)
	wantEvent(t, d, feed.EventHeartbeat, "3")
}

// TestStalledConnectionDropped: a connection that stops reading is dropped
// by its write deadline, and delays no other connection meanwhile.
func TestStalledConnectionDropped(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{RingSize: 128, WriteTimeout: 300 * time.Millisecond})
	var active activeCount
	srv := serve(t, active.wrap(hub))
	_, slow := openSlow(t, srv.URL+feed.Path)
	wantEvent(t, slow, feed.EventHeartbeat, "0")
	fast := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, fast)
	waitPosition(t, fast, 0)

	// 12,000 entries of about 1 KiB: more than the socket buffers hold.
	const n = 12000
	pad := strings.Repeat("p", 1000)
	for range n / 1000 {
		log.appendPadded(1000, live, pad)
	}
	waitPosition(t, fast, n)
	checkSeqs(t, "fast client", rec.applied(), n)
	// Reading the stalled stream now would be slow (the tiny receive
	// window), so the drop shows in the handler returning.
	waitFor(t, "the stalled connection to be dropped", func() bool { return active.n.Load() == 1 })
}

// TestBurstLargerThanRing: a connection overtaken by a burst larger than
// the ring catches up from the Source on the same stream.
func TestBurstLargerThanRing(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	srv := serve(t, startHub(t, log, feed.HubConfig{RingSize: 16, BatchSize: 100}))
	_, d := open(t, srv.URL+feed.Path, nil)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	const n = 5000
	log.appendN(n, live)
	for seq := int64(1); seq <= n; {
		ev := next(t, d)
		if ev.Type == feed.EventHeartbeat {
			continue
		}
		es, err := feed.ParseLines(ev.Data)
		if ev.Type != feed.EventRevocations || err != nil {
			t.Fatalf("Next() = %s id %q (%v), want revocations from %d", ev.Type, ev.ID, err, seq)
		}
		for _, e := range es {
			if e.Seq != seq {
				t.Fatalf("entry seq %d, want %d", e.Seq, seq)
			}
			seq++
		}
	}
}

type activeCount struct{ n atomic.Int64 }

func (a *activeCount) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.n.Add(1)
		defer a.n.Add(-1)
		h.ServeHTTP(w, r)
	})
}

// openSlow opens a feed request over a connection with a tiny receive
// buffer, so that a reader that stops reading stalls the server's writes
// soon.
func openSlow(t *testing.T, u string) (*http.Response, *feed.Decoder) {
	t.Helper()
	return openBuffered(t, u, 4096)
}

// openBuffered opens a feed request over a connection whose receive buffer
// holds size bytes (and does not grow).
func openBuffered(t *testing.T, u string, size int) (*http.Response, *feed.Decoder) {
	t.Helper()
	dialer := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(size)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Scale(time.Minute))
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, feed.NewDecoder(resp.Body)
}

func TestSourceErrorsAreRetried(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(10, live)
	log.down.Store(true)
	var requests atomic.Int64
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		hub.ServeHTTP(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL}, IdleTimeout: 100 * time.Millisecond}
	rec := startClient(t, c)
	waitFor(t, "the hub to retry", func() bool { return log.heads.Load() >= 3 })
	log.down.Store(false)
	waitPosition(t, c, 10)

	// Down again: the live stream waits for the hub's next good read; a new
	// client's catch-up fails and it retries.
	log.down.Store(true)
	log.appendN(10, live)
	late := &feed.Client{URLs: []string{srv.URL}}
	lateRec := startClient(t, late)
	n := requests.Load()
	waitFor(t, "failed catch-ups", func() bool { return requests.Load() >= n+3 })
	log.down.Store(false)
	waitPosition(t, c, 20)
	checkSeqs(t, "client", rec.applied(), 20)
	waitPosition(t, late, 20)
	checkSeqs(t, "late client", lateRec.applied(), 20)
}

func TestHubRunsOnce(t *testing.T) {
	t.Parallel()
	hub := feed.NewHub(newMemLog(), feed.HubConfig{Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := hub.Run(ctx); err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	if err := hub.Run(ctx); !errors.Is(err, feed.ErrHubRan) {
		t.Fatalf("second Run() = %v, want ErrHubRan", err)
	}
}

// TestNoHeartbeatWhileTheLogIsUnreadable: a hub that cannot read its
// Source must not tell clients they are current, or verifiers following a
// node cut off from its database would trust a set that misses revocations
// recorded by other nodes. It runs in a synctest bubble: the hub's ticker
// runs on the bubble's clock and synctest.Wait says when every tick has
// been handled, so "no heartbeat" is checked, not waited for.
func TestNoHeartbeatWhileTheLogIsUnreadable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const beat = 10 * time.Millisecond
		log := newMemLog()
		log.appendN(3, live)
		// The bubble's clock, set to t0: the hub stamps heartbeats and ticks
		// on it.
		at := iclock.Offset(iclock.Real, t0.Sub(time.Now()))
		hub := feed.NewHub(log, feed.HubConfig{Heartbeat: beat, Clock: at, Logger: testLogger(), Epoch: testEpoch})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = hub.Run(ctx) }()
		w := &stream{header: http.Header{}}
		go hub.ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/v1/feed", nil))
		synctest.Wait()
		evs := w.events(t)
		if len(evs) != 2 || evs[1].Type != feed.EventHeartbeat || string(evs[1].Data) != heartbeatAt(3) {
			t.Fatalf("events once caught up = %s, want the revocations and a heartbeat at 3", describe(evs))
		}

		log.down.Store(true)
		time.Sleep(20 * beat) // twenty ticks, each reading the log and failing
		synctest.Wait()
		if evs := w.events(t); len(evs) != 2 {
			t.Fatalf("events while the log was unreadable = %s, want none: heartbeats must stop", describe(evs[2:]))
		}
		if n := log.heads.Load(); n < 20 {
			t.Fatalf("Head calls = %d, want at least 20: the hub did not try the log on every tick", n)
		}

		log.down.Store(false)
		time.Sleep(beat)
		synctest.Wait()
		if evs := w.events(t); len(evs) != 3 || evs[2].Type != feed.EventHeartbeat {
			t.Fatalf("events after the log came back = %s, want one more heartbeat", describe(evs[2:]))
		}
	})
}

// describe lists events as "type id data", one per line.
func describe(evs []feed.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&b, "\n\t%s %s %s", ev.Type, ev.ID, ev.Data)
	}
	return fmt.Sprintf("%d events:%s", len(evs), b.String())
}

// testEpoch is the epoch of hubs whose heartbeats a test compares.
const testEpoch = "test-epoch"

// heartbeatAt is the data of a heartbeat at pos, with the tests' clock, of
// a hub with epoch testEpoch.
func heartbeatAt(pos int64) string {
	return fmt.Sprintf(`{"head":%d,"time":%d,"epoch":%q}`, pos, t0.UnixMilli(), testEpoch)
}

// stream is a ResponseWriter that keeps what a feed connection writes, for
// tests that call Hub.ServeHTTP without a network.
type stream struct {
	mu     sync.Mutex
	header http.Header
	buf    bytes.Buffer
}

func (s *stream) Header() http.Header { return s.header }
func (s *stream) WriteHeader(int)     {}
func (s *stream) Flush()              {}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// events decodes everything written so far.
func (s *stream) events(t *testing.T) []feed.Event {
	t.Helper()
	s.mu.Lock()
	data := bytes.Clone(s.buf.Bytes())
	s.mu.Unlock()
	d := feed.NewDecoder(bytes.NewReader(data))
	var evs []feed.Event
	for {
		ev, err := d.Next()
		if errors.Is(err, io.EOF) {
			return evs
		}
		if err != nil {
			t.Fatalf("decoding the stream: %v", err)
		}
		ev.Data = bytes.Clone(ev.Data) // Next reuses it
		evs = append(evs, ev)
	}
}

// TestNewConnectionNeverSyncedBelowTheLogHead: entries the hub has not
// read yet (its wake-up was lost or is still on its way) are already
// acknowledged to whoever revoked them, so a client that connects now must
// not be told it is current until it has them.
func TestNewConnectionNeverSyncedBelowTheLogHead(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}) // no tick to rescue us
	srv := serve(t, hub)
	first := &feed.Client{URLs: []string{srv.URL}}
	startClient(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := first.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	log.silent.Store(true)
	log.appendN(5, live) // the hub is not woken
	late := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, late)
	if err := late.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if st := late.State(); st.Position < 5 {
		t.Fatalf("late client synced at position %d with %d entries, want >= 5: it was told it is current without entries already in the log", st.Position, len(rec.applied()))
	}
	checkSeqs(t, "late client", rec.applied(), 5)
}

// TestBulkBurstServedFromMemory: a connection that could not keep up while
// two bulk revocation calls' worth of entries (10,000 each, the most the API
// takes in one call) landed at once still gets them from the hub's memory,
// not by reading the log itself: a 100,000-entry flood then costs the log
// one read per batch per node, not one per follower. The log is made
// unreadable once the hub has read the burst, so a connection that went
// back to it would end before the last entry.
func TestBulkBurstServedFromMemory(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	// This reader takes 10 MB through a 64 KiB socket buffer: under the
	// race detector on a loaded machine a write of a 5 MB frame can block
	// for longer than the default WriteTimeout, which would drop it as a
	// stalled reader. Stalls are TestStalledConnectionDropped's subject.
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, WriteTimeout: testtime.Scale(time.Minute)})
	srv := serve(t, hub)
	_, d := openBuffered(t, srv.URL+feed.Path, 64<<10)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	const n = 20_000
	pad := strings.Repeat("u", 500)
	for range n / 10_000 {
		for i := range 10_000 {
			log.appendSubjectQuiet(fmt.Sprint(pad, i)) // more than the socket buffers hold
		}
		log.wake()
	}
	waitFor(t, "the hub to read the burst", func() bool { return hub.Head() == n })
	log.down.Store(true)
	var got int64
	for got < n {
		ev := next(t, d)
		if ev.Type != feed.EventRevocations {
			t.Fatalf("Next() = %s event, want %s", ev.Type, feed.EventRevocations)
		}
		got += int64(strings.Count(string(ev.Data), "\n") + 1)
		if ev.ID != strconv.FormatInt(got, 10) {
			t.Fatalf("revocations event id %q after %d entries, want %d", ev.ID, got, got)
		}
	}
}

// TestHubReadyOnceHeadRead: a hub that has not read the log's head cannot
// serve streams or take reports, and says so through Ready, which the
// node's /readyz includes; once the log answers it is ready.
func TestHubReadyOnceHeadRead(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const beat = 10 * time.Millisecond
		log := newMemLog()
		log.down.Store(true)
		hub := feed.NewHub(log, feed.HubConfig{Heartbeat: beat, Logger: testLogger(), Epoch: testEpoch})
		if err := hub.Ready(); !errors.Is(err, feed.ErrStarting) {
			t.Fatalf("Ready() before Run = %v, want ErrStarting", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- hub.Run(ctx) }()
		time.Sleep(3 * beat)
		synctest.Wait()
		if err := hub.Ready(); !errors.Is(err, feed.ErrStarting) {
			t.Fatalf("Ready() while the head cannot be read = %v, want ErrStarting", err)
		}
		log.down.Store(false)
		time.Sleep(beat)
		synctest.Wait()
		if err := hub.Ready(); err != nil {
			t.Fatalf("Ready() once the head was read = %v, want nil", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run() = %v", err)
		}
	})
}

// TestNamedStreamHeartbeatsSparse: a named follower's stream gets a
// heartbeat every quarter of its staleness bound, not every tick: its
// freshness rests on leases, and every heartbeat costs the hub a write per
// stream.
func TestNamedStreamHeartbeatsSparse(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	srv := serve(t, hub)
	// A bound of 400ms: a heartbeat every 100ms, every 10th tick.
	_, d := open(t, srv.URL+feed.Path+"?after=2", map[string]string{"Tegata-Verifier": "id=sparse&stale_after_ms=400"})
	wantEvent(t, d, feed.EventHeartbeat, "2") // at once, caught up
	const more = 3
	for range more {
		wantEvent(t, d, feed.EventHeartbeat, "2")
	}
	if beats := hub.Beats(); beats < more*10 {
		t.Errorf("%d heartbeats after the first within %d ticks, want at most one per 10 ticks", more, beats)
	}
}

// TestHeartbeatWhenThePositionMovesSilently: when the head moves past
// entries a stream does not send (pruned or expired), the stream says so
// with a heartbeat at once, not at the next tick: a follower's lease
// vouches only once its position reaches the head the lease names.
func TestHeartbeatWhenThePositionMovesSilently(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{Heartbeat: time.Hour}))
	_, d := open(t, srv.URL+feed.Path+"?after=0", map[string]string{"Tegata-Verifier": "id=silent&stale_after_ms=10000"})
	wantEntries(t, d, 1, 2)
	wantEvent(t, d, feed.EventHeartbeat, "2")
	log.skip(3)
	checkHeartbeat(t, wantEvent(t, d, feed.EventHeartbeat, "5"), 5)
}

// TestAskBeyondHeadComesWithTheEntries: an ask for a position the hub has
// not read yet (a revocation just committed) is written after the entries
// up to it, with them, not before them (on its own, or with another
// event): an ask the follower cannot answer yet would cost every stream a
// write of its own.
func TestAskBeyondHeadComesWithTheEntries(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := serve(t, hub)
	_, d := open(t, srv.URL+feed.Path+"?after=2", map[string]string{"Tegata-Verifier": "id=asked&stale_after_ms=10000"})
	wantEvent(t, d, feed.EventHeartbeat, "2")
	log.silent.Store(true)
	log.appendN(1, live) // committed; the hub has not read it
	hub.Ask(3)
	hub.SetNodes([]string{"https://a.example.com"}) // wakes the stream
	wantEvent(t, d, feed.EventNodes, "2")
	log.silent.Store(false)
	log.wake()
	wantEntries(t, d, 3)
	if ev := next(t, d); ev.Type != feed.EventAsk || string(ev.Data) != `{"position":3}` {
		t.Fatalf("after the entries: %s %s, want the ask for 3", ev.Type, ev.Data)
	}
}

// TestHeardAskComesWithTheEntries: an append heard as asked (its caller
// waits for a confirmation; another node's, told by its notification)
// has the hub ask its followers in the same write as the entries, with no
// Ask from this node's confirmation, which comes later or not at all.
func TestHeardAskComesWithTheEntries(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, Heard: log.Heard})
	srv := serve(t, hub)
	_, d := open(t, srv.URL+feed.Path+"?after=2", map[string]string{"Tegata-Verifier": "id=asked&stale_after_ms=10000"})
	wantEvent(t, d, feed.EventHeartbeat, "2")
	log.appendHeard(1, true)
	wantEntries(t, d, 3)
	if ev := next(t, d); ev.Type != feed.EventAsk || string(ev.Data) != `{"position":3}` {
		t.Fatalf("after the entries: %s %s, want the ask for 3", ev.Type, ev.Data)
	}
	log.appendHeard(1, false)
	wantEntries(t, d, 4)
	hub.SetNodes([]string{"https://a.example.com"}) // the next event, written once 4's are
	if ev := next(t, d); ev.Type != feed.EventNodes {
		t.Fatalf("after an append not asked for: %s %s, want no ask, the nodes event", ev.Type, ev.Data)
	}
}

// TestHeardHeadSparesTheHeadRead: woken for an append whose head it
// heard, the hub reads the entries up to it without reading the log's
// head first; a wake-up with nothing new heard (a listener that
// reconnected) reads the head.
func TestHeardHeadSparesTheHeadRead(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, Heard: log.Heard})
	waitFor(t, "the hub to start", func() bool { return hub.Ready() == nil })
	heads := log.heads.Load()
	log.appendHeard(3, false)
	waitFor(t, "the heard append read", func() bool { return hub.Head() == 5 })
	if n := log.heads.Load() - heads; n != 0 {
		t.Errorf("%d reads of the head for an append whose head was heard, want 0", n)
	}
	log.appendN(1, live) // woken, nothing heard: the head is read
	waitFor(t, "the unheard append read", func() bool { return hub.Head() == 6 })
	if n := log.heads.Load() - heads; n == 0 {
		t.Error("the hub read an append whose head it had not heard without reading the head")
	}
}

// TestHeardBeforeAReplacementIgnored: heads heard of a log the hub then
// finds replaced by a lower head are the old log's: the hub does not
// move its position up to them on the new one.
func TestHeardBeforeAReplacementIgnored(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour, Heard: log.Heard})
	waitFor(t, "the hub to start", func() bool { return hub.Ready() == nil })
	log.appendHeard(5, true)
	waitFor(t, "the heard appends read", func() bool { return hub.Head() == 5 })
	log.replace(2, live)
	waitFor(t, "the replaced log read", func() bool { return hub.Head() == 2 })
	log.appendN(1, live)
	waitFor(t, "the new log's append read", func() bool { return hub.Head() == 3 })
}

// TestAskAfterAReplacement: the asks of a log the hub finds replaced by a
// lower head (a restored database) are the old log's: a confirmation on
// the new log asks for a position below the highest of them, and its
// followers are asked.
func TestAskAfterAReplacement(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(5, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	waitFor(t, "the hub to start", func() bool { return hub.Ready() == nil })
	hub.Ask(5)
	log.replace(2, live)
	waitFor(t, "the replaced log read", func() bool { return hub.Head() == 2 })
	srv := serve(t, hub)
	_, d := open(t, srv.URL+feed.Path+"?after=2", map[string]string{"Tegata-Verifier": "id=restored&stale_after_ms=10000"})
	wantEvent(t, d, feed.EventHeartbeat, "2")
	log.appendN(1, live)
	wantEntries(t, d, 3)
	hub.Ask(3)
	hub.SetNodes([]string{"https://a.example.com"}) // the next event, written after the ask
	for {
		ev := next(t, d)
		if ev.Type == feed.EventAsk && string(ev.Data) == `{"position":3}` {
			return
		}
		if ev.Type != feed.EventHeartbeat {
			t.Fatalf("after Ask(3) on the new log: %s %s, want the ask for 3", ev.Type, ev.Data)
		}
	}
}

// TestNoLeaseWhileTheLogIsUnreadable: a hub that cannot read the log
// grants no lease, as it sends no heartbeat: the answers to lease
// renewals keep a follower that hears from the hub by them on its
// stream, and it must leave a node that cannot tell it what it misses.
func TestNoLeaseWhileTheLogIsUnreadable(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const beat = 10 * time.Millisecond
		log := newMemLog()
		log.appendN(3, live)
		hub := feed.NewHub(log, feed.HubConfig{Heartbeat: beat, Clock: iclock.Offset(iclock.Real, t0.Sub(time.Now())), Logger: testLogger(), Epoch: testEpoch})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { _ = hub.Run(ctx) }()
		w := &stream{header: http.Header{}}
		req := httptest.NewRequestWithContext(ctx, "GET", "/v1/feed", nil)
		req.Header.Set("Tegata-Verifier", "id=v1&stale_after_ms=10000&hears=reports")
		go hub.ServeHTTP(w, req)
		synctest.Wait()
		report := func() int {
			body := fmt.Sprintf(`{"id":"v1","stale_after_ms":10000,"position":3,"ready":true,"epoch":%q,"token":%q}`,
				testEpoch, w.header.Get("Tegata-Report-Token"))
			rec := httptest.NewRecorder()
			hub.ServePosition(rec, httptest.NewRequestWithContext(ctx, "POST", feed.PositionPath, strings.NewReader(body)))
			return rec.Code
		}
		if code := report(); code != http.StatusOK {
			t.Fatalf("report while the log is readable = %d, want 200", code)
		}
		log.down.Store(true)
		time.Sleep(5 * beat)
		synctest.Wait()
		if code := report(); code != http.StatusServiceUnavailable {
			t.Fatalf("report after 5 ticks of an unreadable log = %d, want 503 (no lease)", code)
		}
		log.down.Store(false)
		time.Sleep(beat)
		synctest.Wait()
		if code := report(); code != http.StatusOK {
			t.Fatalf("report once the log is read again = %d, want 200", code)
		}
	})
}

// TestIdleHubReadsTheHeadAlone: a tick of a hub whose log has not moved
// reads the log's head and no entries (a query a second per node saved);
// an append is read as before.
func TestIdleHubReadsTheHeadAlone(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	waitFor(t, "ten ticks", func() bool { return log.heads.Load() >= 10 })
	if n := log.reads.Load(); n != 0 {
		t.Fatalf("%d reads of entries over ten ticks of an idle log, want 0", n)
	}
	log.appendN(1, live)
	waitFor(t, "the append read", func() bool { return hub.Head() == 3 })
	if n := log.reads.Load(); n == 0 {
		t.Fatal("the hub reached the new head without reading the entry")
	}
}
