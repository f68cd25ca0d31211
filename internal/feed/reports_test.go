package feed_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// countPosts wraps h, counting the single reports (POST PositionPath).
func countPosts(h http.Handler, n *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.PositionPath {
			n.Add(1)
		}
		h.ServeHTTP(w, r)
	})
}

// followerAt returns the hub's record of id, if it has one.
func followerAt(hub *feed.Hub, id string) (feed.FollowerState, bool) {
	for _, f := range hub.Followers() {
		if f.ID == id {
			return f, true
		}
	}
	return feed.FollowerState{}, false
}

// TestReportsOnlyWhenAsked: a client reports once at the start of its
// stream and then not for the entries it applies, until the hub asks for a
// position; then it reports as soon as it has applied it, on its report
// stream (no request per report once that stream is answered).
func TestReportsOnlyWhenAsked(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	var posts atomic.Int32
	srv := serve(t, countPosts(positionMux(hub), &posts))
	// A bound of a minute: the lease is renewed only after 20s.
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "v1 current, as the hub says", func() bool {
		f, ok := followerAt(hub, "v1")
		return ok && f.Ready && f.Position == 2
	})
	log.appendN(8, live)
	waitPosition(t, c, 10)
	if f, _ := followerAt(hub, "v1"); f.Position != 2 {
		t.Fatalf("the hub's record of v1 after 8 entries and no ask: position %d, want 2 (no report per entry)", f.Position)
	}
	before := posts.Load() // the first reports, sent before the report stream was answered
	hub.Ask(12)
	log.appendN(2, live)
	waitFor(t, "v1's report of 12 after the ask", func() bool {
		f, _ := followerAt(hub, "v1")
		return f.Position == 12
	})
	if n := posts.Load(); n != before {
		t.Errorf("%d single reports after the ask, want none: the report stream carries them", n-before)
	}
	if st := c.State(); st.FreshUntil.IsZero() {
		t.Errorf("State() = %+v, want a lease", st)
	}
}

// TestReportStreamHeldFallsBack: behind a proxy that holds request bodies
// until they end, the report stream never answers; the client reports
// with one request each instead, and gets its lease.
func TestReportStreamHeldFallsBack(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	hub := startHub(t, log, feed.HubConfig{})
	var posts atomic.Int32
	mux := positionMux(hub)
	srv := serve(t, countPosts(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			io.Copy(io.Discard, r.Body) // ends when the client gives up
			return
		}
		mux.ServeHTTP(w, r)
	}), &posts))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "a lease", func() bool { return !c.State().FreshUntil.IsZero() })
	if n := posts.Load(); n == 0 {
		t.Fatalf("a lease with no single report: the held report stream answered?")
	}
}

// reportStream opens a report stream as id with token (if any) and
// returns its status, a writer of report lines and a reader of answers.
func reportStream(t *testing.T, base, header, token string) (int, io.Writer, *bufio.Reader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close(); cancel() })
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+feed.ReportsPath, pr)
	if err != nil {
		t.Fatal(err)
	}
	if header != "" {
		req.Header.Set("Tegata-Verifier", header)
	}
	if token != "" {
		req.Header.Set("Tegata-Report-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", feed.ReportsPath, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp.StatusCode, pw, bufio.NewReader(resp.Body)
}

func TestServeReports(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{Epoch: "e1"})
	srv := serve(t, positionMux(hub))
	tok := namedStream(t, srv.URL, "v1") // bound 1s
	header := "id=v1&stale_after_ms=1000&epoch=e1"
	refusals := []struct {
		name, header, token string
		status              int
	}{
		{"no header", "", tok, http.StatusBadRequest},
		{"bad bound", "id=v1&stale_after_ms=0&epoch=e1", tok, http.StatusBadRequest},
		{"other epoch", "id=v1&stale_after_ms=1000&epoch=e2", tok, http.StatusConflict},
		{"wrong token", header, "nope", http.StatusConflict},
		{"no record", "id=v9&stale_after_ms=1000&epoch=e1", "", http.StatusConflict},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			if status, _, _ := reportStream(t, srv.URL, tt.header, tt.token); status != tt.status {
				t.Errorf("report stream with %s = %d, want %d", tt.name, status, tt.status)
			}
		})
	}
	status, w, r := reportStream(t, srv.URL, header, tok)
	if status != http.StatusOK {
		t.Fatalf("report stream = %d, want 200", status)
	}
	exchange := func(line, want string) {
		t.Helper()
		if _, err := io.WriteString(w, line); err != nil {
			t.Fatal(err)
		}
		got, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(got, want) {
			t.Fatalf("answer to %q = %q, %v, want it to start %q", line, got, err, want)
		}
	}
	exchange("1 2 1\n", "1 3 1000\n")
	// A report numbered 0 wants no answer: the next answer is the next
	// report's, and the record has the position.
	if _, err := io.WriteString(w, "0 1 0\n"); err != nil {
		t.Fatal(err)
	}
	exchange("2 99 1\n", "2 3 1000\n") // a position beyond the head is taken as the head
	if f, _ := followerAt(hub, "v1"); f.Position != 3 || !f.Ready {
		t.Errorf("record after reporting 99 = %+v, want position 3 (the head), ready", f)
	}
	exchange("3 x 1\n", "! invalid_request ")
	if _, err := r.ReadString('\n'); err != io.EOF {
		t.Errorf("after a refusal: read %v, want the stream ended (EOF)", err)
	}
}

