package feed_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	iclock "github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// parallelTests is how many tests run at once unless -parallel says
// otherwise. Each has its own hub, servers on kernel-chosen ports and
// clocks, and most of their time goes to waiting on streams, heartbeats and
// timeouts, not computing, so go test's default, the number of CPUs, would
// leave the machine idle.
const parallelTests = 8

func TestMain(m *testing.M) {
	testtime.DefaultParallel(parallelTests)
	os.Exit(m.Run())
}

// t0 is the tests' clock: entries expiring after it are live.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func clock() time.Time { return t0 }

// atT0 is a hub's clock in these tests: it says t0, and its timers (the
// heartbeat ticker) run on the wall clock, so that streams get heartbeats
// while a test waits for what its client does with them.
type atT0 struct{}

func (atT0) Now() time.Time { return t0 }

func (atT0) AfterFunc(d time.Duration, f func()) iclock.Timer { return time.AfterFunc(d, f) }

// stopped is a client's clock stopped at t0: its leases are renewed only
// when a test moves it.
func stopped() *testtime.Clock { return testtime.NewClock(t0) }

func sidOf(seq int64) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[8:], uint64(seq))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// testLogger discards logs unless FEED_TEST_LOG is set: handlers may still
// log after a test has ended.
func testLogger() *slog.Logger {
	if os.Getenv("FEED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// startHub runs a hub over src until the test ends.
func startHub(t *testing.T, src feed.Source, cfg feed.HubConfig) *feed.Hub {
	t.Helper()
	if cfg.Clock == nil {
		cfg.Clock = atT0{}
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 50 * time.Millisecond
	}
	cfg.Logger = testLogger()
	hub := feed.NewHub(src, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	return hub
}

// serve serves h until the test ends (cleanups run last in, first out, so
// register it after startHub: it stops first).
func serve(t *testing.T, h http.Handler) *server {
	t.Helper()
	return serveOn(t, h, &conns{})
}

// serveOn serves h on a listener that keeps its connections in cs.
func serveOn(t *testing.T, h http.Handler, cs *conns) *server {
	t.Helper()
	srv := &server{Server: httptest.NewUnstartedServer(h), conns: cs}
	cs.Listener = srv.Listener
	srv.Listener = cs
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// server is a test server whose client connections can be cut whoever
// holds them: httptest's own CloseClientConnections forgets a connection
// a feed stream took over from net/http.
type server struct {
	*httptest.Server
	conns *conns
}

// CloseClientConnections cuts every connection the server accepted, as a
// node that went away would.
func (s *server) CloseClientConnections() {
	s.Server.CloseClientConnections()
	s.conns.closeAll()
}

// conns is a listener that keeps the connections it accepted, and cuts
// each once cutAfter bytes were written to it, if cutAfter is set; wrap,
// if set, wraps each.
type conns struct {
	net.Listener
	cutAfter int
	wrap     func(net.Conn) net.Conn
	mu       sync.Mutex
	all      []net.Conn
}

func (cs *conns) Accept() (net.Conn, error) {
	nc, err := cs.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if cs.cutAfter > 0 {
		nc = &cutConn{Conn: nc, left: cs.cutAfter}
	}
	if cs.wrap != nil {
		nc = cs.wrap(nc)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.all = append(cs.all, nc)
	return nc, nil
}

func (cs *conns) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, nc := range cs.all {
		_ = nc.Close() // most are closed already
	}
	cs.all = nil
}

// cutConn lets left bytes through, then cuts the connection in the middle
// of whatever it was writing, as a crashing node or proxy would.
type cutConn struct {
	net.Conn
	mu   sync.Mutex
	left int
}

var errCut = errors.New("cut")

func (c *cutConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(b) <= c.left {
		c.left -= len(b)
		return c.Conn.Write(b)
	}
	n, _ := c.Conn.Write(b[:c.left])
	c.left = 0
	_ = c.Conn.Close()
	return n, errCut
}

// recorder is a Client's Apply and Reset: it keeps the seqs applied.
type recorder struct {
	mu       sync.Mutex
	seqs     []int64
	resets   int
	failSeq  int64 // Apply fails this seq failTimes times
	failLeft int
	attempts map[int64]int
}

func (r *recorder) apply(e revocation.Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.attempts == nil {
		r.attempts = make(map[int64]int)
	}
	r.attempts[e.Seq]++
	if e.Seq == r.failSeq && r.failLeft > 0 {
		r.failLeft--
		return revocation.ErrFull
	}
	r.seqs = append(r.seqs, e.Seq)
	return nil
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seqs = nil
	r.resets++
}

func (r *recorder) applied() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seqs)
}

// checkSeqs fails unless got is exactly 1..n.
func checkSeqs(t *testing.T, name string, got []int64, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%s applied %d entries, want %d", name, len(got), n)
	}
	for i, s := range got {
		if s != int64(i+1) {
			t.Fatalf("%s applied seq %d at index %d, want %d", name, s, i, i+1)
		}
	}
}

// startClient runs c with a recorder until the test ends.
func startClient(t *testing.T, c *feed.Client) *recorder {
	t.Helper()
	rec := &recorder{}
	c.Apply, c.Reset = rec.apply, rec.reset
	startClientWith(t, c)
	return rec
}

// startClientWith runs c as configured until the test ends.
func startClientWith(t *testing.T, c *feed.Client) {
	t.Helper()
	if c.Logger == nil {
		c.Logger = testLogger()
	}
	if c.RetryMin == 0 {
		c.RetryMin, c.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Client.Run() = %v, want nil", err)
		}
	})
}

// waitFor waits until cond holds (testtime.EventuallyTrue).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testtime.EventuallyTrue(t, 20*time.Second, what, cond)
}

func waitPosition(t *testing.T, c *feed.Client, pos int64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("position %d", pos), func() bool {
		st := c.State()
		return st.Position == pos && st.Synced
	})
}

// open starts a raw feed request and returns a decoder over its body. The
// request lasts a minute (scaled), so that a test may wait for other ends
// (each wait up to 20 s) before it reads the stream.
func open(t *testing.T, url string, header map[string]string) (*http.Response, *feed.Decoder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testtime.Scale(time.Minute))
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp, feed.NewDecoder(resp.Body)
}

func next(t *testing.T, d *feed.Decoder) feed.Event {
	t.Helper()
	ev, err := d.Next()
	if err != nil {
		t.Fatalf("Next() = %v, want an event", err)
	}
	return ev
}

// wantEvent reads the next event and checks its type and id.
func wantEvent(t *testing.T, d *feed.Decoder, typ, id string) feed.Event {
	t.Helper()
	ev := next(t, d)
	if ev.Type != typ || ev.ID != id {
		t.Fatalf("Next() = %s id %q data %s, want %s id %q", ev.Type, ev.ID, ev.Data, typ, id)
	}
	return ev
}
