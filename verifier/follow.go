package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/revocation"
)

// This file connects the verifier to the feed: applying entries to the set,
// replaying after a reset, pruning, and judging whether the set is current.
//
// Staleness is checked on every Verify, so it must not take the feed
// client's mutex each time: under load from many cores that one lock would
// serialise every request. Instead the verifier keeps an immutable snapshot
// of what the feed last said (synced, last heard) behind an atomic pointer
// and reads the feed's State only when the snapshot alone cannot vouch for
// freshness.
//
// That is sound because the feed's state only moves forward (LastHeard
// grows, Synced goes from false to true) except on a reset, when the server
// says the verifier followed another log. The feed turns unsynced before it
// calls Reset, and reset stores an unsynced snapshot before it empties the
// set; Verify reads the set before the snapshot, so one that sees the
// emptied set also sees "not synced" and fails closed.

// heard is a snapshot of the feed's state. Immutable.
type heard struct {
	synced    bool
	lastHeard time.Time
}

// apply is the feed's Apply: it adds an entry to the set and tracks
// overflow. A full set refuses the entry, and the feed keeps it and retries
// later (nothing is dropped); until then the set may miss revocations, which
// staleness reports.
func (v *Verifier) apply(e revocation.Entry) error {
	err := v.set.Apply(e)
	switch {
	case errors.Is(err, revocation.ErrFull):
		if !v.overflow.Swap(true) {
			v.log.Warn("verifier: revocation set full; feed paused until pruning makes room",
				"max_entries", v.cfg.MaxEntries, "seq", e.Seq)
		}
	case err == nil:
		if v.overflow.Swap(false) {
			v.log.Info("verifier: revocation set has room again", "seq", e.Seq)
		}
	}
	return err
}

// pruneLoop forgets expired revocations (and cached tokens) every few
// seconds. Pruning is also what ends an overflow: it makes room for the
// entries the feed holds back.
func (v *Verifier) pruneLoop(ctx context.Context) {
	t := time.NewTicker(v.cfg.pruneEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			v.prune(v.now())
		}
	}
}

func (v *Verifier) prune(now time.Time) {
	// This verifier accepts a token until exp + Leeway, so it keeps each
	// entry Leeway past its ExpiresAt: a verifier configured with more
	// leeway than the authority's never outlives its revocations.
	n := v.set.Prune(now.Add(-v.expect.Load().Leeway))
	if v.cache != nil {
		v.cache.sweep(now)
	}
	if n > 0 {
		v.log.Debug("verifier: pruned expired revocations", "pruned", n, "entries", v.set.Len())
	}
}

// reset is the feed's Reset: the server follows another log and the feed,
// already unsynced, will replay it from the start.
func (v *Verifier) reset() {
	v.heard.Store(&heard{}) // before emptying: whoever sees the empty set sees this
	v.set.Reset()
	v.overflow.Store(false)
	v.log.Warn("verifier: the authority follows another log; replaying it")
}

// staleness returns nil if the revocation set can be trusted at now, else an
// error wrapping ErrStale that says why. A local verifier is never stale.
// The common case reads two atomics and does not allocate.
func (v *Verifier) staleness(now time.Time) error {
	if v.feed == nil {
		return nil
	}
	h := v.heard.Load()
	if h.fresh(now, v.cfg.StaleAfter) && !v.overflow.Load() {
		return nil
	}
	h = v.refreshHeard()
	switch {
	case !h.synced:
		return fmt.Errorf("%w: not caught up with the authority's feed", ErrStale)
	case !h.fresh(now, v.cfg.StaleAfter):
		return fmt.Errorf("%w: nothing heard from the authority for %s", ErrStale, now.Sub(h.lastHeard).Round(time.Millisecond))
	case v.overflow.Load():
		return fmt.Errorf("%w: revocation set full (%d entries); feed paused", ErrStale, v.cfg.MaxEntries)
	}
	return nil
}

func (h *heard) fresh(now time.Time, staleAfter time.Duration) bool {
	return h.synced && now.Sub(h.lastHeard) <= staleAfter
}

// refreshHeard reads the feed's state into a new snapshot and returns it.
func (v *Verifier) refreshHeard() *heard {
	old := v.heard.Load()
	st := v.feed.State()
	next := &heard{synced: st.Synced, lastHeard: st.LastHeard}
	if v.heard.CompareAndSwap(old, next) {
		return next
	}
	// Someone stored meanwhile; if it was reset, its snapshot must win
	// over a state read before the replay began.
	return v.heard.Load()
}
