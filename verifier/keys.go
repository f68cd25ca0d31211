package verifier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/token"
)

const jwksPath = "/.well-known/jwks.json"

// epochHeader names the epoch of the log an authority serves.
const epochHeader = "Tegata-Epoch"

// errOtherEpoch: the key set comes from another log than the one the feed
// follows; it is installed once the feed has moved to that log too.
var errOtherEpoch = errors.New("verifier: the authority's key set belongs to another log than the feed's (epoch changed); resynchronising first")

// keySource keeps the authority's key set current: fetched at start,
// periodically, and on demand when a token names an unknown kid. Readers take
// the current set from an atomic pointer; a fetch swaps in a new one.
type keySource struct {
	base     context.Context // cancelled by Verifier.Close
	auth     *authorities
	clock    clock.Clock
	log      *slog.Logger
	interval time.Duration // least time between two on-demand fetches
	// accept, when set, vets the epoch a JWKS answer names (header
	// Tegata-Epoch): keys from another log than the feed's are not
	// installed (see Verifier.acceptKeys).
	accept func(epoch string) bool
	// published, when set, receives the openid-configuration fetched with
	// every key set after the start (see published.go).
	published func(discovery)
	cur       atomic.Pointer[keySnapshot]
	fetchMu   sync.Mutex // serialises fetches so an older answer never replaces a newer one

	mu         sync.Mutex
	lastDemand time.Time  // when the last on-demand fetch started (by clock)
	inflight   *fetchCall // the fetch under way, if any
	closed     bool       // no new fetch goroutine once set
	wg         sync.WaitGroup
}

// keySnapshot is one fetched key set. Immutable.
type keySnapshot struct {
	set *token.KeySet
	n   int    // number of keys, for State
	raw []byte // the JWKS document, to skip reparsing an unchanged one
}

// fetchCall is one fetch that concurrent callers share.
type fetchCall struct {
	done chan struct{}
	err  error
}

// lookup returns the current key set. It does not allocate.
func (k *keySource) lookup() token.KeyLookup {
	return k.cur.Load().set
}

// fetch gets the JWKS from the authorities and installs it if it changed,
// and hands the openid-configuration to published.
func (k *keySource) fetch(ctx context.Context) error {
	k.fetchMu.Lock()
	defer k.fetchMu.Unlock()
	if k.published != nil {
		d, err := k.auth.discover(ctx)
		if err != nil {
			return err
		}
		k.published(d)
	}
	body, hdr, err := k.auth.getHeader(ctx, jwksPath)
	if err != nil {
		return fmt.Errorf("verifier: fetching JWKS: %w", err)
	}
	if k.accept != nil && !k.accept(hdr.Get(epochHeader)) {
		return errOtherEpoch
	}
	if old := k.cur.Load(); old != nil && bytes.Equal(old.raw, body) {
		return nil
	}
	set, err := token.ParseJWKS(body)
	if err != nil {
		return fmt.Errorf("verifier: parsing JWKS: %w", err)
	}
	snap := &keySnapshot{set: set, n: len(set.Keys()), raw: body}
	k.cur.Store(snap)
	k.log.Info("verifier: key set updated", "keys", snap.n)
	return nil
}

// refetch fetches the key set because a token named an unknown kid. Callers
// that arrive while a fetch is under way wait for it instead of starting
// another; a new fetch starts at most once per interval. It reports whether
// the key set may have changed (so that retrying the token is worthwhile).
func (k *keySource) refetch(ctx context.Context) bool {
	k.mu.Lock()
	c := k.inflight
	if c == nil {
		now := k.clock.Now()
		if k.closed || (!k.lastDemand.IsZero() && now.Sub(k.lastDemand) < k.interval) {
			k.mu.Unlock()
			return false
		}
		k.lastDemand = now
		c = &fetchCall{done: make(chan struct{})}
		k.inflight = c
		k.wg.Add(1)
		go k.runFetch(c)
	}
	k.mu.Unlock()
	select {
	case <-c.done:
		return c.err == nil
	case <-ctx.Done():
		return false
	}
}

// runFetch runs an on-demand fetch detached from the request that caused it,
// since other requests wait on it too; Verifier.Close cancels it.
func (k *keySource) runFetch(c *fetchCall) {
	defer k.wg.Done()
	ctx, cancel := context.WithTimeout(k.base, requestTimeout)
	defer cancel()
	c.err = k.fetch(ctx)
	if c.err != nil {
		k.log.Warn("verifier: key set fetch for unknown kid failed", "err", c.err)
	}
	k.mu.Lock()
	k.inflight = nil
	k.mu.Unlock()
	close(c.done)
}

// run refetches the key set at every tick of t (made by the caller, so that
// the first tick is a period after the call whenever run starts) until ctx
// ends. A failed fetch keeps the current set: keys stay valid much longer
// than a fetch interval.
func (k *keySource) run(ctx context.Context, t *clock.Ticker) {
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.fetch(ctx); err != nil && ctx.Err() == nil {
				k.log.Warn("verifier: periodic key set fetch failed", "err", err)
			}
		}
	}
}

// forget drops the key set, so that no token verifies until the next fetch
// installs one: the keys of a log the verifier no longer follows must not
// outlive it (see Verifier.reset).
func (k *keySource) forget() {
	k.cur.Store(&keySnapshot{})
}

// fetchSoon fetches the key set in the background, at once and whatever
// the on-demand interval, unless closed.
func (k *keySource) fetchSoon() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		ctx, cancel := context.WithTimeout(k.base, requestTimeout)
		defer cancel()
		if err := k.fetch(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("verifier: key set fetch failed", "err", err)
		}
	}()
}

// close stops new on-demand fetches and waits for the one under way.
func (k *keySource) close() {
	k.mu.Lock()
	k.closed = true
	k.mu.Unlock()
	k.wg.Wait()
}
