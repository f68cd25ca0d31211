package authority

import (
	"context"
	"errors"
	"fmt"
	"github.com/tegata-dev/tegata/internal/clock"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/verifier"
)

// Authority issues and revokes tokens over a store.Store.
type Authority struct {
	cfg       Config
	store     store.Store
	log       *slog.Logger
	keySealer *sealer // signing keys at rest
	tokSealer *sealer // refresh successors kept for the grace window
	rxSealer  *sealer // credentials of Shared Signals receivers
	keys      atomic.Pointer[keyring]
	apiKeys   apiKeyCache
	lists     atomic.Pointer[listLayout] // nil when status lists are disabled

	// set is this process's own revocation set: revocations made here are
	// applied before the call returns, and the log follower applies those
	// of other nodes. local answers introspection with the same code apps
	// embed.
	set   *revocation.Set
	local atomic.Pointer[verifier.Verifier] // rebuilt when the longest lifetime changes (lifetimes.go)
	// console is local's twin for the operator console's tokens
	// (ConsoleAudience), rebuilt with it: same set and keys, its own cache.
	console atomic.Pointer[verifier.Verifier]
	life    lifetimes
	// applied is the highest log seq applied to set.
	applied atomic.Int64
	// caughtUp is when the log was last read to its end (Unix nanoseconds).
	caughtUp atomic.Int64
	// observed is when Observe last found the set current (Unix
	// nanoseconds); ahead is the last head it found ahead of applied, and
	// observedAhead asks Run to read the log up to it (buffer of one,
	// never blocks).
	observed      atomic.Int64
	ahead         atomic.Int64
	observedAhead chan struct{}
	// count counts the revocations recorded here, for metrics.
	count counters
	// proofs checks the DPoP proofs sent to sign-in and refresh; nonces
	// is set with Config.DPoPNonce.
	proofs *dpop.Checker
	nonces *dpop.Nonces
}

