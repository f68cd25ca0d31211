package verifier

import (
	"context"
	"errors"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// This file connects the verifier to the feed: applying entries to the set,
// replaying after a reset, pruning, and judging whether the set is current.
//
// Staleness is checked on every Verify, so it must not take the feed
// client's mutex each time: under load from many cores that one lock would
// serialise every request. Instead the verifier keeps an immutable snapshot
// of what the feed last said (synced, fresh until) behind an atomic pointer
// and reads the feed's State only when the snapshot alone cannot vouch for
// freshness.
//
// That is sound because the feed's state only moves forward (FreshUntil
// grows, Synced goes from false to true) except on a reset, when the server
// says the verifier followed another log (or names another epoch). The
// feed turns unsynced before it calls Reset, and reset stores an unsynced
// snapshot before it empties the set; Verify reads the set before the
// snapshot, so one that sees the emptied set also sees "not synced" and
// fails closed.

// heard is a snapshot of the feed's state. Immutable. until is the feed's
// FreshUntil: the lease the authority granted on the verifier's reports
// (see internal/feed), not merely the arrival of the last heartbeat, so a
// verifier that was frozen does not take heartbeats sent long ago as news.
type heard struct {
	synced    bool
	lastHeard time.Time
	until     time.Time
}

// applyMany is the feed's ApplyMany: it adds an event's entries to the set
// and tracks overflow. A full set refuses an entry, and the feed keeps it
// and retries later (nothing is dropped); until then the set may miss
// revocations, which staleness reports.
func (v *Verifier) applyMany(es []revocation.Entry) (int, error) {
	n, err := v.set.ApplyMany(es)
	switch {
	case errors.Is(err, revocation.ErrFull):
		if !v.overflow.Swap(true) {
			v.log.Warn("verifier: revocation set full; feed paused until pruning makes room",
				"max_entries", v.cfg.MaxEntries, "seq", es[n].Seq)
		}
	case err == nil && n > 0:
		if v.overflow.Swap(false) {
			v.log.Info("verifier: revocation set has room again", "seq", es[n-1].Seq)
		}
	}
	return n, err
}

// pruneLoop forgets expired revocations (and cached tokens) every few
// seconds of the clock. Pruning is also what ends an overflow: it makes room for the
// entries the feed holds back. t is made by start, before New returns.
func (v *Verifier) pruneLoop(ctx context.Context, t *clock.Ticker) {
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
	// The new log may come with other keys (another cluster's, or the
	// replaced keys of a database restored from a backup, whose tokens
	// must not pass): drop the old ones and fetch the new now rather than
	// at the next unknown kid or period. Until the fetch lands every token
	// names an unknown kid, which waits for it.
	v.keys.forget()
	v.keys.fetchSoon()
}

// acceptKeys vets the epoch a key set answer names against the feed's: an
// authority address that now serves another log (a replaced database,
// another cluster) must not have its keys trusted while the revocation set
// still holds the old log's entries. Such keys are refused, and the feed
// reconnects to see the new epoch and start over; the keys are fetched
// again once it has.
func (v *Verifier) acceptKeys(epoch string) bool {
	fe := v.feed.State().Epoch
	if epoch == "" || fe == "" || epoch == fe {
		return true
	}
	v.log.Warn("verifier: the authority's key set comes from another log than the feed's; reconnecting the feed",
		"keys_epoch", epoch, "feed_epoch", fe)
	v.feed.Reconnect()
	return false
}

// staleness returns nil if the revocation set can be trusted at now, else an
// error wrapping ErrStale that says why. A local verifier is never stale.
// The common case reads two atomics and does not allocate.
func (v *Verifier) staleness(now time.Time) error {
	if v.feed == nil {
		return nil
	}
	h := v.heard.Load()
	if h.fresh(now) && !v.overflow.Load() {
		return nil
	}
	h = v.refreshHeard()
	switch {
	case !h.synced:
		return stale("not caught up with the authority's feed")
	case !h.fresh(now) && now.Sub(h.lastHeard) > v.cfg.StaleAfter:
		return stale("nothing heard from the authority for %s", now.Sub(h.lastHeard).Round(time.Millisecond))
	case h.until.IsZero():
		return stale("the authority has not yet acknowledged this verifier's position")
	case !h.fresh(now):
		return stale("the authority has not acknowledged this verifier's position for over %s (position reports failing)",
			v.cfg.StaleAfter)
	case v.overflow.Load():
		return stale("revocation set full (%d entries); feed paused", v.cfg.MaxEntries)
	}
	return nil
}

// complete is the readiness the verifier reports to the authority: the
// feed has caught up and the set refused no entry for want of room. Its
// lease is left out (see feed.Client.Ready): the authority knows which
// leases it granted.
func (v *Verifier) complete() bool {
	return v.feed.State().Synced && !v.overflow.Load()
}

func (h *heard) fresh(now time.Time) bool {
	return h.synced && !now.After(h.until)
}

// refreshHeard reads the feed's state into a new snapshot and returns it.
func (v *Verifier) refreshHeard() *heard {
	old := v.heard.Load()
	st := v.feed.State()
	next := &heard{synced: st.Synced, lastHeard: st.LastHeard, until: st.FreshUntil}
	if v.heard.CompareAndSwap(old, next) {
		return next
	}
	// Someone stored meanwhile; if it was reset, its snapshot must win
	// over a state read before the replay began.
	return v.heard.Load()
}
