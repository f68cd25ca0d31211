package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// openStream is one feed stream held open by a test.
type openStream struct {
	status int
	body   string        // the error body when status is not 200
	token  string        // the report token the stream was given
	ended  chan struct{} // closed when the server ends the stream
	cancel context.CancelFunc
}

// openFeed opens GET /v1/feed with key and reads it in the background until
// the server ends it.
func openFeed(t *testing.T, base, key string) *openStream {
	t.Helper()
	return openFeedAs(t, base, key, "")
}

// openFeedAs is openFeed for a verifier naming itself id (none if empty),
// with a staleness bound of a minute.
func openFeedAs(t *testing.T, base, key, id string) *openStream {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(c, "GET", base+"/v1/feed", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if id != "" {
		req.Header.Set("Tegata-Verifier", "id="+id+"&stale_after_ms=60000")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /v1/feed = %v", err)
	}
	s := &openStream{status: resp.StatusCode, token: resp.Header.Get("Tegata-Report-Token"), ended: make(chan struct{}), cancel: cancel}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.body = string(b)
		close(s.ended)
		return s
	}
	go func() {
		defer close(s.ended)
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, bufio.NewReader(resp.Body))
	}()
	return s
}

// waitEnded fails unless the server ends the stream within d.
func (s *openStream) waitEnded(t *testing.T, what string, d time.Duration) {
	t.Helper()
	select {
	case <-s.ended:
	case <-time.After(d):
		t.Fatalf("%s: the stream was still open after %s", what, d)
	}
}

func (s *openStream) open() bool {
	select {
	case <-s.ended:
		return false
	default:
		return true
	}
}

// TestRevokedAPIKeyClosesFeedStreams: the feed streams a revoked API key
// opened stop receiving revocations. The revoking node closes them at once;
// every node checks the keys of its streams again periodically (here: a
// key revoked behind this node's back, as another node would); and a
// stream ends after a maximum age, so its key is checked again on
// reconnection.
func TestRevokedAPIKeyClosesFeedStreams(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	gate := createKey(t, e.admin, "gate", authority.RoleFeed)
	other := createKey(t, e.admin, "other-gate", authority.RoleFeed)
	s1, s2 := openFeed(t, e.URL, gate.Key), openFeed(t, e.URL, gate.Key)
	unrelated := openFeed(t, e.URL, other.Key)
	for _, s := range []*openStream{s1, s2, unrelated} {
		if s.status != http.StatusOK {
			t.Fatalf("GET /v1/feed = %d %s, want 200", s.status, s.body)
		}
	}
	if err := e.admin.RevokeAPIKey(ctx(t), client.APIKeyRevocation{ID: gate.ID, Reason: "leaked"}); err != nil {
		t.Fatal(err)
	}
	s1.waitEnded(t, "revoked on this node", 5*time.Second)
	s2.waitEnded(t, "revoked on this node", 5*time.Second)
	if s := openFeed(t, e.URL, gate.Key); s.status != http.StatusUnauthorized {
		t.Errorf("GET /v1/feed with the revoked key = %d, want 401", s.status)
	}
	if !unrelated.open() {
		t.Error("the stream of another key ended too")
	}

	// Revoked where this node's handler cannot see it (another node):
	// found by the periodic check, within the key cache's life plus one
	// check interval.
	if err := e.Store.RevokeAPIKey(ctx(t), other.ID, e.clock.Now(), store.Actor{By: "another node"}); err != nil {
		t.Fatal(err)
	}
	// Moving the node's clock past the key cache's life expires this
	// node's cached copy of the key and fires the stream's next check.
	e.clock.Add(authority.APIKeyCacheTTL + time.Second)
	unrelated.waitEnded(t, "revoked on another node", 5*time.Second)
	if l := e.logs.String(); !strings.Contains(l, `msg="feed stream ended" reason="the stream's API key was revoked"`) {
		t.Errorf("the server did not log why it ended the streams:\n%s", l)
	}
}

// TestFeedStreamMaxAge: every stream ends after its maximum age; the
// verifier reconnects where it was.
func TestFeedStreamMaxAge(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.FeedMaxAge = time.Minute })
	s := openFeed(t, e.URL, e.APIKey)
	if s.status != http.StatusOK {
		t.Fatalf("GET /v1/feed = %d %s, want 200", s.status, s.body)
	}
	e.clock.Add(45 * time.Second) // the jitter takes up to a quarter off
	if !s.open() {
		t.Fatal("stream ended before its maximum age (at most 1m, at least 45s, less a quarter) had passed on the node's clock")
	}
	e.clock.Add(15 * time.Second)
	s.waitEnded(t, "maximum age 1m on the node's clock", 5*time.Second)
	if l := e.logs.String(); !strings.Contains(l, `reason="the stream reached its maximum age"`) {
		t.Errorf("the server did not log why it ended the stream:\n%s", l)
	}
}

