package verifier

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/testtime"
	"github.com/tegata-dev/tegata/token"
)

func TestVerifyValid(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	c := a.claims("alice")
	c.Extra = map[string]any{"roles": []any{"admin"}}
	raw := a.mint(c)
	got, err := v.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	if got.Subject() != "alice" || got.SessionID() != c.SessionID || got.ID() != c.ID {
		t.Errorf("Verify(valid) claims = %+v, want sub alice sid %s jti %s", got, c.SessionID, c.ID)
	}
	if s := v.State(); !s.Ready || s.Keys != 1 || s.Source == "" {
		t.Errorf("State() = %+v, want ready with 1 key and a source", s)
	}
	if v.cfg.Issuer != testIssuer || v.cfg.MaxLifetime != maxLifetime {
		t.Errorf("discovered issuer %q max lifetime %s, want %q %s", v.cfg.Issuer, v.cfg.MaxLifetime, testIssuer, maxLifetime)
	}
}

func TestVerifyTokenErrors(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	v := startReady(t, testConfig(t, a))
	a.mu.Lock()
	k1 := a.signing
	a.mu.Unlock()
	stranger := newSigningKey(t, "k1", token.EdDSA) // same kid, other key
	ghost := newSigningKey(t, "ghost", token.EdDSA)
	es := newSigningKey(t, "k1", token.ES256)
	now := clk.Now()
	with := func(f func(c *token.Claims)) token.Claims {
		c := a.claims("alice")
		f(&c)
		return c
	}
	header := map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"}
	headerWith := func(k string, val any) map[string]any {
		h := map[string]any{}
		for k, v := range header {
			h[k] = v
		}
		if val == nil {
			delete(h, k)
		} else {
			h[k] = val
		}
		return h
	}
	valid := payloadOf(a.claims("alice"))
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"too large", strings.Repeat("a", token.DefaultMaxSize+1), ErrTooLarge},
		{"malformed", "not.a-token", ErrMalformed},
		{"header with jku", craft(t, k1, headerWith("jku", "https://evil.test/jwks"), valid), ErrHeader},
		{"header without kid", craft(t, k1, headerWith("kid", nil), valid), ErrHeader},
		{"algorithm none", craft(t, k1, headerWith("alg", "none"), valid), ErrAlgorithm},
		{"algorithm not allowed", sign(t, es, a.claims("alice")), ErrAlgorithm},
		{"unknown key", sign(t, ghost, a.claims("alice")), ErrUnknownKey},
		{"bad signature", sign(t, stranger, a.claims("alice")), ErrSignature},
		{"type JWT", craft(t, k1, headerWith("typ", "JWT"), valid), ErrType},
		{"expired", a.mint(with(func(c *token.Claims) {
			c.IssuedAt, c.Expiry = now.Add(-10*time.Minute), now.Add(-time.Minute)
		})), ErrExpired},
		{"not yet valid", a.mint(with(func(c *token.Claims) { c.NotBefore = now.Add(time.Minute) })), ErrNotYetValid},
		{"issuer", a.mint(with(func(c *token.Claims) { c.Issuer = "https://other.test" })), ErrIssuer},
		{"audience", a.mint(with(func(c *token.Claims) { c.Audience = []string{"other-app"} })), ErrAudience},
		{"lifetime over the authority's maximum", a.mint(with(func(c *token.Claims) {
			c.Expiry = now.Add(2 * time.Hour)
		})), ErrClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.raw)
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify(%.40q) = %v, want %v", tt.raw, err, tt.want)
			}
		})
	}
}

func TestSessionRevokedOverFeed(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	c := a.claims("alice")
	raw := a.mint(c)
	other := a.mint(a.claims("alice"))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify(before revocation) = %v, want nil", err)
	}
	a.revokeSession(c.SessionID)
	eventually(t, "the revocation to reach the verifier", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return errors.Is(err, ErrRevoked)
	})
	if _, err := v.Verify(context.Background(), other); err != nil {
		t.Errorf("Verify(other session) = %v, want nil", err)
	}
}

