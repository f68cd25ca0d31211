package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/token"
)

// TestLogsStaleAndBackInSync: losing the feed past StaleAfter is a Warn
// with the reason, and recovering an Info, once each. The watch looks
// every watchEvery of the verifier's clock, which the test moves.
func TestLogsStaleAndBackInSync(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	rec := &logRecorder{}
	cfg := testConfig(t, a)
	cfg.StaleAfter, cfg.Logger = 5*time.Second, slog.New(rec)
	v := startReady(t, cfg)
	clk.Add(defaultWatchEvery)
	eventually(t, "watch to see the verifier ready", v.seenReady.Load)
	stopFeed(t, a, v)
	clk.Add(6 * time.Second)
	eventually(t, "the stale warning", func() bool { return rec.count(slog.LevelWarn, "revocation state is stale") == 1 })
	a.feedDown.Store(false)
	waitReady(t, v)
	clk.Add(defaultWatchEvery)
	eventually(t, "the back-in-sync line", func() bool { return rec.count(slog.LevelInfo, "back in sync") == 1 })
	if n := rec.count(slog.LevelWarn, "revocation state is stale"); n != 1 {
		t.Errorf("stale warnings = %d, want 1\n%s", n, rec)
	}
}

// TestConfigRefusalsWarnRateLimited: tokens refused for a reason that
// points at the configuration (here: another audience) are logged at Warn
// with a hint, at most once per configWarnEvery, and the lines held back
// are counted.
func TestConfigRefusalsWarnRateLimited(t *testing.T) {
	clk := newClock()
	a := newAuthority(t, clk)
	rec := &logRecorder{}
	cfg := testConfig(t, a)
	cfg.Logger = slog.New(rec)
	v := startReady(t, cfg)
	c := a.claims("alice")
	c.Audience = []string{"another-app"}
	raw := a.mint(c)
	for range 5 {
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, token.ErrAudience) {
			t.Fatalf("Verify(other audience) = %v, want %v", err, token.ErrAudience)
		}
	}
	if n := rec.count(slog.LevelWarn, "audience"); n != 1 {
		t.Fatalf("audience warnings after 5 refusals = %d, want 1\n%s", n, rec)
	}
	clk.Add(configWarnEvery)
	if _, err := v.Verify(context.Background(), raw); err == nil {
		t.Fatal("Verify(other audience) = nil")
	}
	if n := rec.count(slog.LevelWarn, "audience"); n != 2 {
		t.Errorf("audience warnings after %v = %d, want 2\n%s", configWarnEvery, n, rec)
	}
	if n := rec.count(slog.LevelWarn, "more tokens rejected"); n != 1 {
		t.Errorf("held-back counts = %d, want 1 (4 held back)\n%s", n, rec)
	}
	// Refusals held back from Warn, and those that say nothing about the
	// configuration, stay at Debug.
	before := rec.count(slog.LevelDebug, "token rejected")
	if _, err := v.Verify(context.Background(), "garbage"); err == nil {
		t.Fatal("Verify(garbage) = nil")
	}
	if n := rec.count(slog.LevelDebug, "token rejected"); before != 4 || n != 5 {
		t.Errorf("debug lines: %d held back, %d after a malformed token, want 4 and 5\n%s", before, n, rec)
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrNoToken, "no_token"},
		{ErrIssuer, "issuer"},
		{errors.Join(errors.New("x"), ErrUnknownKey), "unknown_key"},
		{ErrStale, "stale"},
		{fmt.Errorf("%w: want roles in admin", ErrForbidden), "forbidden"},
		{errors.New("something else"), "other"},
	}
	for _, tt := range tests {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
