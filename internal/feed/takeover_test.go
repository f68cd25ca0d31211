package feed_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// TestTakenOverStreamAnswer: a stream over plain HTTP/1.1 is written by the
// hub itself, as a complete chunked answer with the headers net/http would
// have sent, and ends with the body's last chunk when the hub stops.
func TestTakenOverStreamAnswer(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	hub := feed.NewHub(log, feed.HubConfig{Clock: atT0{}, Heartbeat: 50 * time.Millisecond, Epoch: "e1", Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := serve(t, hub)

	resp, d := open(t, srv.URL+feed.Path, nil)
	if !slices.Equal(resp.TransferEncoding, []string{"chunked"}) || !resp.Close {
		t.Fatalf("answer: Transfer-Encoding %q, Close %v; want the stream taken over: chunked, closed at its end",
			resp.TransferEncoding, resp.Close)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-store",
		"Tegata-Epoch": "e1", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
	wantEvent(t, d, feed.EventRevocations, "3")
	wantEvent(t, d, feed.EventHeartbeat, "3")

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
	done <- nil // for the cleanup
	for {
		_, err := d.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("Next() after the hub stopped = %v, want the stream's end (io.EOF)", err)
		}
	}
}

// TestGoneClientEndsTakenOverStream: a stream whose client went away ends,
// found by the goroutine that reads its connection, and gives back its
// follower's count.
func TestGoneClientEndsTakenOverStream(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{})
	var active activeCount
	mux := http.NewServeMux()
	mux.Handle("GET "+feed.Path, active.wrap(hub))
	mux.HandleFunc("POST "+feed.PositionPath, hub.ServePosition)
	mux.HandleFunc("POST "+feed.ReportsPath, hub.ServeReports)
	srv := serve(t, mux)

	resp, d := open(t, srv.URL+feed.Path, nil)
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	c := &feed.Client{URLs: []string{srv.URL}, Logger: testLogger(), Clock: stopped(),
		Follower: &feed.Follower{ID: "v1", StaleAfter: 4 * time.Second}}
	c.Apply = func(revocation.Entry) error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- c.Run(ctx) }()
	waitFor(t, "two streams, one of v1", func() bool {
		fs := hub.Followers()
		return active.n.Load() == 2 && len(fs) == 1 && fs[0].Streams == 1
	})

	resp.Body.Close()
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Client.Run() = %v, want nil", err)
	}
	waitFor(t, "both streams ended and v1's counted off", func() bool {
		fs := hub.Followers()
		return active.n.Load() == 0 && len(fs) == 1 && fs[0].Streams == 0
	})
	log.appendN(2, live) // the hub serves on
	_, d = open(t, srv.URL+feed.Path, nil)
	wantEvent(t, d, feed.EventRevocations, "2")
}

// TestStreamOverHTTP2KeepsNetHTTP: a stream that cannot be taken over
// (HTTP/2 over TLS) is served through net/http as before.
func TestStreamOverHTTP2KeepsNetHTTP(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{})
	srv := httptest.NewUnstartedServer(hub)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+feed.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("answer over HTTP/%d, want 2", resp.ProtoMajor)
	}
	d := feed.NewDecoder(resp.Body)
	wantEvent(t, d, feed.EventRevocations, "2")
	wantEvent(t, d, feed.EventHeartbeat, "2")
}

// TestReplacedTakenOverStreamEnds: a stream whose follower hears from the
// hub by its report stream gets no heartbeat to fail on; when the
// follower drops it for another, it ends all the same, also behind the
// listener tegata serve wraps its connections in when its rate limits are
// on (as they are by default).
func TestReplacedTakenOverStreamEnds(t *testing.T) {
	t.Parallel()
	for name, wrap := range map[string]func(net.Listener) net.Listener{
		"bare":      func(ln net.Listener) net.Listener { return ln },
		"httpguard": func(ln net.Listener) net.Listener { return httpguard.Listener(ln, 1000, nil, nil) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			log := newMemLog()
			hub := startHub(t, log, feed.HubConfig{})
			var active activeCount
			var opened atomic.Int64
			mux := http.NewServeMux()
			mux.Handle("GET "+feed.Path, active.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				opened.Add(1)
				hub.ServeHTTP(w, r)
			})))
			mux.HandleFunc("POST "+feed.ReportsPath, hub.ServeReports)
			srv := httptest.NewUnstartedServer(mux)
			srv.Listener = wrap(srv.Listener)
			srv.Start()
			t.Cleanup(srv.Close)
			c := &feed.Client{URLs: []string{srv.URL}, Apply: func(revocation.Entry) error { return nil },
				Follower: &feed.Follower{ID: "v1", StaleAfter: 4 * time.Second}}
			startClientWith(t, c)
			waitPosition(t, c, 0)

			c.Reconnect()
			waitFor(t, "a second stream, and the first ended", func() bool {
				fs := hub.Followers()
				return opened.Load() == 2 && active.n.Load() == 1 && len(fs) == 1 && fs[0].Streams == 1
			})
		})
	}
}