func TestSubjectCutoffExactBySgen(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	tokens := map[int64]string{}
	for gen := int64(0); gen <= 3; gen++ {
		c := a.claims("bob")
		c.Generation = gen
		tokens[gen] = a.mint(c)
	}
	carol := a.mint(a.claims("carol"))
	e := a.revoke(revocation.Entry{Kind: revocation.KindSubject, Subject: "bob", Generation: 2})
	eventually(t, "the cutoff to be applied", func() bool { return v.State().Position >= e.Seq })
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"sgen 0, before the cutoff", tokens[0], ErrRevoked},
		{"sgen 1, just before the cutoff", tokens[1], ErrRevoked},
		{"sgen 2, the cutoff's generation", tokens[2], nil},
		{"sgen 3, after the cutoff", tokens[3], nil},
		{"other subject", carol, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.Verify(context.Background(), tt.raw); !errors.Is(err, tt.want) {
				t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

// stopFeed takes the feed down and waits until the verifier has noticed, so
// that nothing it already received can still refresh LastHeard.
func stopFeed(t *testing.T, a *authority, v *Verifier) {
	t.Helper()
	a.feedDown.Store(true)
	a.closeConns()
	eventually(t, "the feed to disconnect", func() bool { return !v.feed.State().Connected })
}

func TestStaleFailsClosedAndRecovers(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	cfg := testConfig(t, a)
	cfg.StaleAfter = 5 * time.Second
	v := startReady(t, cfg)
	raw := a.mint(a.claims("alice"))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify(fresh) = %v, want nil", err)
	}
	stopFeed(t, a, v)
	clk.Add(4 * time.Second)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify(4s without the feed) = %v, want nil", err)
	}
	clk.Add(2 * time.Second)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrStale) {
		t.Errorf("Verify(6s without the feed) = %v, want %v", err, ErrStale)
	}
	if s := v.State(); s.Ready || s.Lag < 6*time.Second {
		t.Errorf("State() = %+v, want not ready with lag >= 6s", s)
	}
	if a.introspectHits.Load() != 0 {
		t.Errorf("introspection requests = %d, want 0 without Introspect", a.introspectHits.Load())
	}
	a.feedDown.Store(false)
	eventually(t, "the verifier to recover", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return err == nil
	})
}

func TestStaleIntrospects(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	cfg := testConfig(t, a)
	cfg.Introspect = true
	v := startReady(t, cfg)
	c := a.claims("alice")
	raw, revoked := a.mint(a.claims("alice")), a.mint(c)
	stopFeed(t, a, v)
	a.revokeSession(c.SessionID) // the verifier cannot hear of it
	clk.Add(DefaultStaleAfter + time.Second)

	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify(stale, active) = %v, want nil", err)
	}
	if _, err := v.Verify(context.Background(), revoked); !errors.Is(err, ErrInactive) {
		t.Errorf("Verify(stale, revoked at the authority) = %v, want %v", err, ErrInactive)
	}
	if got := a.introspectHits.Load(); got != 2 {
		t.Errorf("introspection requests = %d, want 2", got)
	}
	a.introspectDown.Store(true)
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Verify(stale, introspection down) = %v, want %v", err, ErrUnavailable)
	}
}

