package feed_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// pausable is a transport whose feed streams' bodies can be held: a relay
// following through it falls behind its node while paused.
type pausable struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

func (p *pausable) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused, p.resume = true, make(chan struct{})
}

func (p *pausable) unpause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused {
		p.paused = false
		close(p.resume)
	}
}

func (p *pausable) wait() {
	p.mu.Lock()
	paused, resume := p.paused, p.resume
	p.mu.Unlock()
	if paused {
		<-resume
	}
}

func (p *pausable) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil && req.URL.Path == feed.Path {
		resp.Body = pausedBody{ReadCloser: resp.Body, p: p}
	}
	return resp, err
}

type pausedBody struct {
	io.ReadCloser
	p *pausable
}

func (b pausedBody) Read(buf []byte) (int, error) {
	b.p.wait()
	return b.ReadCloser.Read(buf)
}

// TestRelayBehindHoldsAFollowerAhead: a follower comes to a relay from a
// position the relay has not reached yet (it was on a node further
// ahead, the relay lags its node): the relay waits until it has, rather
// than telling the follower it followed another log (a reset empties a
// verifier's set and keys, and it refuses every token until it has
// replayed the log).
func TestRelayBehindHoldsAFollowerAhead(t *testing.T) {
	t.Parallel()
	up := newMemLog()
	up.appendN(5, live)
	hub := startHub(t, up, feed.HubConfig{})
	srv := serve(t, keyed("k", positionMux(hub)))
	p := &pausable{}
	t.Cleanup(p.unpause)
	relay := feed.NewRelay(feed.RelayConfig{URLs: []string{srv.URL}, APIKey: "k", Host: "test", Heartbeat: 50 * time.Millisecond,
		HTTPClient: &http.Client{Transport: p}, Logger: testLogger()})
	arrived := make(chan struct{}, 1)
	rs := runRelay(t, relay, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == feed.Path {
			arrived <- struct{}{}
		}
		relay.ServeHTTP(w, req)
	}))
	waitFor(t, "the relay to reach 5", func() bool { return relay.Ready() == nil && relay.Hub().Head() == 5 })
	p.pause()
	up.appendN(2, live) // the node is at 7, the relay at 5
	got := make(chan feed.Event, 1)
	go func() {
		resp, d := open(t, rs.URL+feed.Path, map[string]string{"Authorization": "Bearer k",
			"Last-Event-ID": strconv.Itoa(7)})
		if resp.StatusCode != http.StatusOK {
			got <- feed.Event{Type: "status " + resp.Status}
			return
		}
		ev, err := d.Next()
		if err != nil {
			ev.Type = "error " + err.Error()
		}
		got <- ev
	}()
	<-arrived
	p.unpause()
	ev := <-got
	if ev.Type == feed.EventReset || ev.Type != feed.EventHeartbeat {
		t.Fatalf("the first event to a follower at 7 from a relay at 5 catching up = %q %s, want a heartbeat (no reset)", ev.Type, ev.Data)
	}
}

// runRelay runs r until the test ends and serves h.
func runRelay(t *testing.T, r *feed.Relay, h http.Handler) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Relay.Run() = %v, want nil", err)
		}
	})
	return serve(t, h)
}