// countingListener's connections count the writes made through them and
// their closes. Unless opaque, they offer the connection under them
// (NetConn) as httpguard's do, so that a taken-over stream writes under
// them (and closes them: see rawStream.nc).
type countingListener struct {
	net.Listener
	opaque bool
	writes atomic.Int64
	closes atomic.Int64
	// lastEnd is how the last write ended (its last two bytes).
	lastEnd atomic.Value
}

func (l *countingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &countingConn{Conn: nc, l: l}
	if l.opaque {
		return c, nil
	}
	return unwrappingConn{c}, nil
}

type countingConn struct {
	net.Conn
	l *countingListener
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.l.writes.Add(1)
	c.l.lastEnd.Store(string(b[max(0, len(b)-2):]))
	return c.Conn.Write(b)
}

func (c *countingConn) Close() error {
	c.l.closes.Add(1)
	return c.Conn.Close()
}

type unwrappingConn struct{ *countingConn }

func (c unwrappingConn) NetConn() net.Conn { return c.Conn }

// TestTakenOverStreamWritesOncePerFlush: a stream that took its connection
// over writes each flush as one write (writev) to the TCP connection, also
// through the wrappers of a listener such as httpguard's, which hide the
// TCP connection's writev: through them it was a write per buffer, three
// per event.
func TestTakenOverStreamWritesOncePerFlush(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	srv := httptest.NewUnstartedServer(hub)
	counted := &countingListener{Listener: srv.Listener}
	srv.Listener = httpguard.Listener(counted, 1000, nil, nil)
	srv.Start()
	t.Cleanup(srv.Close)
	_, d := open(t, srv.URL+feed.Path, nil)
	wantEvent(t, d, feed.EventHeartbeat, "0")
	const events = 10
	before := counted.writes.Load()
	for i := range int64(events) {
		log.appendN(1, live)
		wantEvent(t, d, feed.EventRevocations, strconv.FormatInt(i+1, 10))
	}
	if n := counted.writes.Load() - before; n > events {
		t.Errorf("%d writes through the listener's connection for %d events, each its own flush; want at most one each", n, events)
	}
}

// TestTakenOverStreamOverTLSKeepsNetHTTP: a stream over HTTP/1.1 with TLS
// is not taken over (its connection is TLS: writing under it would send
// plain text), and is served through net/http as before.
func TestTakenOverStreamOverTLSKeepsNetHTTP(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{})
	srv := httptest.NewUnstartedServer(hub)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+feed.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 1 || resp.Close {
		t.Fatalf("answer over HTTP/%d.%d, Close %v; want HTTP/1.1 kept alive (net/http's path)", resp.ProtoMajor, resp.ProtoMinor, resp.Close)
	}
	d := feed.NewDecoder(resp.Body)
	wantEvent(t, d, feed.EventRevocations, "2")
	wantEvent(t, d, feed.EventHeartbeat, "2")
}

// blockingLog is a memLog whose EntriesAfter, once block is set, waits
// for its context to end, as a read from a database that hangs would.
type blockingLog struct {
	*memLog
	block   atomic.Bool
	blocked chan struct{} // sent to when a read blocks
}

