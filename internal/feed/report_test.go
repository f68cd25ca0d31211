package feed_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// TestLeaseVouchesOnceHeadApplied: a report's answer makes the client
// current only once it has applied the head the answer named, however many
// heartbeats (old ones from a socket buffer, say) it reads meanwhile.
func TestLeaseVouchesOnceHeadApplied(t *testing.T) {
	t.Parallel()
	step := make(chan struct{})
	var reports atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPost {
			io.Copy(io.Discard, r.Body)
			reports.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"head":3,"lease_ms":10000,"epoch":"e1"}`)
			return
		}
		w.Header().Set("Tegata-Epoch", "e1")
		w.Header().Set("Content-Type", "text/event-stream")
		send := func(s string) { io.WriteString(w, s); w.(http.Flusher).Flush() }
		send("id: 0\nevent: heartbeat\ndata: {\"head\":0,\"time\":1,\"epoch\":\"e1\"}\n\n")
		select {
		case <-step:
		case <-r.Context().Done():
			return
		}
		send("id: 0\nevent: heartbeat\ndata: {\"head\":0,\"time\":2,\"epoch\":\"e1\"}\n\n" +
			revocationsEvent(1, 2, 3) + "id: 3\nevent: heartbeat\ndata: {\"head\":3,\"time\":3,\"epoch\":\"e1\"}\n\n")
		<-r.Context().Done()
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "the first report", func() bool { return reports.Load() >= 1 })
	if st := c.State(); !st.FreshUntil.IsZero() {
		t.Fatalf("at position 0 with a lease naming head 3: FreshUntil = %v, want zero", st.FreshUntil)
	}
	step <- struct{}{}
	waitFor(t, "FreshUntil once 1..3 are applied", func() bool { return c.State().FreshUntil.Equal(t0.Add(10 * time.Second)) })
}

// revocationsEvent is a revocations event of the session entries seqs, as
// memLog.appendN makes them.
func revocationsEvent(seqs ...int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "id: %d\nevent: revocations\n", seqs[len(seqs)-1])
	for _, seq := range seqs {
		fmt.Fprintf(&b, "data: %d session %d %d 0 %s\n", seq, live.Add(-time.Hour).UnixMicro(), live.UnixMicro(), sidOf(seq))
	}
	return b.String() + "\n"
}

// positionMux serves a hub's feed and position report routes.
func positionMux(hub *feed.Hub) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET "+feed.Path, hub)
	mux.HandleFunc("POST "+feed.PositionPath, hub.ServePosition)
	mux.HandleFunc("POST "+feed.ReportsPath, hub.ServeReports)
	return mux
}

// TestLeaseCutShortByLicense: a hub grants no lease beyond its license,
// and none once it has passed.
func TestLeaseCutShortByLicense(t *testing.T) {
	t.Parallel()
	var license atomic.Pointer[time.Time]
	until := t0.Add(2 * time.Second)
	license.Store(&until)
	log := newMemLog()
	log.appendN(2, live)
	hub := startHub(t, log, feed.HubConfig{License: func() time.Time { return *license.Load() }})
	srv := serve(t, positionMux(hub))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "a lease", func() bool { return !c.State().FreshUntil.IsZero() })
	if got := c.State().FreshUntil; !got.Equal(until) {
		t.Fatalf("FreshUntil = %v, want the license's end %v", got, until)
	}
	// The follower is known, with what it reported (once the lease made it
	// current, it reports again: its readiness changed).
	waitFor(t, "v1 at 2, ready", func() bool {
		fs := hub.Followers()
		return len(fs) == 1 && fs[0].ID == "v1" && fs[0].Position == 2 && fs[0].Ready && fs[0].StaleAfter == 10*time.Second
	})

	tok := namedStream(t, srv.URL, "v2")
	expired := t0.Add(-time.Second)
	license.Store(&expired)
	status, body := postReport(t, srv.URL, map[string]any{"id": "v2", "stale_after_ms": 1000, "position": 2, "epoch": hub.Epoch(), "token": tok})
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "temporarily_unavailable") {
		t.Fatalf("report with the license expired = %d %s, want 503", status, body)
	}
}

// namedStream opens a feed stream as verifier id (bound 1s), which makes
// its record, and returns the record's report token.
func namedStream(t *testing.T, base, id string) string {
	t.Helper()
	resp, _ := open(t, base+feed.Path, map[string]string{"Tegata-Verifier": "id=" + id + "&stale_after_ms=1000"})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Tegata-Report-Token") == "" {
		t.Fatalf("named stream %s = %s, want 200 with a report token", id, resp.Status)
	}
	return resp.Header.Get("Tegata-Report-Token")
}

func postReport(t *testing.T, base string, body any) (int, string) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(base+feed.PositionPath, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func TestServePositionBadInput(t *testing.T) {
	t.Parallel()
	hub := startHub(t, newMemLog(), feed.HubConfig{Epoch: "e1"})
	srv := serve(t, positionMux(hub))
	tok := namedStream(t, srv.URL, "probe") // waits for the hub to start
	if s, body := postReport(t, srv.URL, map[string]any{"id": "probe", "stale_after_ms": 1000, "epoch": "e1", "token": tok}); s != http.StatusOK {
		t.Fatalf("report of probe with its token = %d %s, want 200", s, body)
	}
	tests := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"not JSON", "{", 400, "invalid_request"},
		{"no id", map[string]any{"stale_after_ms": 1000, "epoch": "e1"}, 400, "invalid_request"},
		{"bad id", map[string]any{"id": "a/b", "stale_after_ms": 1000, "epoch": "e1"}, 400, "invalid_request"},
		{"no bound", map[string]any{"id": "a", "epoch": "e1"}, 400, "invalid_request"},
		{"negative position", map[string]any{"id": "a", "stale_after_ms": 1000, "position": -1, "epoch": "e1"}, 400, "invalid_request"},
		{"bound too long", map[string]any{"id": "a", "stale_after_ms": 25 * 3600 * 1000, "epoch": "e1"}, 400, "invalid_request"},
		{"other epoch", map[string]any{"id": "a", "stale_after_ms": 1000, "epoch": "e2"}, 409, "conflict"},
		{"another verifier's id", map[string]any{"id": "probe", "stale_after_ms": 1000, "position": 99, "epoch": "e1"}, 409, "verifier_id_taken"},
		{"no stream opened", map[string]any{"id": "ghost", "stale_after_ms": 1000, "position": 99, "epoch": "e1"}, 409, "unknown_verifier"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status int
			var body string
			if s, ok := tt.body.(string); ok {
				resp, err := http.Post(srv.URL+feed.PositionPath, "application/json", strings.NewReader(s))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				status, body = resp.StatusCode, string(b)
			} else {
				status, body = postReport(t, srv.URL, tt.body)
			}
			if status != tt.status || !strings.Contains(body, `"error":"`+tt.code) {
				t.Errorf("report %s = %d %s, want %d %s", tt.name, status, body, tt.status, tt.code)
			}
		})
	}
	for _, f := range hub.Followers() {
		if f.ID != "probe" || f.Position != 0 {
			t.Errorf("after refused reports: follower %+v, want probe at 0 only", f)
		}
	}
}