func TestOverflowIntrospectsAndDropsNothing(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	short, long := clk.In(time.Minute), clk.In(time.Hour)
	sidA, sidB, sidC := randomID(), randomID(), randomID()
	a.revoke(revocation.Entry{Kind: revocation.KindSession, Session: sidA, ExpiresAt: short})
	a.revoke(revocation.Entry{Kind: revocation.KindSession, Session: sidB, ExpiresAt: short})
	a.revoke(revocation.Entry{Kind: revocation.KindSession, Session: sidC, ExpiresAt: long})
	last := a.revoke(revocation.Entry{Kind: revocation.KindSubject, Subject: "dave", Generation: 1, ExpiresAt: long})
	cfg := testConfig(t, a)
	cfg.MaxEntries = 2
	cfg.Introspect = true
	v := start(t, cfg)
	eventually(t, "the set to overflow", func() bool { return v.State().Overflow })

	tokenOf := func(sub, sid string) string {
		c := a.claims(sub)
		c.SessionID = sid
		return a.mint(c)
	}
	live, inC, inA := tokenOf("alice", randomID()), tokenOf("carol", sidC), tokenOf("ann", sidA)
	if _, err := v.Verify(context.Background(), live); err != nil {
		t.Errorf("Verify(live, overflow) = %v, want nil (introspected)", err)
	}
	if _, err := v.Verify(context.Background(), inC); !errors.Is(err, ErrInactive) {
		t.Errorf("Verify(revoked entry held back, overflow) = %v, want %v", err, ErrInactive)
	}
	if _, err := v.Verify(context.Background(), inA); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(revoked entry in the set, overflow) = %v, want %v", err, ErrRevoked)
	}
	if got := a.introspectHits.Load(); got != 2 {
		t.Errorf("introspection requests = %d, want 2", got)
	}

	clk.Add(2 * time.Minute) // the first two entries expire; pruning makes room
	eventually(t, "the feed to resume after pruning", func() bool {
		s := v.State()
		return s.Ready && !s.Overflow && s.Position == last.Seq
	})
	if n := v.State().Entries; n != 2 {
		t.Errorf("State().Entries = %d, want 2 (the live entries)", n)
	}
	hits := a.introspectHits.Load()
	if _, err := v.Verify(context.Background(), inC); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(sid C after resume) = %v, want %v", err, ErrRevoked)
	}
	if _, err := v.Verify(context.Background(), tokenOf("dave", randomID())); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(subject dave after resume) = %v, want %v", err, ErrRevoked)
	}
	if got := a.introspectHits.Load(); got != hits {
		t.Errorf("introspection requests after resume = %d, want %d", got, hits)
	}
}

func TestCachedTokenRejectedRightAfterRevocation(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	c := a.claims("alice")
	raw := a.mint(c)
	for i := 0; i < 2; i++ {
		if _, err := v.Verify(context.Background(), raw); err != nil {
			t.Fatalf("Verify(valid) #%d = %v, want nil", i, err)
		}
	}
	if v.cache.get(raw) == nil {
		t.Fatalf("token not cached after Verify")
	}
	e := a.revokeSession(c.SessionID)
	eventually(t, "the entry to be applied", func() bool { return v.State().Position >= e.Seq })
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(cached, revoked) = %v, want %v", err, ErrRevoked)
	}
}

func TestKeyRotation(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	old := a.mint(a.claims("alice"))
	hits := a.jwksHits.Load()
	a.rotate("k2")
	fresh := a.mint(a.claims("alice"))
	if _, err := v.Verify(context.Background(), fresh); err != nil {
		t.Fatalf("Verify(new kid) = %v, want nil", err)
	}
	if got := a.jwksHits.Load() - hits; got != 1 {
		t.Errorf("JWKS fetches for the new kid = %d, want 1", got)
	}
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Errorf("Verify(old kid, still published) = %v, want nil", err)
	}
	if n := v.State().Keys; n != 2 {
		t.Errorf("State().Keys = %d, want 2", n)
	}
}

func TestUnknownKidRefetchRateLimited(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	v := startReady(t, testConfig(t, a))
	ghost := sign(t, newSigningKey(t, "ghost", token.EdDSA), a.claims("alice"))
	hits := a.jwksHits.Load()

	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := v.Verify(context.Background(), ghost); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Verify(unknown kid) = %v, want %v", err, ErrUnknownKey)
			}
		}()
	}
	wg.Wait()
	if got := a.jwksHits.Load() - hits; got != 1 {
		t.Errorf("JWKS fetches after 20 unknown-kid tokens = %d, want 1", got)
	}
	clk.Add(defaultUnknownKidInterval - time.Second)
	v.Verify(context.Background(), ghost)
	if got := a.jwksHits.Load() - hits; got != 1 {
		t.Errorf("JWKS fetches %s later = %d, want 1", defaultUnknownKidInterval-time.Second, got)
	}
	clk.Add(time.Second)
	v.Verify(context.Background(), ghost)
	if got := a.jwksHits.Load() - hits; got != 2 {
		t.Errorf("JWKS fetches %s later = %d, want 2", defaultUnknownKidInterval, got)
	}
}