func (b *blockingLog) EntriesAfter(ctx context.Context, after int64, limit int) ([]revocation.Entry, error) {
	if b.block.Load() {
		select {
		case b.blocked <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return b.memLog.EntriesAfter(ctx, after, limit)
}

// TestHubStopEndsStreamReadingSource: a hub that stops ends a stream that
// took its connection over while it waits on the Source in its catch-up,
// and Run (which waits for such streams) returns: nothing else ends that
// request's context while it runs.
func TestHubStopEndsStreamReadingSource(t *testing.T) {
	t.Parallel()
	log := &blockingLog{memLog: newMemLog(), blocked: make(chan struct{}, 1)}
	log.appendN(100, live)
	hub := feed.NewHub(log, feed.HubConfig{Clock: atT0{}, RingSize: 16, Heartbeat: 50 * time.Millisecond, Logger: testLogger()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	srv := serve(t, hub)
	waitFor(t, "the hub at the head, its ring past the stream's position", func() bool { return hub.Head() == 100 })
	log.block.Store(true)
	go func() {
		if resp, err := http.Get(srv.URL + feed.Path); err == nil {
			resp.Body.Close()
		}
	}()
	<-log.blocked
	cancel()
	var err error
	waitFor(t, "Run to return", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	if err != nil {
		t.Fatalf("Run() = %v, want nil", err)
	}
}

// TestGoneClientGetsNoHeartbeat: a stream whose client closed its end
// ends without writing to it again: the kernel takes a write to a
// connection its peer closed, and only the next one fails, so a stream
// that learnt of it by writing would stay (with its place under the
// stream caps) for two heartbeats.
func TestGoneClientGetsNoHeartbeat(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{})
	var active activeCount
	srv := httptest.NewUnstartedServer(active.wrap(hub))
	counted := &countingListener{Listener: srv.Listener, opaque: true}
	srv.Listener = counted
	srv.Start()
	t.Cleanup(srv.Close)
	// A named follower without a report stream: a heartbeat every
	// quarter of its bound (a second).
	resp, d := open(t, srv.URL+feed.Path, map[string]string{"Tegata-Verifier": "id=v1&stale_after_ms=4000"})
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	// Through the opaque wrapper a flush is a write per buffer: the
	// client reads the heartbeat before the chunk's closing CRLF, its
	// last, is written.
	waitFor(t, "the heartbeat's chunk written to its end", func() bool {
		end, _ := counted.lastEnd.Load().(string)
		return end == "\r\n"
	})
	before := counted.writes.Load()
	resp.Body.Close()
	waitFor(t, "the stream ended", func() bool { return active.n.Load() == 0 })
	if n := counted.writes.Load() - before; n != 0 {
		t.Errorf("%d writes to the connection after its client closed it, want none", n)
	}
}

// TestClosedClientEndsItsStreamAtOnce: a taken-over stream ends as soon as
// its client closes the connection, though nothing wakes it (its next
// heartbeat is an hour away and nothing is appended), and its follower is
// counted off.
func TestClosedClientEndsItsStreamAtOnce(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Hour})
	var active activeCount
	srv := httptest.NewServer(active.wrap(hub))
	t.Cleanup(srv.Close)
	resp, d := open(t, srv.URL+feed.Path, map[string]string{"Tegata-Verifier": "id=v1&stale_after_ms=4000"})
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	resp.Body.Close()
	waitFor(t, "the stream ended and v1 counted off", func() bool {
		fs := hub.Followers()
		return active.n.Load() == 0 && (len(fs) == 0 || fs[0].Streams == 0)
	})
}

// TestEndHookRunsBeforeTheClientSeesTheEnd: what the handlers around the
// hub do at a stream's end (WithEndHook: free its place under a cap, log
// why it ended) is done before the client of a taken-over stream reads the
// end of its answer, as under net/http, where an answer ends only once
// every handler has returned. A client that reconnects at once finds the
// place freed. The hook sees the connection still open: the answer's last
// chunk is written, and the connection closed, only once it returned.
func TestEndHookRunsBeforeTheClientSeesTheEnd(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{})
	var hooked atomic.Int64
	closedAtHook := int64(-1)
	endStream := make(chan struct{})
	srv := httptest.NewUnstartedServer(nil)
	counted := &countingListener{Listener: srv.Listener}
	srv.Listener = counted
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		go func() {
			select {
			case <-endStream:
				cancel()
			case <-ctx.Done():
			}
		}()
		hub.ServeHTTP(w, r.WithContext(feed.WithEndHook(ctx, func() {
			if hooked.Add(1) == 1 {
				closedAtHook = counted.closes.Load()
			}
		})))
	})
	srv.Start()
	t.Cleanup(srv.Close)
	resp, d := open(t, srv.URL+feed.Path, nil)
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	close(endStream)
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading to the end of the answer: %v", err)
	}
	if n := hooked.Load(); n != 1 {
		t.Fatalf("end hook ran %d times when the client read the answer's end, want 1", n)
	}
	if closedAtHook != 0 {
		t.Errorf("the end hook ran after the stream closed its connection (%d closes), want before", closedAtHook)
	}
}