// TestAskAnsweredWithoutAnswer: a client that holds a lease answers an
// ask with a report that wants no answer (numbered 0) on its report
// stream; the hub records the position all the same.
func TestAskAnsweredWithoutAnswer(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	var lines lineLog
	srv := serve(t, lines.wrap(positionMux(hub)))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "v1 current, on its report stream", func() bool {
		f, ok := followerAt(hub, "v1")
		return ok && f.Ready && c.State().Synced && lines.has("1 ")
	})
	hub.Ask(3)
	log.appendN(1, live)
	waitFor(t, "v1's report of 3 after the ask", func() bool {
		f, _ := followerAt(hub, "v1")
		return f.Position == 3
	})
	waitFor(t, "the report line \"0 3 1\"", func() bool { return lines.has("0 3 1\n") })
}

// lineLog keeps what clients write on their report streams.
type lineLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *lineLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			r.Body = struct {
				io.Reader
				io.Closer
			}{io.TeeReader(r.Body, l), r.Body}
		}
		h.ServeHTTP(w, r)
	})
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineLog) has(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Contains(l.buf.String(), s)
}

// TestNoHeartbeatsWhileAnswersCome: a follower that says it hears from
// the hub by its report answers (hears=reports) gets no periodic
// heartbeat while its report stream is open, and gets them again once
// that closes; one that does not say so gets them throughout.
func TestNoHeartbeatsWhileAnswersCome(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		hears string
		quiet bool
	}{
		{"hears by reports", "&hears=reports", true},
		{"hears by heartbeats", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := newMemLog()
			log.appendN(2, live)
			// On a running clock each heartbeat says when its tick was, so
			// that those of ticks after the report stream opened are told
			// from those the reader had not read yet when it opened.
			const tick = 10 * time.Millisecond
			hub := startHub(t, log, feed.HubConfig{Heartbeat: tick, Epoch: "e1", Clock: testtime.NewRunning()})
			srv := serve(t, positionMux(hub))
			// A bound of 40ms: a heartbeat due every tick.
			header := "id=q&stale_after_ms=40&epoch=e1" + tt.hears
			resp, d := open(t, srv.URL+feed.Path+"?after=2", map[string]string{"Tegata-Verifier": header})
			var (
				beats, late atomic.Int64
				opened      atomic.Int64 // unix ms; 0 until the report stream opened
			)
			go func() {
				for {
					ev, err := d.Next()
					if err != nil {
						return
					}
					if ev.Type != feed.EventHeartbeat {
						continue
					}
					beats.Add(1)
					var hb struct{ Time int64 }
					if json.Unmarshal(ev.Data, &hb) == nil && opened.Load() != 0 && hb.Time > opened.Load()+tick.Milliseconds() {
						late.Add(1)
					}
				}
			}()
			waitFor(t, "the first heartbeat", func() bool { return beats.Load() >= 1 })
			status, w, _ := reportStream(t, srv.URL, header, resp.Header.Get("Tegata-Report-Token"))
			if status != http.StatusOK {
				t.Fatalf("report stream = %d, want 200", status)
			}
			opened.Store(time.Now().UnixMilli())
			b0 := hub.Beats()
			waitFor(t, "20 ticks", func() bool { return hub.Beats() >= b0+20 })
			if tt.quiet {
				if n := late.Load(); n > 0 {
					t.Fatalf("%d heartbeats of ticks after the report stream opened, want none", n)
				}
			} else {
				waitFor(t, "heartbeats of ticks after the report stream opened", func() bool { return late.Load() >= 5 })
			}
			w.(io.Closer).Close()
			n1 := beats.Load()
			waitFor(t, "heartbeats once the report stream closed", func() bool { return beats.Load() >= n1+3 })
		})
	}
}