func TestStartedAfterRevocations(t *testing.T) {
	a := newAuthority(t, newClock())
	c := a.claims("alice")
	cut := a.claims("bob")
	revoked, cutOff, live := a.mint(c), a.mint(cut), a.mint(a.claims("carol"))
	a.revokeSession(c.SessionID)
	for i := 0; i < 50; i++ {
		a.revokeSession(randomID())
	}
	a.revoke(revocation.Entry{Kind: revocation.KindSubject, Subject: "bob", Generation: 1})
	v := startReady(t, testConfig(t, a))
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"revoked session", revoked, ErrRevoked},
		{"subject cut off", cutOff, ErrRevoked},
		{"live", live, nil},
	}
	for _, tt := range tests {
		if _, err := v.Verify(context.Background(), tt.raw); !errors.Is(err, tt.want) {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
	if n := v.State().Entries; n != 52 {
		t.Errorf("State().Entries = %d, want 52", n)
	}
}

func TestNotReadyBeforeSync(t *testing.T) {
	a := newAuthority(t, newClock())
	a.feedMute.Store(true)
	v := start(t, testConfig(t, a))
	raw := a.mint(a.claims("alice"))
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrStale) {
		t.Errorf("Verify(before the feed synced) = %v, want %v", err, ErrStale)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := v.WaitReady(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady(feed down) = %v, want %v", err, context.DeadlineExceeded)
	}
	if st := v.State(); st.Ready || st.Reason != "not caught up with the authority's feed" {
		t.Errorf("State() = %+v, want not ready, saying it has not caught up", st)
	}
	a.unmute()
	waitReady(t, v)
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Errorf("Verify(after sync) = %v, want nil", err)
	}
	if st := v.State(); st.Reason != "" {
		t.Errorf("State().Reason = %q once ready, want empty", st.Reason)
	}
}

func TestNewFailsOver(t *testing.T) {
	a := newAuthority(t, newClock())
	cfg := testConfig(t, a)
	cfg.Authorities = []string{"http://127.0.0.1:1", a.srv.URL}
	v := startReady(t, cfg)
	if _, err := v.Verify(context.Background(), a.mint(a.claims("alice"))); err != nil {
		t.Errorf("Verify(after failover) = %v, want nil", err)
	}
}

func TestCloseStopsWaitReady(t *testing.T) {
	a := newAuthority(t, newClock())
	a.feedMute.Store(true)
	v := start(t, testConfig(t, a))
	done := make(chan error, 1)
	go func() { done <- v.WaitReady(context.Background()) }()
	v.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("WaitReady(closed) = nil, want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitReady did not return after Close")
	}
}

// TestCloseLeavesNoConnections: once Close returns, the verifier holds
// no connection open to the authority, neither its streams nor idle ones
// kept alive for the next request.
func TestCloseLeavesNoConnections(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	if _, err := v.Verify(context.Background(), a.mint(a.claims("alice"))); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if a.openConns() == 0 {
		t.Fatal("no connection open to the authority while the verifier follows it")
	}
	v.Close()
	// The authority finds a feed stream's client gone when a write to it
	// fails: heartbeats, which its clock times, must go on.
	eventually(t, "no connection open to the authority after Close", func() bool {
		a.clock.Add(50 * time.Millisecond)
		return a.openConns() == 0
	})
}

// countingTransport is a RoundTripper an app might put in place of
// http.DefaultTransport (tracing, metrics), counting its requests.
type countingTransport struct {
	base http.RoundTripper
	n    atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.base.RoundTrip(r)
}

// TestWrappedDefaultTransport: an app that replaced http.DefaultTransport
// with a RoundTripper of its own gets a verifier whose discovery and key
// requests go through it. Not parallel: it changes a global.
func TestWrappedDefaultTransport(t *testing.T) {
	a := newAuthority(t, newClock())
	wrapped := &countingTransport{base: http.DefaultTransport}
	http.DefaultTransport = wrapped
	t.Cleanup(func() { http.DefaultTransport = wrapped.base })
	v := startReady(t, testConfig(t, a))
	if _, err := v.Verify(context.Background(), a.mint(a.claims("alice"))); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	if wrapped.n.Load() == 0 {
		t.Error("no request went through the app's http.DefaultTransport")
	}
}