// TestDetachedStreamOutlivesItsHandler: a taken-over stream served with a
// detach hook goes on after the hub's handler returned (the handler's
// goroutine and net/http's buffers are freed for the stream's life): the
// hook runs once, before the handler returns, and the client still gets
// the stream's events after that; the end hook runs at the stream's end,
// which the client's going away brings about.
func TestDetachedStreamOutlivesItsHandler(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{Clock: atT0{}, Heartbeat: 20 * time.Millisecond})
	var detached, ended atomic.Int64
	returned := make(chan int64, 1)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The stream's context must outlive the request's (WithDetachHook).
		ctx := context.WithoutCancel(r.Context())
		ctx = feed.WithEndHook(ctx, func() { ended.Add(1) })
		ctx = feed.WithDetachHook(ctx, func() { detached.Add(1) })
		hub.ServeHTTP(w, r.WithContext(ctx))
		returned <- detached.Load()
	}))
	resp, d := open(t, srv.URL+feed.Path, nil)
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	select {
	case n := <-returned:
		if n != 1 {
			t.Fatalf("the handler returned with the detach hook run %d times, want 1", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the hub's handler did not return while its stream was open")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	log.appendN(1, live)
	for ev := next(t, d); ev.Type != feed.EventRevocations || ev.ID != "1"; ev = next(t, d) {
		if ev.Type != feed.EventHeartbeat || ev.ID != "0" {
			t.Fatalf("Next() = %s id %q, want heartbeats at 0 until revocations id 1", ev.Type, ev.ID)
		}
	}
	if n := ended.Load(); n != 0 {
		t.Fatalf("end hook ran %d times while the stream was open, want 0", n)
	}
	resp.Body.Close()
	waitFor(t, "the end hook, once the client went away", func() bool { return ended.Load() == 1 })
	if n := detached.Load(); n != 1 {
		t.Errorf("detach hook ran %d times, want 1", n)
	}
}

// panicConn panics at its next write once armed, as a bug under a
// stream's writes would.
type panicConn struct {
	net.Conn
	armed atomic.Bool
}

const panicValue = "panicConn: a write panicked"

func (c *panicConn) Write(b []byte) (int, error) {
	if c.armed.CompareAndSwap(true, false) {
		panic(panicValue)
	}
	return c.Conn.Write(b)
}

// TestDetachedStreamPanicEndsOnlyIt: a panic on a detached stream's
// goroutine, where no net/http handler is left to recover it, ends that
// stream alone, as net/http's recovery would end a handler's: it is
// logged, the stream's end hook runs and its connection is closed, and
// the node goes on serving other streams.
func TestDetachedStreamPanicEndsOnlyIt(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	var logs lockedBuffer
	hub := feed.NewHub(log, feed.HubConfig{Clock: atT0{}, Heartbeat: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- hub.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ran; err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	})
	var ended atomic.Int64
	accepted := make(chan *panicConn, 2)
	srv := serveOn(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithoutCancel(r.Context())
		ctx = feed.WithEndHook(ctx, func() { ended.Add(1) })
		ctx = feed.WithDetachHook(ctx, func() {})
		hub.ServeHTTP(w, r.WithContext(ctx))
	}), &conns{wrap: func(nc net.Conn) net.Conn {
		pc := &panicConn{Conn: nc}
		select {
		case accepted <- pc:
		default: // only the first is armed
		}
		return pc
	}})
	resp, d := open(t, srv.URL+feed.Path, nil)
	if !resp.Close {
		t.Fatal("the stream was not taken over from net/http")
	}
	wantEvent(t, d, feed.EventHeartbeat, "0")
	(<-accepted).armed.Store(true)
	log.appendN(1, live)
	waitFor(t, "the panicked stream's end hook", func() bool { return ended.Load() == 1 })
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("the panicked stream's answer ended complete, want cut (nothing is written after a panic)")
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, panicValue) {
		t.Errorf("the panic was not logged at ERROR with its value:\n%s", l)
	}
	_, d = open(t, srv.URL+feed.Path, nil)
	wantEvent(t, d, feed.EventRevocations, "1")
}

// lockedBuffer is a log's output, written by the hub's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
