package feed_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
)

func TestClientFollowsLive(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(5, live)
	var auth atomic.Value
	hub := startHub(t, log, feed.HubConfig{})
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Authorization"))
		hub.ServeHTTP(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL + "/"}, APIKey: "k1", Clock: stopped()}
	rec := startClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitSynced(ctx); err != nil {
		t.Fatalf("WaitSynced() = %v, want nil", err)
	}
	log.appendN(5, live)
	waitPosition(t, c, 10)
	checkSeqs(t, "client", rec.applied(), 10)
	st := c.State()
	want := feed.State{Position: 10, Head: 10, LastHeard: t0, Synced: true, Source: srv.URL + "/", Connected: true, Opened: true,
		Epoch: hub.Epoch()}
	if st != want {
		t.Errorf("State() = %+v, want %+v", st, want)
	}
	if got := auth.Load(); got != "Bearer k1" {
		t.Errorf("Authorization = %q, want %q", got, "Bearer k1")
	}
}

func TestClientConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		c    *feed.Client
	}{
		{"no URLs", &feed.Client{Apply: func(revocation.Entry) error { return nil }}},
		{"no Apply", &feed.Client{URLs: []string{"http://127.0.0.1:1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Run(context.Background()); !errors.Is(err, feed.ErrClientConfig) {
				t.Errorf("Run() = %v, want ErrClientConfig", err)
			}
		})
	}
}

func TestClientResumesAfterCut(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(500, live) // before the hub starts: all read in catch-up
	var streams atomic.Int64
	hub := startHub(t, log, feed.HubConfig{BatchSize: 7})
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		streams.Add(1)
		hub.ServeHTTP(w, r)
	})
	srv := serveOn(t, counted, &conns{cutAfter: 1000})
	c := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, c)
	waitPosition(t, c, 500)
	log.appendN(100, live) // live, cut as well
	waitPosition(t, c, 600)
	checkSeqs(t, "client", rec.applied(), 600)
	if n := streams.Load(); n < 12 {
		t.Errorf("%d connections, want the stream cut at least 12 times", n)
	}
}

func TestClientFailover(t *testing.T) {
	t.Parallel()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	hang := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	denied := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
	}))
	tests := []struct {
		name  string
		first string
	}{
		{"first down", down.URL},
		{"first silent", hang.URL},
		{"first refuses", denied.URL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := newMemLog()
			log.appendN(20, live)
			srv := serve(t, startHub(t, log, feed.HubConfig{}))
			c := &feed.Client{URLs: []string{tt.first, srv.URL}, IdleTimeout: 200 * time.Millisecond}
			rec := startClient(t, c)
			waitPosition(t, c, 20)
			checkSeqs(t, "client", rec.applied(), 20)
			if st := c.State(); st.Source != srv.URL {
				t.Errorf("State().Source = %q, want %q", st.Source, srv.URL)
			}
		})
	}
}

// switchable serves whichever handler was set last.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) set(h http.Handler) { s.h.Store(&h) }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

func TestClientResetOnOtherLog(t *testing.T) {
	t.Parallel()
	logA, logB := newMemLog(), newMemLog()
	logA.appendN(50, live)
	logB.appendN(10, live)
	var sw switchable
	sw.set(startHub(t, logA, feed.HubConfig{}))
	hubB := startHub(t, logB, feed.HubConfig{})
	srv := serve(t, &sw)
	c := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, c)
	waitPosition(t, c, 50)

	sw.set(hubB)
	srv.CloseClientConnections()
	waitFor(t, "a reset", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.resets == 1
	})
	waitPosition(t, c, 10)
	checkSeqs(t, "client after reset", rec.applied(), 10)
}

func TestClientResetOnRestoredLog(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(50, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	c := &feed.Client{URLs: []string{srv.URL}}
	rec := startClient(t, c)
	waitPosition(t, c, 50)
	log.replace(10, live) // the hub sees the head go back and drops streams
	waitFor(t, "a reset", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		return rec.resets == 1
	})
	waitPosition(t, c, 10)
	checkSeqs(t, "client after reset", rec.applied(), 10)
}

