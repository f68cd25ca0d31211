package verifier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/token"
)

// State describes how current a Verifier is, for health checks and metrics.
type State struct {
	// Ready: the feed has caught up with the authority, was heard from
	// within StaleAfter and the set is not full, so Verify answers from
	// local state alone. Always true for a local verifier.
	Ready bool
	// Position is the seq of the last entry applied; Head the highest seq
	// the authority announced.
	Position, Head int64
	// LastHeard is when the feed last heard from the authority (an entry or
	// a heartbeat); Lag is how long ago that was.
	LastHeard time.Time
	Lag       time.Duration
	// Entries is the size of the revocation set.
	Entries int
	// Overflow: the set is full; the feed waits for pruning to make room.
	Overflow bool
	// Source is the authority the feed follows now.
	Source string
	// Authorities is how many authority nodes the verifier fails over
	// between: those in Config.Authorities and those the cluster
	// advertises (tegata serve --advertise-url). Zero for a local verifier.
	Authorities int
	// Keys is the number of keys in the current key set (0 when unknown).
	Keys int
	// Err is the feed's last error, if any. It may name hosts.
	Err string
	// Reason says why the verifier is not Ready, in words that name no host
	// (e.g. "nothing heard from the authority for 12s"); empty when Ready.
	Reason string
	// ID is the instance ID the verifier reports to the authorities (empty
	// for a local verifier); Epoch the epoch of the log it follows.
	ID, Epoch string
	// ClockSkew is the authority's clock minus this process's, as the Date
	// headers of its answers show it (to about a second; zero when closer
	// or not yet measured). ClockOff says, in words that name no host, that
	// it is beyond the leeway, so that every token looks expired or not yet
	// valid; empty when within. It leaves Ready alone: the revocation state
	// may be current all the same.
	ClockSkew time.Duration
	ClockOff  string
}

// State returns a snapshot of the verifier's state.
func (v *Verifier) State() State {
	now := v.now()
	s := State{Entries: v.set.Len(), Overflow: v.overflow.Load(), Keys: v.keyCount()}
	if v.feed == nil {
		s.Ready = true
		return s
	}
	fs := v.feed.State()
	s.Position, s.Head, s.LastHeard = fs.Position, fs.Head, fs.LastHeard
	s.Source, s.Err, s.Epoch, s.ID = fs.Source, fs.Err, fs.Epoch, fs.ID
	s.Authorities = len(*v.auth.urls.Load())
	if !fs.LastHeard.IsZero() {
		s.Lag = now.Sub(fs.LastHeard)
	}
	if err := v.staleness(now); err != nil {
		s.Reason = staleReason(err)
	}
	s.Ready = s.Reason == ""
	if v.skew != nil {
		s.ClockSkew, s.ClockOff = v.skew.Skew(), v.skew.reason()
	}
	return s
}

// keyCount returns the number of keys in the current set, if known.
func (v *Verifier) keyCount() int {
	if v.keys != nil {
		return v.keys.cur.Load().n
	}
	if ks, ok := v.lookup().(*token.KeySet); ok {
		return len(ks.Keys())
	}
	return 0
}

// errClosed is returned by WaitReady and WaitApplied when the verifier is
// closed meanwhile.
var errClosed = errors.New("verifier: closed")

// WaitReady blocks until State().Ready, ctx ends (returning its error) or
// the verifier is closed. A local verifier is always ready.
func (v *Verifier) WaitReady(ctx context.Context) error {
	if v.feed == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(v.bg, cancel)()
	// Readiness changes with the feed's state (a lease, a sync, an entry
	// applied or refused for want of room), or by the clock alone only
	// away from ready: looking at each change of the state is enough.
	err := v.feed.WaitFor(ctx, func(feed.State) bool { return v.State().Ready })
	if err != nil && v.bg.Err() != nil {
		return errClosed
	}
	if err != nil {
		return fmt.Errorf("verifier: waiting for the feed: %w", err)
	}
	return nil
}

// WaitApplied blocks until the verifier has applied every revocation up
// to log position seq (the seq of an entry the authority returned, as in
// client.Revocation), ctx ends (returning its error) or the verifier is
// closed. It wakes on the feed's own progress, not by polling. A local
// verifier returns at once: its set is its owner's, applied in place.
//
// Applied is not in force: another verifier may still lack the entry (ask
// the authority with confirm for that). It is what a component that
// revokes through its own verifier waits for before it answers, so that
// its next request already sees the revocation.
func (v *Verifier) WaitApplied(ctx context.Context, seq int64) error {
	if v.feed == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(v.bg, cancel)()
	err := v.feed.WaitPosition(ctx, seq)
	switch {
	case err == nil:
		return nil
	case v.bg.Err() != nil:
		return errClosed
	}
	return fmt.Errorf("verifier: waiting for position %d: %w", seq, err)
}