// TestReportAnswersKeepTheStreamOpen: a named client whose hub sends no
// heartbeats (its report stream is open) counts its lease renewals'
// answers as hearing from the hub, and keeps its one stream past many
// idle timeouts: eight renewals 500ms apart span four seconds, over two
// and a half idle timeouts of 1.5s. Not parallel, so that the second of
// margin holds on a loaded machine.
func TestReportAnswersKeepTheStreamOpen(t *testing.T) {
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 10 * time.Millisecond})
	var streams atomic.Int32
	var lines lineLog
	mux := positionMux(hub)
	srv := serve(t, lines.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.Path {
			streams.Add(1)
		}
		mux.ServeHTTP(w, r)
	})))
	// Renewals every 500ms (half the bound), an idle timeout of 1.5s, and
	// no heartbeat while the report stream is open.
	c := &feed.Client{URLs: []string{srv.URL}, IdleTimeout: 1500 * time.Millisecond,
		Follower: &feed.Follower{ID: "v1", StaleAfter: time.Second}}
	startClient(t, c)
	waitFor(t, "eight reports on the report stream", func() bool { return lines.has("8 2 1\n") })
	if n := streams.Load(); n != 1 {
		t.Errorf("%d feed streams over eight reports, want 1: the answers kept it open", n)
	}
}

// TestRunEndsWithItsReporter: a stream's reporter, waiting for the answer
// to a report, ends with the stream: once Run has returned, nothing of the
// client runs (or logs into a test that has ended). Not parallel: it looks
// for reporters among all the binary's goroutines, and no parallel test
// runs while a sequential one does.
func TestRunEndsWithItsReporter(t *testing.T) {
	hub := startHub(t, newMemLog(), feed.HubConfig{})
	mux := positionMux(hub)
	sent := make(chan struct{})
	var once sync.Once
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != feed.ReportsPath {
			mux.ServeHTTP(w, r)
			return
		}
		// The report stream opens and takes a report, whose answer never
		// comes.
		http.NewResponseController(w).EnableFullDuplex()
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		br := bufio.NewReader(r.Body)
		if _, err := br.ReadString('\n'); err == nil {
			once.Do(func() { close(sent) })
		}
		io.Copy(io.Discard, br) // until the client goes away
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Logger: testLogger(),
		Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	rec := &recorder{}
	c.Apply, c.Reset = rec.apply, rec.reset
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	select {
	case <-sent:
	case <-time.After(testtime.Scale(20 * time.Second)):
		cancel()
		t.Fatal("no report reached the report stream")
	}
	cancel()
	<-done
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "feed.(*reporter).run") {
		t.Fatalf("a reporter still runs after Run returned:\n%s", stacks)
	}
}

// TestConnectReportsOnce: a follower that connects reports once, ready as
// soon as it has caught up: the lease its answer grants is no change of
// readiness to report in a second round trip.
func TestConnectReportsOnce(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Second})
	var lines lineLog
	var posts atomic.Int32
	srv := serve(t, countPosts(lines.wrap(positionMux(hub)), &posts))
	c := &feed.Client{URLs: []string{srv.URL}, Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "v1 current, and ready on the hub", func() bool {
		f, ok := followerAt(hub, "v1")
		st := c.State()
		return ok && f.Ready && st.Synced && time.Now().Before(st.FreshUntil)
	})
	lines.mu.Lock()
	got := lines.buf.String()
	lines.mu.Unlock()
	// The first report goes on the report stream, or as a request of its
	// own when the report stream's 200 is slow to come (a loaded machine).
	if n := posts.Load(); (got != "1 2 1\n" || n != 0) && (got != "" || n != 1) {
		t.Errorf("report lines %q and %d single reports, want one report: the line \"1 2 1\" or one request", got, n)
	}
}

