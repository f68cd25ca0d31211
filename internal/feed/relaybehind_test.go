package feed_test

import (
	"context"
	"io"
	"net/http"
	"strings"
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

// Read holds what it read while paused: a read under way when the pause
// began must not deliver what the node sends after it.
func (b pausedBody) Read(buf []byte) (int, error) {
	n, err := b.ReadCloser.Read(buf)
	b.p.wait()
	return n, err
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
	relay := feed.NewRelay(feed.RelayConfig{URLs: []string{srv.URL}, APIKey: "k", Host: "test", Heartbeat: 50 * time.Millisecond,
		HTTPClient: &http.Client{Transport: p}, Logger: testLogger()})
	rs := runRelay(t, relay, relay)
	t.Cleanup(p.unpause) // before the relay's: its client reads through p
	waitFor(t, "the relay to reach 5", func() bool { return relay.Ready() == nil && relay.Hub().Head() == 5 })
	p.pause()
	up.appendN(2, live) // the node is at 7, the relay stays at 5
	base := relay.LogSubscribers()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan string, 1)
	go func() { got <- firstEvent(ctx, rs.URL+feed.Path, "7") }()
	// Held, the stream waits on the relay's log; answered, it was not.
	var first string
	waitFor(t, "the stream to be held or answered", func() bool {
		select {
		case first = <-got:
			return true
		default:
			return relay.LogSubscribers() > base
		}
	})
	if first == "" {
		p.unpause()
		first = <-got
	}
	if !strings.HasPrefix(first, feed.EventHeartbeat+" ") {
		t.Fatalf("the first event to a follower at 7 from a relay at 5 = %s, want a heartbeat once the relay caught up (no reset)", first)
	}
}

// firstEvent opens a stream at url with the key k after pos and returns
// its first event's type and data, or what went wrong.
func firstEvent(ctx context.Context, url, pos string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Bearer k")
	req.Header.Set("Last-Event-ID", pos)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	ev, err := feed.NewDecoder(resp.Body).Next()
	if err != nil {
		return err.Error()
	}
	return ev.Type + " " + string(ev.Data)
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