// TestClientUnsyncedBeforeReset: when Reset runs, State already says the
// client is not synced and holds nothing, so a consumer judging freshness by
// State never calls its cleared state current.
func TestClientUnsyncedBeforeReset(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(50, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	rec := &recorder{}
	c := &feed.Client{URLs: []string{srv.URL}, Apply: rec.apply}
	var mu sync.Mutex
	var during []feed.State
	c.Reset = func() {
		st := c.State()
		mu.Lock()
		during = append(during, st)
		mu.Unlock()
		rec.reset()
	}
	startClientWith(t, c)
	waitPosition(t, c, 50)
	log.replace(10, live)
	waitPosition(t, c, 10)
	mu.Lock()
	defer mu.Unlock()
	if len(during) != 1 || during[0].Synced || during[0].Position != 0 {
		t.Fatalf("State during Reset = %+v, want one call seeing Synced false and Position 0", during)
	}
}

func TestClientApplyErrorPauses(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(20, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	rec := &recorder{failSeq: 5, failLeft: 3}
	c := &feed.Client{URLs: []string{srv.URL}, Apply: rec.apply}
	c.Reset = rec.reset
	startClientWith(t, c)
	waitPosition(t, c, 20)
	checkSeqs(t, "client", rec.applied(), 20)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.attempts[5] != 4 || rec.attempts[4] != 1 || rec.attempts[6] != 1 {
		t.Errorf("Apply attempts for 4, 5, 6 = %d, %d, %d, want 1, 4, 1", rec.attempts[4], rec.attempts[5], rec.attempts[6])
	}
}

func TestClientApplyErrorShowsInState(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	c := &feed.Client{URLs: []string{srv.URL}, Apply: func(e revocation.Entry) error {
		if e.Seq == 2 {
			return revocation.ErrFull
		}
		return nil
	}}
	startClientWith(t, c)
	waitFor(t, "the error in State", func() bool {
		st := c.State()
		return strings.Contains(st.Err, revocation.ErrFull.Error()) && st.Position == 1 && !st.Synced
	})
}

func TestManyEntriesThreeClients(t *testing.T) {
	t.Parallel()
	n := 100_000
	if testtime.Race {
		n = 30_000 // the race detector slows every access down; the interleavings are the same
	}
	log := newMemLog()
	log.appendN(20_000, live) // caught up from the Source
	srv := serve(t, startHub(t, log, feed.HubConfig{}))
	var clients []*feed.Client
	var recs []*recorder
	for range 3 {
		c := &feed.Client{URLs: []string{srv.URL}}
		recs = append(recs, startClient(t, c))
		clients = append(clients, c)
	}
	for range (n - 20_000) / 1000 { // the rest arrives live, in bursts
		log.appendN(1000, live)
	}
	for i, c := range clients {
		waitPosition(t, c, int64(n))
		checkSeqs(t, "client", recs[i].applied(), n)
	}
}

// TestClientWaitOpened: WaitOpened tells a key every authority refuses
// (permanent) from an authority that is not up yet (transient).
func TestClientWaitOpened(t *testing.T) {
	t.Parallel()
	denied := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"invalid_token","error_description":"invalid API key"}`, http.StatusUnauthorized)
	}))
	forbidden := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"insufficient_scope"}`, http.StatusForbidden)
	}))
	c := &feed.Client{URLs: []string{denied.URL, forbidden.URL}, RetryMin: time.Millisecond, RetryMax: time.Millisecond}
	startClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.WaitOpened(ctx)
	if !errors.Is(err, feed.ErrRefused) || !strings.Contains(err.Error(), "403") && !strings.Contains(err.Error(), "401") {
		t.Fatalf("WaitOpened(every authority refuses) = %v, want ErrRefused naming the status", err)
	}

	// Down at first, then up: WaitOpened waits, and the role header is kept.
	// The caller's context ends once the client has had a 503 and tried
	// again (so it has recorded the first): WaitOpened returns the
	// context's error with the last error.
	short, cancelShort := context.WithCancel(context.Background())
	defer cancelShort()
	var requests atomic.Int32
	var sw switchable
	sw.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 2 {
			cancelShort()
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	srv := serve(t, &sw)
	c = &feed.Client{URLs: []string{srv.URL}, RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond}
	startClient(t, c)
	if err := c.WaitOpened(short); !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "503") {
		t.Fatalf("WaitOpened(authority answering 503) = %v, want the caller's context ended, with the last error", err)
	}
	hub := startHub(t, newMemLog(), feed.HubConfig{})
	sw.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(feed.KeyRoleHeader, "admin")
		hub.ServeHTTP(w, r)
	}))
	if err := c.WaitOpened(ctx); err != nil {
		t.Fatalf("WaitOpened(authority up) = %v, want nil", err)
	}
	if st := c.State(); st.KeyRole != "admin" || st.Refusals != 0 {
		t.Errorf("State() = %+v, want KeyRole admin and no refusals", st)
	}
}

// levels records the level of every "feed: stream ended" line.
type levels struct {
	mu  sync.Mutex
	got []slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *levels) WithGroup(string) slog.Handler            { return l }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "feed: stream ended" {
		l.mu.Lock()
		l.got = append(l.got, r.Level)
		l.mu.Unlock()
	}
	return nil
}

func (l *levels) seen() []slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.got)
}

// TestClientCleanEndIsNotAWarning: the authority ends streams after a
// maximum age (and at shutdown); the client resumes, and logs that at
// Info, not as a warning every hour.
func TestClientCleanEndIsNotAWarning(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{Heartbeat: 20 * time.Millisecond})
	// Every stream is ended by the server once it has had a heartbeat's time.
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 200*time.Millisecond)
		defer cancel()
		hub.ServeHTTP(w, r.WithContext(ctx))
	}))
	rec := &levels{}
	c := &feed.Client{URLs: []string{srv.URL}, Logger: slog.New(rec)}
	startClient(t, c)
	waitFor(t, "a stream ended by the server", func() bool { return len(rec.seen()) > 0 })
	if got := rec.seen(); got[0] != slog.LevelInfo {
		t.Errorf("a healthy stream ended cleanly by the server is logged at %v, want INFO", got[0])
	}
}

// TestClientWaitsRetryAfter: a stream answered 429 with Retry-After is
// tried again no sooner than the node said, not on the backoff's first
// step (at most 100 ms).
func TestClientWaitsRetryAfter(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		tries []time.Time
	)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tries = append(tries, time.Now())
		n := len(tries)
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, `{"error":"too_many_streams"}`, http.StatusTooManyRequests)
			return
		}
		beatingStream(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL}}
	startClient(t, c)
	waitFor(t, "a stream opened", func() bool { return c.State().Synced })
	mu.Lock()
	defer mu.Unlock()
	if gap := tries[1].Sub(tries[0]); gap < time.Second {
		t.Errorf("the stream after a 429 with Retry-After: 1 was opened %v after it, want at least 1s", gap)
	}
}