// TestFailedFirstReportBacksOff: a stream's first report that fails is
// retried on the backoff, not at every event the stream brings: fifty
// revocations arriving one by one while every report fails bring a
// handful of retries, not fifty reports.
func TestFailedFirstReportBacksOff(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: time.Second})
	var posts atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case feed.PositionPath:
			posts.Add(1)
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case feed.ReportsPath:
			http.NotFound(w, r)
		default:
			hub.ServeHTTP(w, r)
		}
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "v1 synced", func() bool { return c.State().Synced })
	// One revocation every 10 ms, slower than reports may go (5 ms apart),
	// faster than the retries' backoff (at least 50 ms after a failure).
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for i := range 50 {
		<-tick.C
		log.appendN(1, live)
		waitPosition(t, c, int64(3+i))
	}
	allowed := int32(time.Since(start)/(50*time.Millisecond)) + 2
	if n := posts.Load(); n > allowed {
		t.Errorf("%d reports over 50 revocations in %v while every report failed, want at most %d (the retries' backoff)", n, time.Since(start), allowed)
	}
}

// heldBeats passes a feed stream on up to its first heartbeat and holds
// the rest back until release is closed: a first catch-up that lasts as
// long as a test wants.
type heldBeats struct {
	http.ResponseWriter
	release <-chan struct{}
	done    <-chan struct{}
	passed  bool
}

func (w *heldBeats) Write(p []byte) (int, error) {
	i := bytes.Index(p, []byte("event: heartbeat"))
	if w.passed || i < 0 {
		return w.ResponseWriter.Write(p)
	}
	start := 0 // the heartbeat event's first line
	if j := bytes.LastIndex(p[:i], []byte("\n\n")); j >= 0 {
		start = j + 2
	}
	n, err := w.ResponseWriter.Write(p[:start])
	if err != nil {
		return n, err
	}
	w.Flush()
	select {
	case <-w.release:
	case <-w.done:
		return n, errors.New("held stream: the request ended")
	}
	w.passed = true
	m, err := w.ResponseWriter.Write(p[start:])
	return n + m, err
}

func (w *heldBeats) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// heldBeats has no Unwrap: the hub cannot take the connection over from it
// and writes the stream through it.

// TestSlowCatchUpReportsNotReady: a client whose first catch-up outlasts
// half its bound reports then, not ready, so that the node keeps its
// record (it drops a follower silent for its bound); once caught up it
// reports ready and gets its lease on the same stream.
func TestSlowCatchUpReportsNotReady(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{})
	mux := positionMux(hub)
	release := make(chan struct{})
	var streams atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.Path {
			streams.Add(1)
			w = &heldBeats{ResponseWriter: w, release: release, done: r.Context().Done()}
		}
		mux.ServeHTTP(w, r)
	}))
	clk := stopped()
	c := &feed.Client{URLs: []string{srv.URL}, Clock: clk, Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "the entries applied, the heartbeat held", func() bool { return c.State().Position == 3 })
	// The renewal's timer, armed when the stream opened for half the
	// bound, is the only one on the client's clock.
	testtime.EventuallyTrue(t, 5*time.Second, "a timer armed for half the bound after the stream opened", func() bool { return clk.Timers() == 1 })
	if f, _ := followerAt(hub, "v1"); f.Position != 0 || c.State().Synced {
		t.Fatalf("before half the bound: the hub's record %+v, synced %v; want position 0 (no report while catching up), not synced", f, c.State().Synced)
	}
	clk.Add(30 * time.Second)
	waitFor(t, "a report of position 3, not ready, half the bound after the stream opened", func() bool {
		f, ok := followerAt(hub, "v1")
		return ok && f.Position == 3 && !f.Ready
	})
	close(release)
	waitFor(t, "v1 ready on the hub, with a lease", func() bool {
		f, _ := followerAt(hub, "v1")
		return f.Ready && !c.State().FreshUntil.IsZero()
	})
	if n := streams.Load(); n != 1 {
		t.Errorf("%d streams opened, want 1", n)
	}
}