// TestWaitApplied: WaitApplied returns once the feed has brought the
// entry, so the very next Verify refuses the token; while the feed cannot
// bring it, it waits until ctx ends; once closed, it says so.
func TestWaitApplied(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	c := a.claims("alice")
	raw := a.mint(c)
	// The streams from now on stay silent.
	a.feedMute.Store(true)
	a.closeConns()
	e := a.revokeSession(c.SessionID)

	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := v.WaitApplied(short, e.Seq); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitApplied(feed silent) = %v, want the deadline", err)
	}
	a.unmute()
	ctx, cancel2 := context.WithTimeout(context.Background(), testtime.Scale(5*time.Second))
	defer cancel2()
	if err := v.WaitApplied(ctx, e.Seq); err != nil {
		t.Fatalf("WaitApplied(feed back) = %v, want nil", err)
	}
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(right after WaitApplied) = %v, want ErrRevoked", err)
	}

	v.Close()
	if err := v.WaitApplied(context.Background(), e.Seq+1); err == nil {
		t.Errorf("WaitApplied(closed verifier) = nil, want an error")
	}
}

func TestFeedResetReplacesSet(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	oldC, newC := a.claims("alice"), a.claims("bob")
	old, replaced := a.mint(oldC), a.mint(newC)
	for _, sid := range []string{oldC.SessionID, randomID(), randomID()} {
		a.revokeSession(sid)
	}
	v := startReady(t, testConfig(t, a))
	if _, err := v.Verify(context.Background(), old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Verify(revoked in the old log) = %v, want %v", err, ErrRevoked)
	}
	// The authority now serves another, shorter log: the verifier is ahead
	// of its head and must start over from it.
	a.log.replace([]revocation.Entry{{Seq: 1, Kind: revocation.KindSession, Session: newC.SessionID,
		CreatedAt: clk.Now(), ExpiresAt: clk.In(maxLifetime)}})
	a.closeConns()
	eventually(t, "the verifier to follow the new log", func() bool {
		s := v.State()
		return s.Ready && s.Position == 1 && s.Entries == 1
	})
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Errorf("Verify(revoked only in the old log) = %v, want nil", err)
	}
	if _, err := v.Verify(context.Background(), replaced); !errors.Is(err, ErrRevoked) {
		t.Errorf("Verify(revoked in the new log) = %v, want %v", err, ErrRevoked)
	}
}

// TestResetForgetsKeys: once the feed says the authority follows another
// log (another epoch: a database restored from a backup, whose signing
// keys were replaced), the old key set verifies nothing, also after the
// verifier is current again, until a fetch of the new one has landed.
func TestResetForgetsKeys(t *testing.T) {
	a := newAuthority(t, newClock())
	v := startReady(t, testConfig(t, a))
	raw := a.mint(a.claims("alice"))
	if _, err := v.Verify(context.Background(), raw); err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	a.jwksDown.Store(true)
	v.reset()
	eventually(t, "the verifier current again", func() bool { return v.State().Ready })
	if _, err := v.Verify(context.Background(), raw); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify(token of the old log's key) after a reset, the new key set not fetched = %v, want %v", err, ErrUnknownKey)
	}
	a.jwksDown.Store(false)
	v.keys.fetchSoon()
	eventually(t, "the key set fetched again", func() bool {
		_, err := v.Verify(context.Background(), raw)
		return err == nil
	})
}

// TestCachedRemoteVerifyAllocatesOnlyTheCopy: a cache hit allocates
// nothing but the copy of the claims it hands out (see
// BenchmarkVerifyCached for what that copy costs).
func TestCachedRemoteVerifyAllocatesOnlyTheCopy(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocations")
	}
	a := newAuthority(t, newClock())
	cfg := testConfig(t, a)
	cfg.Logger = slog.New(slog.DiscardHandler)
	v := startReady(t, cfg)
	c := a.claims("alice")
	c.Extra = map[string]any{"roles": []any{"reader"}}
	raw := a.mint(c)
	ctx := context.Background()
	got, err := v.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("Verify(valid) = %v, want nil", err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("Verify(cached) = %v, want nil", err)
		}
	})
	if allocs != 0 {
		t.Errorf("Verify(cached) allocates %v times per call, want 0", allocs)
	}
	if again, _ := v.Verify(ctx, raw); again != got {
		t.Errorf("Verify(cached) = %p, want the cached claims %p", again, got)
	}
}