// TestEpochChangeResetsClient: a client whose authority comes to serve a
// log with another epoch starts over from the first entry, even though the
// new log's head is past its position (where a reset event would not come).
func TestEpochChangeResetsClient(t *testing.T) {
	t.Parallel()
	logA, logB := newMemLog(), newMemLog()
	logA.appendN(3, live)
	logB.appendN(5, live)
	hubA := startHub(t, logA, feed.HubConfig{Epoch: "epoch-a"})
	hubB := startHub(t, logB, feed.HubConfig{Epoch: "epoch-b"})
	var cur atomic.Pointer[http.Handler]
	a, b := positionMux(hubA), positionMux(hubB)
	cur.Store(&a)
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*cur.Load()).ServeHTTP(w, r) }))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	rec := startClient(t, c)
	waitPosition(t, c, 3)
	cur.Store(&b)
	srv.CloseClientConnections()
	waitFor(t, "the replay of log B", func() bool {
		st := c.State()
		return st.Epoch == "epoch-b" && st.Position == 5 && st.Synced
	})
	checkSeqs(t, "client after the epoch change", rec.applied(), 5)
	rec.mu.Lock()
	resets := rec.resets
	rec.mu.Unlock()
	if resets != 1 {
		t.Errorf("resets = %d, want 1", resets)
	}
}

// stubStream answers a feed request as a server of epoch e1 that has
// nothing: a heartbeat at 0, then silence until the client goes away.
func stubStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Tegata-Epoch", "e1")
	w.Header().Set("Tegata-Report-Token", "tok")
	w.Header().Set("Content-Type", "text/event-stream")
	io.WriteString(w, "id: 0\nevent: heartbeat\ndata: {\"head\":0,\"time\":1,\"epoch\":\"e1\"}\n\n")
	w.(http.Flusher).Flush()
	<-r.Context().Done()
}

