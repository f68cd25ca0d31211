package authority

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/localverifier"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
)

// Access token lifetimes over time.
//
// A revocation entry must be kept, by this node, the feed and every
// verifier, until no token it covers can be valid: its ExpiresAt is the
// latest exp of such a token plus the leeway. The lifetime tokens are
// minted with changes when an operator changes --access-ttl (lowering it is
// a natural step during an incident), and tokens minted under the old one
// live on. So every node records the lifetime it mints with in the store as
// a lease, "tokens of up to L may be minted until U", taken a minute ahead
// and renewed while it runs; it mints only under a lease it holds; and it
// sizes entries from every lease: ExpiresAt = max(min(now, U) + L) + leeway.
// Retired keys stay published just as long, and the longest lifetime of a
// token that can still be valid is what the node publishes
// (tegata_access_token_max_lifetime) and what its own verifier accepts.
//
// Raising the lifetime needs one more step. Other nodes read the leases
// every leasesMaxAge; a node starting with a lifetime longer than any
// recorded mints with the previous longest for raiseDelay first, so that
// no node sizes an entry without knowing a token that long may exist.

const (
	// leaseFor is how far ahead a node takes its lease; leaseRenew is how
	// much of it may be left before the node renews it.
	leaseFor   = time.Minute
	leaseRenew = 45 * time.Second
	// leasesMaxAge is how old this node's view of the leases may be when it
	// sizes an entry; older, it reads them again first.
	leasesMaxAge = 5 * time.Second
	// raiseDelay is how long a raised lifetime waits before tokens that long
	// are minted: every node has read the leases again by then.
	raiseDelay = 3 * leasesMaxAge
)

// lifetimes is the authority's part of the scheme above. Safe for
// concurrent use.
type lifetimes struct {
	view       atomic.Pointer[leaseView]
	leaseUntil atomic.Int64 // Unix nanoseconds: this node mints before it
	mu         sync.Mutex   // serialises store reads and writes of leases
	// Until raiseAt (set at start), tokens are minted with raiseFrom.
	raiseAt   time.Time
	raiseFrom time.Duration
}

// leaseView is the leases as read at readAt. Immutable.
type leaseView struct {
	leases []store.LifetimeLease
	readAt time.Time
}

// startLifetimes reads the leases, decides whether the configured lifetime
// is a raise, and takes this node's lease.
func (a *Authority) startLifetimes(ctx context.Context) error {
	now := a.cfg.Clock.Now()
	v, err := a.readLeases(ctx, now)
	if err != nil {
		return err
	}
	if prev := v.longest(now, a.cfg.Leeway); prev > 0 && a.cfg.AccessTTL > prev {
		a.life.raiseAt, a.life.raiseFrom = now.Add(raiseDelay), prev
		a.log.Info("access token lifetime raised: tokens keep the previous lifetime until every node knows",
			"lifetime", a.cfg.AccessTTL, "previous", prev, "from", a.life.raiseAt.UTC())
	}
	if err := a.renewLease(ctx, now); err != nil {
		return err
	}
	_, err = a.readLeases(ctx, now)
	return err
}

// accessTTL is the lifetime of a token minted at now.
func (a *Authority) accessTTL(now time.Time) time.Duration {
	if now.Before(a.life.raiseAt) {
		return a.life.raiseFrom
	}
	return a.cfg.AccessTTL
}

// ensureLease renews this node's lease when less than leaseRenew of it is
// left at now, so that a token minted at now is under a lease.
func (a *Authority) ensureLease(ctx context.Context, now time.Time) error {
	if now.Add(leaseRenew).UnixNano() < a.life.leaseUntil.Load() {
		return nil
	}
	return a.renewLease(ctx, now)
}

func (a *Authority) renewLease(ctx context.Context, now time.Time) error {
	a.life.mu.Lock()
	defer a.life.mu.Unlock()
	if now.Add(leaseRenew).UnixNano() < a.life.leaseUntil.Load() {
		return nil // renewed meanwhile
	}
	until := now.Add(leaseFor)
	if err := a.store.LeaseLifetime(ctx, a.cfg.AccessTTL, until); err != nil {
		return fmt.Errorf("authority: record the access token lifetime: %w", err)
	}
	a.life.leaseUntil.Store(until.UnixNano())
	return nil
}

// leased reports whether a token minted at now is under this node's lease.
func (a *Authority) leased(now time.Time) bool {
	return now.UnixNano() < a.life.leaseUntil.Load()
}

