package feed_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
)

// upstreamRecorder is a node that answers every request 200 and records
// what reached it, the feed aside (503: the relay never catches up, which
// leaves its pass-through alone).
type upstreamRecorder struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (u *upstreamRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, feed.Path) {
		http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
		return
	}
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(r.Context()))
	u.mu.Unlock()
	_, _ = io.WriteString(w, `{}`)
}

func (u *upstreamRecorder) last() *http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.seen) == 0 {
		return nil
	}
	return u.seen[len(u.seen)-1]
}

func (u *upstreamRecorder) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

// TestRelayPassesThroughOnlyWhatVerifiersFetch: a relay passes to its node
// what a verifier fetches beside the feed (discovery, the key set,
// introspection when stale), with the caller's Authorization and nothing
// of where the request came from, and refuses the rest (sessions, the
// admin API, token refresh and revocation): a relay listening on a
// machine is no way around the node's own network policy and per-address
// limits.
func TestRelayPassesThroughOnlyWhatVerifiersFetch(t *testing.T) {
	t.Parallel()
	up := &upstreamRecorder{}
	node := serve(t, up)
	_, rs := startRelay(t, "k", node.URL)
	for _, tc := range []struct {
		name, method, path string
		pass               bool
	}{
		{"discovery", http.MethodGet, "/.well-known/openid-configuration", true},
		{"key set", http.MethodGet, "/.well-known/jwks.json", true},
		{"key set HEAD", http.MethodHead, "/.well-known/jwks.json", true},
		{"introspection", http.MethodPost, "/v1/introspect", true},
		{"session creation", http.MethodPost, "/v1/sessions", false},
		{"API keys", http.MethodGet, "/v1/apikeys", false},
		{"key rotation", http.MethodPost, "/v1/keys/rotate", false},
		{"refresh", http.MethodPost, "/v1/token/refresh", false},
		{"token revocation", http.MethodPost, "/v1/token/revoke", false},
		{"verifiers", http.MethodGet, "/v1/verifiers", false},
		{"status list", http.MethodGet, "/v1/statuslists/1", false},
		{"discovery by POST", http.MethodPost, "/.well-known/openid-configuration", false},
		{"introspection by GET", http.MethodGet, "/v1/introspect", false},
		{"the node's metrics", http.MethodGet, "/metrics", false},
	} {
		before := up.count()
		req, err := http.NewRequest(tc.method, rs.URL+tc.path, strings.NewReader("token=x"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer admin-key")
		req.Header.Set("Cookie", "session=browser")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		passed := up.count() > before
		switch {
		case tc.pass && (!passed || resp.StatusCode != http.StatusOK):
			t.Errorf("%s %s through the relay: status %d, reached the node %v; want 200 from the node", tc.method, tc.path, resp.StatusCode, passed)
		case !tc.pass && passed:
			t.Errorf("%s %s through the relay reached the node (status %d), want it refused by the relay", tc.method, tc.path, resp.StatusCode)
		case !tc.pass && (resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed ||
			!strings.Contains(string(body), `"error"`)):
			t.Errorf("%s %s through the relay = %d %s, want 404 or 405 with a JSON error", tc.method, tc.path, resp.StatusCode, body)
		}
		if !tc.pass || !passed {
			continue
		}
		got := up.last()
		if got.Header.Get("Authorization") != "Bearer admin-key" {
			t.Errorf("%s: the node got Authorization %q, want the caller's", tc.name, got.Header.Get("Authorization"))
		}
		for _, h := range []string{"Cookie", "X-Forwarded-For", "Forwarded"} {
			if v := got.Header.Get(h); v != "" {
				t.Errorf("%s: the node got %s: %q, want none", tc.name, h, v)
			}
		}
	}
}

// TestRelayPassThroughCapped: the requests a relay passes to its node at
// once are capped (they leave from the relay's address, as its own feed
// stream does, and a node caps the connections per address); one over
// the cap is refused with 503 and Retry-After, and a slot freed serves
// again.
func TestRelayPassThroughCapped(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	var mu sync.Mutex
	inside := 0
	node := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, feed.Path) {
			http.Error(w, `{"error":"temporarily_unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		inside++
		mu.Unlock()
		<-release
		_, _ = io.WriteString(w, `{}`)
	}))
	t.Cleanup(free) // before the node's: its handlers must return
	_, rs := startRelay(t, "k", node.URL)
	// Over the cap, a request the relay let through would wait on the
	// node as long as the others: it gives up after a while instead.
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func() (int, string) {
		resp, err := hc.Get(rs.URL + "/.well-known/jwks.json")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	const capped = 32
	done := make(chan int, capped)
	for range capped {
		go func() {
			code, _ := get()
			done <- code
		}()
	}
	waitFor(t, "the capped requests to reach the node", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return inside == capped
	})
	if code, retry := get(); code != http.StatusServiceUnavailable || retry == "" {
		t.Fatalf("a request over the cap = %d (Retry-After %q), want 503 with Retry-After", code, retry)
	}
	free()
	for range capped {
		if code := <-done; code != http.StatusOK {
			t.Errorf("a request within the cap = %d, want 200", code)
		}
	}
	if code, _ := get(); code != http.StatusOK {
		t.Fatalf("a request once the slots are free = %d, want 200", code)
	}
}