// beatingStream is stubStream with a heartbeat every 5ms.
func beatingStream(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Tegata-Epoch", "e1")
	w.Header().Set("Tegata-Report-Token", "tok")
	w.Header().Set("Content-Type", "text/event-stream")
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		io.WriteString(w, "id: 0\nevent: heartbeat\ndata: {\"head\":0,\"time\":1,\"epoch\":\"e1\"}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
		}
	}
}

// answerReport answers a position report as a node with no record of the
// verifier (409 unknown_verifier) or with a lease of leaseMS.
func answerReport(w http.ResponseWriter, r *http.Request, unknown bool, leaseMS int) {
	io.Copy(io.Discard, r.Body)
	if unknown {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		io.WriteString(w, `{"error":"unknown_verifier","error_description":"open a feed stream first"}`)
		return
	}
	fmt.Fprintf(w, `{"head":0,"lease_ms":%d,"epoch":"e1","token":"tok"}`, leaseMS)
}

// TestUnknownVerifierReconnects: a node that has no record of the
// verifier (only a stream makes one) answers its report 409
// unknown_verifier; once no report has been taken for half its staleness
// bound, the client opens its stream again, which makes it.
func TestUnknownVerifierReconnects(t *testing.T) {
	t.Parallel()
	var streams, reports atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			http.NotFound(w, r) // no report stream: one request per report
			return
		}
		if r.Method == http.MethodPost {
			reports.Add(1)
			answerReport(w, r, streams.Load() < 2, 10000) // no record until the stream is opened again
			return
		}
		streams.Add(1)
		beatingStream(w, r)
	}))
	// A real clock: the client waits half the bound without an accepted
	// report before it believes the node.
	c := &feed.Client{URLs: []string{srv.URL}, Follower: &feed.Follower{ID: "v1", StaleAfter: 200 * time.Millisecond}}
	startClient(t, c)
	waitFor(t, "a second stream after 409 unknown_verifier", func() bool { return streams.Load() >= 2 })
	waitFor(t, "a lease from a later report", func() bool { return !c.State().FreshUntil.IsZero() })
	if id := c.State().ID; id != "v1" {
		t.Errorf("State().ID = %q, want v1 kept (nobody else holds it)", id)
	}
}

// TestBalancedNodesKeepTheStream: behind a balancer that sends each
// request to another node, the stream's node takes the reports that reach
// it and the other answers 409 unknown_verifier. The client keeps its
// stream (reconnecting would end a good stream and leave the verifier
// never current), and stays fresh.
func TestBalancedNodesKeepTheStream(t *testing.T) {
	t.Parallel()
	var streams, reports atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			http.NotFound(w, r) // no report stream: one request per report
			return
		}
		if r.Method == http.MethodPost {
			// Every other report reaches the other node; leases of 30ms make
			// the client renew every 10ms.
			answerReport(w, r, reports.Add(1)%2 == 1, 30)
			return
		}
		streams.Add(1)
		beatingStream(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "40 reports", func() bool { return reports.Load() >= 40 })
	if n := streams.Load(); n != 1 {
		t.Errorf("streams opened = %d over 40 reports half answered unknown_verifier, want 1", n)
	}
	if st := c.State(); !st.Synced || st.FreshUntil.IsZero() {
		t.Errorf("State() = %+v, want synced with a lease", st)
	}
}

// TestIDTakenRenews: a node where another verifier holds the client's id
// (the client was silent past its bound, and its id was taken) answers
// 409 verifier_id_taken; the client names itself anew and carries on.
func TestIDTakenRenews(t *testing.T) {
	t.Parallel()
	var ids sync.Map // ids that opened a stream
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == feed.ReportsPath {
			http.NotFound(w, r) // no report stream: one request per report
			return
		}
		if r.Method == http.MethodPost {
			var rep struct{ ID string }
			json.NewDecoder(r.Body).Decode(&rep)
			if rep.ID == "v1" {
				w.WriteHeader(http.StatusConflict)
				io.WriteString(w, `{"error":"verifier_id_taken"}`)
				return
			}
			io.WriteString(w, `{"head":0,"lease_ms":10000,"epoch":"e1","token":"tok"}`)
			return
		}
		q, _ := url.ParseQuery(r.Header.Get("Tegata-Verifier"))
		if q.Get("id") == "v1" {
			w.WriteHeader(http.StatusConflict)
			io.WriteString(w, `{"error":"verifier_id_taken","error_description":"in use"}`)
			return
		}
		ids.Store(q.Get("id"), true)
		stubStream(w, r)
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: 10 * time.Second}}
	startClient(t, c)
	waitFor(t, "a lease under a new id", func() bool { return !c.State().FreshUntil.IsZero() })
	id := c.State().ID
	if _, ok := ids.Load(id); !ok || id == "v1" {
		t.Errorf("State().ID = %q, want a new id that opened a stream", id)
	}
}