// TestClaimsAreImmutable: what a handler gets from claims is its own, so
// changing it cannot change what the next request with the same token sees.
func TestClaimsAreImmutable(t *testing.T) {
	l := newLocal(t, 0)
	c := l.claims("alice")
	c.Extra = map[string]any{"roles": []any{"reader"}, "org": map[string]any{"id": "o1"}}
	raw := sign(t, l.key, c)
	ctx := context.Background()
	first, err := l.v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	roles, _ := first.Claim("roles")
	roles.([]any)[0] = "admin"
	org, _ := first.Claim("org")
	org.(map[string]any)["id"] = "o2"
	own := first.Copy()
	own.Subject = "mallory"
	delete(own.Extra, "org")
	second, err := l.v.Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	org, _ = second.Claim("org")
	if second.Subject() != "alice" || !second.Has("roles", "reader") || org.(map[string]any)["id"] != "o1" {
		t.Errorf("Verify after a handler changed what it got = %+v, want the token's claims", second.Copy())
	}
}

// TestNewRefusesClientTimeout: an http.Client Timeout would cut the feed's
// stream every Timeout; New refuses it before contacting anyone.
func TestNewRefusesClientTimeout(t *testing.T) {
	_, err := New(context.Background(), Config{Authorities: []string{"http://127.0.0.1:1"},
		HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("New(HTTPClient with Timeout) = %v, want an error naming the Timeout", err)
	}
}

// TestLeewayNotLargerThanTheAuthoritys: the authority sends a revocation
// only for its leeway past the entry's expiry, so a verifier with a larger
// leeway could accept tokens whose revocation it never received: New
// refuses such a Config, and a Leeway left zero takes the authority's.
func TestLeewayNotLargerThanTheAuthoritys(t *testing.T) {
	a := newAuthority(t, newClock())
	a.publish(0, 20*time.Second)
	cfg := testConfig(t, a)
	cfg.Leeway = time.Minute
	if v, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "larger than the authority's leeway 20s") {
		if v != nil {
			v.Close()
		}
		t.Fatalf("New(Leeway 1m, authority's 20s) = %v, want a refusal naming both", err)
	}
	for _, tc := range []struct {
		set, want time.Duration
	}{{0, 20 * time.Second}, {10 * time.Second, 10 * time.Second}, {-1, 0}} {
		cfg.Leeway = tc.set
		v := start(t, cfg)
		if got := v.expect.Load().Leeway; got != tc.want {
			t.Errorf("New(Leeway %v, authority's 20s): leeway %v, want %v", tc.set, got, tc.want)
		}
	}
}

// TestFollowsPublishedLifetimeAndLeeway: a verifier follows the longest
// token lifetime and the leeway the authority publishes, not only what it
// learned at start: on the periodic key set fetch, and at once when a
// token is longer-lived than it knows (a raised lifetime).
func TestFollowsPublishedLifetimeAndLeeway(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	a.publish(15*time.Minute, 30*time.Second)
	cfg := testConfig(t, a)
	v := startReady(t, cfg, func(t *tuning) { t.unknownKidInterval = time.Millisecond })
	c := a.claims("alice")
	c.Expiry = clk.Now().Add(time.Hour)
	long := a.mint(c)
	if _, err := v.Verify(context.Background(), long); !errors.Is(err, ErrClaims) {
		t.Fatalf("Verify(1h token, 15m published) = %v, want %v", err, ErrClaims)
	}
	a.publish(time.Hour, 10*time.Second) // raised (and the leeway lowered)
	clk.Add(time.Second)                 // past the refetch interval
	if _, err := v.Verify(context.Background(), long); err != nil {
		t.Fatalf("Verify(1h token, 1h just published) = %v, want nil: the refused token makes the verifier fetch again", err)
	}
	if e := v.expect.Load(); e.MaxLifetime != time.Hour || e.Leeway != 10*time.Second {
		t.Errorf("after the fetch: max lifetime %v, leeway %v; want 1h, 10s", e.MaxLifetime, e.Leeway)
	}
	// A Config that pins them keeps them, except a leeway above the
	// authority's.
	cfg.MaxLifetime, cfg.Leeway = 2*time.Hour, 10*time.Second
	pinned := start(t, cfg)
	a.publish(5*time.Minute, 5*time.Second)
	if err := pinned.keys.fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := pinned.expect.Load(); e.MaxLifetime != 2*time.Hour || e.Leeway != 5*time.Second {
		t.Errorf("pinned Config after the authority lowered both: max lifetime %v, leeway %v; want 2h kept, 5s", e.MaxLifetime, e.Leeway)
	}
}
