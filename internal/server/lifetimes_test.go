package server_test

import (
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	iclock "github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/verifier"
)

// newVerifier follows the authority at url on clk.
func newVerifier(t *testing.T, url, key string, clk iclock.Clock) *verifier.Verifier {
	t.Helper()
	cfg := verifier.Config{Authorities: []string{url}, APIKey: key, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Clock = clk
	v, err := verifier.New(ctx(t), cfg)
	if err != nil {
		t.Fatalf("verifier.New = %v", err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.WaitReady(ctx(t)); err != nil {
		t.Fatalf("WaitReady = %v", err)
	}
	return v
}

// TestLoweredAccessTTLKeepsRevocations: after an operator lowers
// --access-ttl (a natural step during an incident), tokens minted under the
// old TTL stay refused, by gates and by introspection, until they expire:
// revocation entries are sized from every lifetime recorded in the store,
// not the current TTL, and what the authority publishes keeps the old
// lifetime for as long as its tokens can be valid.
func TestLoweredAccessTTLKeepsRevocations(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Issuer: "https://auth.test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:  clk, Authority: authority.Config{AccessTTL: time.Hour}}
	r := mustStart(t, cfg)
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	tok, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "mallory"})
	if err != nil {
		t.Fatal(err)
	}
	stop(t, r)

	// The incident: the lifetime goes down to 5 minutes, and the stolen
	// token's session is revoked.
	cfg.Authority.AccessTTL = 5 * time.Minute
	r = mustStart(t, cfg)
	defer stop(t, r)
	admin = &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	d, err := admin.Discovery(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if d.MaxLifetime != int64(time.Hour/time.Second) {
		t.Errorf("published max lifetime after lowering the TTL = %d s, want 3600 while 1h tokens may be valid", d.MaxLifetime)
	}
	gate := newVerifier(t, r.URL, r.APIKey, clk)
	rev, err := admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID, Reason: "stolen"})
	if err != nil {
		t.Fatal(err)
	}
	if want := tok.AccessExpiresAt.Add(authority.DefaultLeeway); rev.Entry == nil || rev.Entry.ExpiresAt.Before(want) {
		t.Fatalf("revocation entry = %+v, want it to expire no earlier than the token's exp + leeway (%v)", rev.Entry, want)
	}

	// 56 minutes on, the token has 4 minutes left: it stays revoked
	// everywhere, also once expired entries are swept.
	clk.Add(56 * time.Minute)
	r.Authority.Sweep(ctx(t))
	var gateErr error
	defer func() {
		if t.Failed() {
			t.Logf("last gate answer: %v", gateErr)
		}
	}()
	eventually(t, "the gate refuses the token as revoked", func() bool {
		_, gateErr = gate.Verify(ctx(t), tok.AccessToken)
		return errors.Is(gateErr, verifier.ErrRevoked)
	})
	if res, err := admin.Introspect(ctx(t), tok.AccessToken); err != nil || res.Active {
		t.Errorf("Introspect(revoked 1h token, 56 min later) = %+v, %v; want inactive", res, err)
	}
	late := newVerifier(t, r.URL, r.APIKey, clk) // a gate started now
	if _, err := late.Verify(ctx(t), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("a gate started after the lowering: Verify(revoked 1h token) = %v, want %v", err, verifier.ErrRevoked)
	}

	// Once no 1h token can be valid (the first node's lease ran a minute
	// past its start; + 1h + the leeway), the old lifetime is no longer
	// published.
	clk.Add(6 * time.Minute)
	if d, err := admin.Discovery(ctx(t)); err != nil || d.MaxLifetime != int64(5*time.Minute/time.Second) {
		t.Errorf("published max lifetime once every 1h token expired = %d s, %v; want 300", d.MaxLifetime, err)
	}
}

// TestRaisedAccessTTLWaitsForEveryNode: a node started with a longer
// lifetime than any recorded mints with the previous one until every node
// has read the new lease, so no node sizes an entry without knowing that
// such tokens exist.
func TestRaisedAccessTTLWaitsForEveryNode(t *testing.T) {
	t.Parallel()
	clk := newClock()
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Issuer: "https://auth.test",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Clock:  clk, Authority: authority.Config{AccessTTL: 5 * time.Minute}}
	r := mustStart(t, cfg)
	stop(t, r)
	cfg.Authority.AccessTTL = time.Hour
	r = mustStart(t, cfg)
	defer stop(t, r)
	admin := &client.Client{BaseURL: r.URL, APIKey: r.APIKey}
	tok, err := admin.CreateSession(ctx(t), client.SessionRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if life := tok.AccessExpiresAt.Sub(clk.Now()); life > 5*time.Minute {
		t.Errorf("token minted right after the raise lives %v, want at most the previous 5m", life)
	}
	clk.Add(time.Minute)
	if tok, err = admin.Refresh(ctx(t), tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if life := tok.AccessExpiresAt.Sub(clk.Now()); life < 59*time.Minute {
		t.Errorf("token minted a minute after the raise lives %v, want the new 1h", life)
	}
}

// TestLateVerifierBehindWithinLeewayGetsEntries: a verifier whose clock is
// behind the authority's (within the tolerated skew) still accepts tokens
// whose entries have expired by the authority's clock, so the feed sends
// entries for the leeway past their expiry; the authority publishes its
// leeway, and verifiers take it (and refuse a larger one).
func TestLateVerifierBehindWithinLeewayGetsEntries(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	tok, err := e.admin.CreateSession(ctx(t), client.SessionRequest{Subject: "olivia"})
	if err != nil {
		t.Fatal(err)
	}
	rev, err := e.admin.RevokeSession(ctx(t), client.SessionRevocation{SessionID: tok.SessionID})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.admin.Discovery(ctx(t))
	if err != nil || d.Leeway != int64(authority.DefaultLeeway/time.Second) {
		t.Fatalf("published leeway = %d s, %v; want %v", d.Leeway, err, authority.DefaultLeeway)
	}
	// The entry expired 10 s ago by the authority's clock; a verifier 25 s
	// behind, within the 30 s tolerated, still takes the token as unexpired.
	e.clock.Add(rev.Entry.ExpiresAt.Sub(e.clock.Now()) + 10*time.Second)
	const skew = 25 * time.Second
	behind := iclock.Offset(e.clock, -skew)
	if now := behind.Now(); now.After(tok.AccessExpiresAt.Add(authority.DefaultLeeway)) {
		t.Fatalf("test setup: the token is expired for the late verifier (%v > %v)", now, tok.AccessExpiresAt)
	}
	late := newVerifier(t, e.URL, e.APIKey, behind)
	if _, err := late.Verify(ctx(t), tok.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("late verifier 25 s behind: Verify(revoked token) = %v, want %v", err, verifier.ErrRevoked)
	}
	_, err = verifier.New(ctx(t), verifier.Config{Authorities: []string{e.URL}, APIKey: e.APIKey, Leeway: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		t.Error("verifier.New(Leeway 1m, the authority's 30s) = nil, want a refusal")
	}
}