// TestStreamBadRequestIsPermanent: a 400 on the stream (a request the
// authority refuses, such as a staleness bound out of range) is not
// retried away: WaitOpened reports it instead of waiting for ever.
func TestStreamBadRequestIsPermanent(t *testing.T) {
	t.Parallel()
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_request","error_description":"Tegata-Verifier header: staleness bound out of range"}`)
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped()}
	startClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitOpened(ctx); !errors.Is(err, feed.ErrInvalid) || !strings.Contains(err.Error(), "out of range") {
		t.Fatalf("WaitOpened(authority answering 400) = %v, want ErrInvalid with the reason", err)
	}
}

// TestFollowerCountIsFollowers: the count a node publishes is the list it
// publishes, whichever is asked: a follower silent past its bound is in
// neither, even before Safe drops it.
func TestFollowerCountIsFollowers(t *testing.T) {
	t.Parallel()
	clk := testtime.NewClock(t0)
	hub := startHub(t, newMemLog(), feed.HubConfig{Clock: clk})
	srv := serve(t, positionMux(hub))
	namedStream(t, srv.URL, "v1") // bound 1s
	if n, l := hub.FollowerCount(), len(hub.Followers()); n != 1 || l != 1 {
		t.Fatalf("FollowerCount() = %d, len(Followers()) = %d; want 1 and 1", n, l)
	}
	clk.Add(2 * time.Second)
	if n, l := hub.FollowerCount(), len(hub.Followers()); n != 0 || l != 0 {
		t.Fatalf("2s after v1 was heard: FollowerCount() = %d, len(Followers()) = %d; want 0 and 0", n, l)
	}
}

// TestNoLeaseIsRetried: an answer that grants no lease (lease_ms 0, as a
// lease under a millisecond comes) is retried on the backoff like a failed
// report, not taken for a report sent without an answer, which would leave
// the client without a lease until the next renewal (never, on a stopped
// clock).
func TestNoLeaseIsRetried(t *testing.T) {
	t.Parallel()
	var reports atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == feed.ReportsPath:
			http.NotFound(w, r) // one request per report
		case r.Method == http.MethodPost:
			lease := 0
			if reports.Add(1) > 1 {
				lease = int(time.Minute.Milliseconds())
			}
			answerReport(w, r, false, lease)
		default:
			beatingStream(w, r)
		}
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "the lease of the report after the one that granted none", func() bool {
		return c.State().FreshUntil.Equal(t0.Add(time.Minute))
	})
	if n := reports.Load(); n != 2 {
		t.Errorf("%d reports, want 2: the one granted no lease, and its retry", n)
	}
}

// TestLeasePastADurationIsTheBound: an answer granting more milliseconds
// than a time.Duration holds is a lease for the client's bound, renewed
// half the bound on; it is not wrapped into a lease that ended before it
// began, renewed at once, again and again.
func TestLeasePastADurationIsTheBound(t *testing.T) {
	t.Parallel()
	var reports atomic.Int32
	srv := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == feed.ReportsPath:
			http.NotFound(w, r) // one request per report
		case r.Method == http.MethodPost:
			reports.Add(1)
			answerReport(w, r, false, math.MaxInt64)
		default:
			beatingStream(w, r)
		}
	}))
	c := &feed.Client{URLs: []string{srv.URL}, Clock: stopped(), Follower: &feed.Follower{ID: "v1", StaleAfter: time.Minute}}
	startClient(t, c)
	waitFor(t, "a lease for the bound", func() bool { return c.State().FreshUntil.Equal(t0.Add(time.Minute)) })
	// On the stopped clock the renewal never falls due: one report, and
	// one only, whatever else the stream brings.
	if n := reports.Load(); n != 1 {
		t.Errorf("%d reports, want 1: the lease's renewal is half a minute away", n)
	}
}
