package feed_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// nodesSeen records what a Client's OnNodes was called with.
type nodesSeen struct {
	mu   sync.Mutex
	last []string
}

func (n *nodesSeen) set(urls []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.last = slices.Clone(urls)
}

func (n *nodesSeen) get() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.last
}

// TestClientFollowsAdvertisedNodes: a client given one seed follows the
// nodes the seed advertises, moves to them when the seed goes, and keeps
// the seed in its list whatever the advertisement says.
func TestClientFollowsAdvertisedNodes(t *testing.T) {
	t.Parallel()
	log := newMemLog()
	log.appendN(20, live)
	seedHub := startHub(t, log, feed.HubConfig{Epoch: "e1", Issuer: "https://auth.test"})
	otherHub := startHub(t, log, feed.HubConfig{Epoch: "e1", Issuer: "https://auth.test"})
	var seed switchable
	seed.set(seedHub)
	seedSrv, other := serve(t, &seed), serve(t, otherHub)
	seen := &nodesSeen{}
	c := &feed.Client{URLs: []string{seedSrv.URL}, Issuer: "https://auth.test", OnNodes: seen.set,
		IdleTimeout: 300 * time.Millisecond}
	rec := startClient(t, c)
	waitPosition(t, c, 20)

	seedHub.SetNodes([]string{other.URL + "/", "not a url", seedSrv.URL})
	want := []string{seedSrv.URL, other.URL}
	waitFor(t, "the advertised node followed", func() bool { return slices.Equal(seen.get(), want) })

	seed.set(failing{}) // the seed goes away: the client moves on
	seedSrv.CloseClientConnections()
	log.appendN(5, live)
	waitPosition(t, c, 25)
	if st := c.State(); st.Source != other.URL {
		t.Errorf("State().Source with the seed down = %q, want the advertised %q", st.Source, other.URL)
	}
	checkSeqs(t, "client", rec.applied(), 25)

	otherHub.SetNodes([]string{other.URL})
	otherHub.SetNodes(nil) // the advertised list emptied: the seed stays
	waitFor(t, "the advertised node dropped, the seed kept", func() bool {
		return slices.Equal(seen.get(), []string{seedSrv.URL})
	})
}

// TestClientRefusesForeignNodes: a node of another log (another epoch) is
// dropped, never followed into a reset; an advertisement naming another
// issuer or epoch is ignored.
func TestClientRefusesForeignNodes(t *testing.T) {
	t.Parallel()
	log, foreignLog := newMemLog(), newMemLog()
	log.appendN(20, live)
	foreignLog.appendN(3, live)
	hub := startHub(t, log, feed.HubConfig{Epoch: "e1", Issuer: "https://auth.test"})
	foreign := serve(t, startHub(t, foreignLog, feed.HubConfig{Epoch: "other", Issuer: "https://auth.test"}))
	wrongIssuer := startHub(t, log, feed.HubConfig{Epoch: "e1", Issuer: "https://evil.test"})
	srv, wrongSrv := serve(t, hub), serve(t, wrongIssuer)
	seen := &nodesSeen{}
	c := &feed.Client{URLs: []string{srv.URL, wrongSrv.URL}, Issuer: "https://auth.test", OnNodes: seen.set}
	rec := startClient(t, c)
	waitPosition(t, c, 20)

	wrongIssuer.SetNodes([]string{"https://elsewhere.test"})
	hub.SetNodes([]string{foreign.URL})
	waitFor(t, "the foreign node advertised", func() bool { return len(seen.get()) == 3 })
	waitFor(t, "the foreign node tried and dropped", func() bool {
		srv.CloseClientConnections() // move the client on until it has tried every URL
		wrongSrv.CloseClientConnections()
		return slices.Equal(seen.get(), []string{srv.URL, wrongSrv.URL})
	})
	srv.CloseClientConnections() // whichever it follows next, never the foreign log
	log.appendN(2, live)
	waitPosition(t, c, 22)
	rec.mu.Lock()
	resets := rec.resets
	rec.mu.Unlock()
	if resets != 0 || c.State().Epoch != "e1" {
		t.Errorf("after a foreign node was advertised: %d resets, epoch %q; want 0, e1", resets, c.State().Epoch)
	}
	if slices.Contains(seen.get(), "https://elsewhere.test") {
		t.Errorf("OnNodes = %v: took the nodes advertised with another issuer", seen.get())
	}
}

// failing answers every request 503, as a node that is going away.
type failing struct{}

func (failing) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
}
