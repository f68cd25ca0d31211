package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
)

// This file makes the verifier's troubles visible at the default log level:
// the revocation state going stale and coming back, and tokens refused for
// reasons that point at a misconfiguration rather than at the token.

// watch logs, every defaultWatchEvery of the clock, when the revocation state has gone stale
// since the last look (Warn) and when it is back in sync (Info). The first
// sync after start is not logged here: WaitReady is how callers learn of it.
// t is made by start, before New returns, so that the first look is
// defaultWatchEvery of the clock after New whenever this goroutine runs.
func (v *Verifier) watch(ctx context.Context, t *clock.Ticker) {
	defer t.Stop()
	wasReady := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := v.staleness(v.now())
		switch {
		case err != nil && wasReady:
			what := "tokens are refused until it recovers"
			if v.cfg.Introspect {
				what = "each token is checked with the authority until it recovers"
			}
			v.log.Warn("verifier: revocation state is stale; "+what, "reason", staleReason(err))
		case err == nil && !wasReady && v.seenReady.Load():
			st := v.feed.State()
			v.log.Info("verifier: back in sync with the authority", "position", st.Position, "source", st.Source)
		}
		wasReady = err == nil
		if wasReady {
			v.seenReady.Store(true)
		}
	}
}

// staleError is ErrStale with the reason: why, in words that name no host
// (it is shown on the gate's /readyz).
type staleError struct{ reason string }

func stale(format string, args ...any) error {
	return &staleError{reason: fmt.Sprintf(format, args...)}
}

func (e *staleError) Error() string { return ErrStale.Error() + ": " + e.reason }
func (e *staleError) Unwrap() error { return ErrStale }

// staleReason is the reason of a staleness error, or the whole error if it
// has none.
func staleReason(err error) string {
	var s *staleError
	if errors.As(err, &s) {
		return s.reason
	}
	return err.Error()
}

// configWarnEvery bounds how often one kind of configuration refusal is
// logged at Warn: a misconfigured verifier refuses every request, and one
// line per request would drown the log.
const configWarnEvery = 10 * time.Second

// configHints are the refusals that usually mean the verifier and the
// authority disagree, by Code, with what to check.
var configHints = map[string]string{
	"issuer":      "the token's issuer is not the expected one: compare the verifier's issuer (--issuer, Config.Issuer) with the authority's",
	"audience":    "the token's audience is not the expected one: compare the verifier's audience (--audience, Config.Audience) with the authority's --audience",
	"unknown_key": "the token is signed by a key the authority does not publish: does the verifier follow the authority that issued it?",
	"algorithm":   "the token is signed with an algorithm the verifier does not accept (Config.Algorithms)",
}

// configWarner rate-limits the Warn lines of configuration refusals, per
// kind, by the verifier's clock. Safe for concurrent use.
type configWarner struct {
	mu   sync.Mutex
	last map[string]time.Time
	held map[string]int // refusals not logged since the last line
}

// allow reports whether a refusal of this kind may be logged at now, and
// how many were held back since the last one that was.
func (w *configWarner) allow(code string, now time.Time) (bool, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last == nil {
		w.last, w.held = make(map[string]time.Time), make(map[string]int)
	}
	if last, ok := w.last[code]; ok && now.Sub(last) < configWarnEvery {
		w.held[code]++
		return false, 0
	}
	n := w.held[code]
	w.last[code], w.held[code] = now, 0
	return true, n
}

// logRejection logs a rejected token, never the token itself. A refusal
// that points at a misconfiguration is a rate-limited Warn with a hint;
// any other is a Debug line with the reason and, when the token got that
// far, its jti and sid.
func (v *Verifier) logRejection(ctx context.Context, c *Claims, err error) {
	code := Code(err)
	level, msg := slog.LevelDebug, "verifier: token rejected"
	if hint, ok := configHints[code]; ok {
		allowed, held := v.configWarn.allow(code, v.now())
		if allowed {
			level, msg = slog.LevelWarn, "verifier: token rejected: "+hint
			defer func() {
				if held > 0 {
					v.log.WarnContext(ctx, "verifier: more tokens rejected for the same reason since the last line", "reason", code, "count", held)
				}
			}()
		}
	}
	if !v.log.Enabled(ctx, level) {
		return
	}
	attrs := []any{"reason", code, "err", err}
	if c != nil {
		attrs = append(attrs, "jti", c.ID(), "sid", c.SessionID())
	}
	v.log.Log(ctx, level, msg, attrs...)
}