var errNoLease = fmt.Errorf("authority: no lease on the access token lifetime (the store could not record it)")

// leases returns a view of the leases read within leasesMaxAge of now.
func (a *Authority) leases(ctx context.Context, now time.Time) (*leaseView, error) {
	if v := a.life.view.Load(); v != nil && now.Sub(v.readAt) < leasesMaxAge && !now.Before(v.readAt) {
		return v, nil
	}
	return a.readLeases(ctx, now)
}

// readLeases reads the leases from the store and installs the view; when
// the longest valid lifetime changed, this node's verifier follows it.
func (a *Authority) readLeases(ctx context.Context, now time.Time) (*leaseView, error) {
	a.life.mu.Lock()
	defer a.life.mu.Unlock()
	ls, err := a.store.LifetimeLeases(ctx)
	if err != nil {
		return nil, fmt.Errorf("authority: read access token lifetimes: %w", err)
	}
	v := &leaseView{leases: ls, readAt: now}
	old := a.life.view.Swap(v)
	if old == nil || old.longest(now, a.cfg.Leeway) != v.longest(now, a.cfg.Leeway) || a.local.Load() == nil {
		life := max(a.cfg.AccessTTL, v.longest(now, a.cfg.Leeway))
		lv, err := a.newLocalVerifier(a.cfg.Audience, life)
		if err != nil {
			return nil, err
		}
		cv, err := a.newLocalVerifier(ConsoleAudience, life)
		if err != nil {
			return nil, err
		}
		a.local.Store(lv)
		a.console.Store(cv)
	}
	return v, nil
}

// longest is the longest lifetime of a token that can still be valid at
// now: of the leases under which one can (Until + Lifetime + leeway after
// now). 0 when there is none.
func (v *leaseView) longest(now time.Time, leeway time.Duration) time.Duration {
	var l time.Duration
	for _, ls := range v.leases {
		if ls.Until.Add(ls.Lifetime + leeway).After(now) {
			l = max(l, ls.Lifetime)
		}
	}
	return l
}

// coverUntil is the ExpiresAt of an entry written at now: the latest exp of
// any token minted so far (by any node, under any lifetime), plus the
// leeway.
func (a *Authority) coverUntil(ctx context.Context, now time.Time) (time.Time, error) {
	v, err := a.leases(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	end := now.Add(a.cfg.AccessTTL)
	for _, l := range v.leases {
		end = maxTime(end, minTime(now, l.Until).Add(l.Lifetime))
	}
	return end.Add(a.cfg.Leeway), nil
}

// MaxLifetime is the longest lifetime of an access token that can still be
// valid: this node's, or a longer one recorded by any node (before the
// lifetime was lowered) whose tokens have not all expired. Verifiers must
// accept tokens that long; it is published as
// tegata_access_token_max_lifetime.
func (a *Authority) MaxLifetime() time.Duration {
	l := a.cfg.AccessTTL
	if v := a.life.view.Load(); v != nil {
		l = max(l, v.longest(a.cfg.Clock.Now(), a.cfg.Leeway))
	}
	return l
}

// keyWindow is how long after it stops signing a key stays published: the
// longest lifetime recorded, plus the leeway.
func (a *Authority) keyWindow() time.Duration {
	l := a.cfg.AccessTTL
	if v := a.life.view.Load(); v != nil {
		for _, ls := range v.leases {
			l = max(l, ls.Lifetime)
		}
	}
	return l + a.cfg.Leeway
}

// newLocalVerifier is a verifier of this node for tokens of audience
// (the apps' or ConsoleAudience), accepting tokens of up to maxLifetime.
// It is rebuilt when that changes (its cache starts empty).
func (a *Authority) newLocalVerifier(audience string, maxLifetime time.Duration) (*verifier.Verifier, error) {
	cfg := verifier.Config{
		Issuer:      a.cfg.Issuer,
		Audience:    audience,
		Algorithms:  []string{token.EdDSA, token.ES256},
		Leeway:      a.cfg.Leeway,
		MaxLifetime: maxLifetime,
		Logger:      a.cfg.Logger,
	}
	cfg.Clock = a.cfg.Clock
	cfg.Local = &localverifier.Source{Keys: func() token.KeyLookup { return a.ring() }, Set: a.set, AcceptBound: true}
	v, err := verifier.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("authority: build the local verifier: %w", err)
	}
	return v, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