// New opens an authority over st. masterKey (MasterKeySize bytes) encrypts
// signing keys and refresh successors at rest. It loads the signing keys,
// creating the first one on a fresh store, and the live revocations.
func New(ctx context.Context, st store.Store, masterKey []byte, cfg Config) (*Authority, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := &Authority{cfg: cfg, store: st, log: cfg.Logger, set: revocation.NewSet(0), observedAhead: make(chan struct{}, 1)}
	var err error
	others := cfg.OtherMasterKeys
	if a.nonces, err = dpopNonces(cfg.DPoPNonce, masterKey, others); err != nil {
		return nil, err
	}
	a.proofs = dpop.NewChecker(dpop.Config{Nonces: a.nonces})
	if a.keySealer, err = newSealer(masterKey, "signing keys", others...); err != nil {
		return nil, err
	}
	if a.tokSealer, err = newSealer(masterKey, "refresh successors", others...); err != nil {
		return nil, err
	}
	if a.rxSealer, err = newSealer(masterKey, "event receiver credentials", others...); err != nil {
		return nil, err
	}
	if len(others) > 0 {
		if err := a.reseal(ctx); err != nil {
			return nil, err
		}
	}
	// The lifetimes first: how long retired keys stay published depends
	// on them.
	if err := a.startLifetimes(ctx); err != nil {
		return nil, err
	}
	if err := a.reloadKeys(ctx); err != nil {
		return nil, err
	}
	a.noteAlgorithm()
	if a.statusListsOn() {
		if err := a.loadStatusLists(ctx); err != nil {
			return nil, err
		}
	}
	if err := a.catchUp(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Config returns the effective configuration (defaults filled in).
func (a *Authority) Config() Config { return a.cfg }

// Verifier returns the in-process verifier of the apps' tokens, which sees
// every revocation made through this Authority before the revoking call
// returns. It refuses the operator console's tokens (ConsoleAudience).
func (a *Authority) Verifier() *verifier.Verifier { return a.local.Load() }

// ConsoleVerifier is Verifier for the operator console's tokens: it
// accepts ConsoleAudience alone, so never an app's token.
func (a *Authority) ConsoleVerifier() *verifier.Verifier { return a.console.Load() }

// Run keeps the authority current until ctx ends: it follows the revocation
// log written by other nodes, reloads keys (rotation is a function of time
// and of other nodes' writes) and deletes what has expired.
func (a *Authority) Run(ctx context.Context) error {
	wake, stop := a.store.Subscribe()
	defer stop()
	follow := clock.NewTicker(a.cfg.Clock, followEvery)
	defer follow.Stop()
	reload := clock.NewTicker(a.cfg.Clock, reloadEvery)
	defer reload.Stop()
	sweep := clock.NewTicker(a.cfg.Clock, sweepEvery)
	defer sweep.Stop()
	// Wake-ups are paced on the authority's clock, as the tickers are: on
	// a test's stopped clock a read put off by catchUpGap happens once
	// the test moves the clock.
	clk := a.cfg.Clock
	var read time.Time         // when catchUp last ran for a wake-up
	var later <-chan time.Time // a catchUp put off after a wake-up
	// Under load the log grows with every batch this node commits,
	// hundreds of times a second, and its own entries are applied
	// already: one read per catchUpGap keeps up with other nodes.
	woken := func() error {
		if d := catchUpGap - clk.Now().Sub(read); d > 0 {
			if later == nil {
				later = clock.After(clk, d)
			}
			return nil
		}
		read = clk.Now()
		return a.catchUp(ctx)
	}
	for {
		var err error
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
			err = woken()
		case <-a.observedAhead:
			// The wake-up of the same append has usually been read by now.
			if a.ahead.Load() > a.applied.Load() {
				err = woken()
			}
		case <-later:
			later = nil
			read, err = clk.Now(), a.catchUp(ctx)
		case <-follow.C:
			if !a.observedLately() {
				err = a.catchUp(ctx)
			}
		case <-reload.C:
			err = a.reload(ctx)
			a.probeWrites(ctx)
		case <-sweep.C:
			a.Sweep(ctx)
		}
		if err != nil && ctx.Err() == nil {
			a.log.Warn("authority background work failed", "err", err)
		}
	}
}

// Observe tells the authority that another reader of the log in this
// process (the feed hub, at every heartbeat) has just read its head, so
// that the authority's own periodic read can ride on that one: a head it
// has applied up to shows its set current, and one ahead of it has Run
// read the log at once, as a wake-up does (appends whose notification was
// lost). While heads come at least every followEvery, Run's ticks read
// nothing; without them (no hub, or its reads fail) they read as before.
// Safe for concurrent use.
func (a *Authority) Observe(head int64) {
	if head > a.applied.Load() {
		a.ahead.Store(head)
		select {
		case a.observedAhead <- struct{}{}:
		default:
		}
		return
	}
	now := a.cfg.Clock.Now().UnixNano()
	a.observed.Store(now)
	a.caughtUp.Store(now)
}

// observedLately reports whether Observe found the set current within the
// last two followEvery: one missed or late head, a tick that fires just
// before the head comes, still spares the read.
func (a *Authority) observedLately() bool {
	return a.cfg.Clock.Now().Sub(time.Unix(0, a.observed.Load())) < 2*followEvery
}

// reload renews this node's lifetime lease, reads every node's, and
// reloads the keys.
func (a *Authority) reload(ctx context.Context) error {
	now := a.cfg.Clock.Now()
	if err := a.ensureLease(ctx, now); err != nil {
		return err
	}
	if _, err := a.readLeases(ctx, now); err != nil {
		return err
	}
	return a.reloadKeys(ctx)
}

// The periodic work of Run, on the authority's clock: reading the log in
// case a wake-up was lost (unless Observe showed it current); renewing
// this node's lease, reading the others' and reloading the keys; sweeping
// what has expired.
const (
	followEvery = time.Second
	reloadEvery = 5 * time.Second
	sweepEvery  = time.Minute
)

// catchUpGap is the least time between two reads of the log started by
// wake-ups: how much later than the feed this node's own revocation set
// may learn of another node's revocation.
const catchUpGap = 10 * time.Millisecond

// catchUpBatch is the most log entries catchUp reads at once.
const catchUpBatch = 1000

// catchUp applies log entries written since the last one applied.
func (a *Authority) catchUp(ctx context.Context) error {
	for {
		entries, err := a.store.EntriesAfter(ctx, a.applied.Load(), catchUpBatch)
		if err != nil {
			return fmt.Errorf("authority: read revocation log: %w", err)
		}
		now := a.cfg.Clock.Now()
		for _, e := range entries {
			if e.ExpiresAt.After(now) {
				a.applyLocal(e)
			}
			a.applied.Store(e.Seq)
		}
		// A short read reached the end of the log: reading again to see
		// nothing would cost a query per commit under load.
		if len(entries) < catchUpBatch {
			a.caughtUp.Store(now.UnixNano())
			return nil
		}
	}
}

// StaleAfter bounds how long this node may go without reading the
// revocation log to its end before it stops vouching for tokens by
// introspection: a node cut off from the database cannot see revocations
// recorded by other nodes.
const StaleAfter = 10 * time.Second

// ErrStale: this node has not read the revocation log recently enough to
// answer for a token's revocation state.
var ErrStale = errors.New("authority: revocation state is stale (cannot read the revocation log)")

// fresh reports whether the revocation set is known to be current.
func (a *Authority) fresh() error {
	if a.cfg.Clock.Now().Sub(time.Unix(0, a.caughtUp.Load())) > StaleAfter {
		return ErrStale
	}
	return nil
}

// Ready reports whether this node can do its job: it has read the
// revocation log to its end within StaleAfter (so its store answers), a
// signing key is active, and its store accepts writes (no refusal since
// the last write probe succeeded). The error says which is wrong, naming
// no host.
func (a *Authority) Ready() error {
	if err := a.fresh(); err != nil {
		return fmt.Errorf("%w for more than %v", err, StaleAfter)
	}
	if _, ok := a.ring().current(a.cfg.Clock.Now()); !ok {
		return errNoSigningKey
	}
	return a.unwritable()
}

func (a *Authority) applyLocal(e revocation.Entry) {
	// The local set is unbounded (NewSet(0)); an error here is a bug.
	if err := a.set.Apply(e); err != nil {
		a.log.Error("apply revocation locally", "seq", e.Seq, "err", err)
	}
}

// Sweep forgets what has expired: revocations no token can need any more,
// sessions, refresh tokens and keys. Run calls it every minute.
func (a *Authority) Sweep(ctx context.Context) {
	now := a.cfg.Clock.Now()
	a.set.Prune(now)
	steps := []struct {
		what string
		fn   func() (int64, error)
	}{
		{"expired sessions", func() (int64, error) { return a.store.DeleteExpired(ctx, now) }},
		// The feed sends entries for a leeway past their expiry (to
		// verifiers whose clock is behind), so the log keeps them that long.
		{"expired revocations", func() (int64, error) {
			return a.store.PruneLog(ctx, now.Add(-a.cfg.Leeway), now.Add(-a.cfg.EventRetention))
		}},
		{"expired keys", func() (int64, error) {
			return a.store.DeleteKeysRetiredBefore(ctx, now.Add(-a.keyWindow()))
		}},
		{"expired lifetime leases", func() (int64, error) {
			return a.store.PruneLifetimeLeases(ctx, now.Add(-a.cfg.Leeway))
		}},
	}
	if a.statusListsOn() {
		steps = append(steps, struct {
			what string
			fn   func() (int64, error)
		}{"status list entries", func() (int64, error) { return 0, a.sweepSlots(ctx, now) }})
	}
	for _, s := range steps {
		n, err := s.fn()
		if err != nil {
			a.log.Warn("sweep failed", "what", s.what, "err", err)
		} else if n > 0 {
			a.log.Debug("swept", "what", s.what, "rows", n)
		}
	}
}