// TestFeedStreamCaps: streams (tens of KiB each) are capped per key and per
// address on each node, with a clear error past the cap; a closed stream
// frees its place.
func TestFeedStreamCaps(t *testing.T) {
	t.Parallel()
	limits := httpapi.DefaultLimits()
	limits.FeedStreamsPerKey, limits.FeedStreamsPerAddress = 2, 3
	e := start(t, func(c *server.Config) { c.Limits = &limits })
	a := createKey(t, e.admin, "gate-a", authority.RoleFeed)
	b := createKey(t, e.admin, "gate-b", authority.RoleFeed)
	var held []*openStream
	for _, key := range []string{a.Key, a.Key, b.Key} {
		s := openFeed(t, e.URL, key)
		if s.status != http.StatusOK {
			t.Fatalf("GET /v1/feed within the caps = %d %s, want 200", s.status, s.body)
		}
		held = append(held, s)
	}
	tests := []struct {
		name, key, want string
	}{
		{"a third stream of one key", a.Key, "this API key has 2 feed streams open"},
		{"a fourth stream from one address", e.APIKey, "this address has 3 feed streams open"},
	}
	for _, tt := range tests {
		s := openFeed(t, e.URL, tt.key)
		if s.status != http.StatusTooManyRequests || !strings.Contains(s.body, `"too_many_streams"`) || !strings.Contains(s.body, tt.want) {
			t.Errorf("GET /v1/feed, %s = %d %s, want 429 too_many_streams saying %q", tt.name, s.status, s.body, tt.want)
		}
	}
	held[0].cancel()
	<-held[0].ended
	eventually(t, "a closed stream frees its place", func() bool {
		s := openFeed(t, e.URL, a.Key)
		defer s.cancel()
		return s.status == http.StatusOK
	})
}

// eventually waits for cond, up to 10s (testtime.EventuallyTrue).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testtime.EventuallyTrue(t, 10*time.Second, what, cond)
}

// TestVerifierRegistryAbuse: a feed key cannot fill a node's verifier
// registry (each record kept for a day) and so hold every confirmation at
// 202: a report makes no record (only a stream does; a report without one
// gets 409 unknown_verifier), the records made from one address are
// capped, and a confirmation stays in force.
func TestVerifierRegistryAbuse(t *testing.T) {
	t.Parallel()
	limits := httpapi.DefaultLimits()
	limits.FeedStreamsPerAddress = 1 // at most 4 verifier records per address
	e := start(t, func(c *server.Config) { c.Limits = &limits })
	feedKey := createKey(t, e.admin, "feed", authority.RoleFeed)
	for i := range 20 {
		body := fmt.Sprintf(`{"id":"fake%d","stale_after_ms":86400000,"position":0,"epoch":%q}`, i, epochOf(t, e))
		status, b := postAs(t, e.URL+"/v1/feed/position", feedKey.Key, "application/json", body)
		if status != http.StatusConflict || !strings.Contains(b, `"unknown_verifier"`) {
			t.Fatalf("report of a verifier with no stream = %d %s, want 409 unknown_verifier", status, b)
		}
	}
	l, err := e.admin.Verifiers(ctx(t))
	if err != nil || len(l.Verifiers) != 0 {
		t.Fatalf("Verifiers() after reports alone = %+v, %v; want none", l.Verifiers, err)
	}
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "erin"})
	if err != nil {
		t.Fatal(err)
	}
	status, b := postAs(t, e.URL+"/v1/sessions/"+tok.SessionID+"/revoke?confirm=2s", e.APIKey, "application/json", "{}")
	if status != http.StatusOK || !strings.Contains(b, `"in_force":true`) {
		t.Fatalf("confirmed revocation after fake reports = %d %s, want 200 in force", status, b)
	}

	// Streams make records, up to 4 per address, closed or not (a record
	// outlives its stream by the verifier's bound).
	// One stream at a time: wait for the server to let go of the last.
	openOne := func(id string) *openStream {
		var s *openStream
		eventually(t, "the previous stream to be gone", func() bool {
			s = openFeedAs(t, e.URL, feedKey.Key, id)
			return !strings.Contains(s.body, "too_many_streams")
		})
		s.cancel()
		<-s.ended
		return s
	}
	for i := range 4 {
		if s := openOne(fmt.Sprint("v", i)); s.status != http.StatusOK {
			t.Fatalf("named stream %d = %d %s, want 200", i, s.status, s.body)
		}
	}
	if s := openOne("v4"); s.status != http.StatusTooManyRequests || !strings.Contains(s.body, `"too_many_verifiers"`) {
		t.Fatalf("fifth verifier from one address = %d %s, want 429 too_many_verifiers", s.status, s.body)
	}
}

// epochOf returns the cluster's epoch, as the key set answer names it.
func epochOf(t *testing.T, e *env) string {
	t.Helper()
	return epochAt(t, e.URL)
}

// epochAt returns the epoch the authority at base names.
func epochAt(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Tegata-Epoch")
}
