package verifier

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/internal/dpop"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/validity"
	"github.com/tegata-dev/tegata/token"
)

// Verifier verifies access tokens. Build it with New (apps' tests:
// verifiertest).
type Verifier struct {
	cfg settings
	// expect is what token.Verify checks; its MaxLifetime and Leeway follow
	// what the authority publishes (published.go).
	expect     atomic.Pointer[token.Expect]
	now        func() time.Time
	log        *slog.Logger
	lookup     func() token.KeyLookup
	set        *revocation.Set
	cache      *cache // nil when disabled
	overflow   atomic.Bool
	heard      atomic.Pointer[heard] // what the feed last said, see follow.go
	configWarn configWarner
	// seenReady: the state was current at some look of watch.
	seenReady atomic.Bool

	// proofs checks DPoP proofs; nonces is set with Config.DPoPNonce.
	proofs *dpop.Checker
	nonces *dpop.Nonces
	// acceptBound: Verify accepts DPoP-bound tokens without a proof (the
	// authority's own introspection, localverifier.Source.AcceptBound).
	acceptBound bool
	// noPublicURLInfo: the first Middleware without Config.PublicURL says
	// that it refuses DPoP requests.
	noPublicURLInfo sync.Once

	// Set by New only; nil for a local verifier.
	key       atomic.Pointer[string] // the API key (SetAPIKey)
	auth      *authorities
	keys      *keySource
	feed      *feed.Client
	skew      *skewWatch
	bg        context.Context // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	// transports are those New made (unused when Config.HTTPClient has
	// one): Close closes their idle connections, which would otherwise
	// stay open to the authority.
	transports []*http.Transport
}

// New returns a Verifier that follows the authorities in cfg. It fetches the
// openid-configuration and the key set, then opens the revocation feed, and
// returns once an authority has accepted the API key on the feed. It does
// not wait for the feed to catch up: call WaitReady before serving if tokens
// must not be refused (or introspected) during the first moments.
//
// Errors that waiting cannot fix are returned at once: a malformed
// Config (an authority that is not an http(s) URL, an empty APIKey or one
// starting with "Bearer "), and an API key every authority refuses on the
// feed (ErrKeyRefused). Anything else, such as an authority that is not up
// yet, is retried with backoff and logged until ctx ends: ctx bounds the
// start-up (context.Background waits for as long as it takes), and only
// the start-up; the background work runs until Close.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.Local != nil {
		return newLocalVerifier(cfg)
	}
	return newTuned(ctx, cfg, tuning{})
}

// newTuned is New with the background intervals t.
func newTuned(ctx context.Context, c Config, t tuning) (*Verifier, error) {
	cfg, err := c.checked(t)
	if err != nil {
		return nil, err
	}
	skew := &skewWatch{now: cfg.Clock.Now, log: cfg.Logger}
	requests, own := requestTransport()
	auth := newAuthorities(cfg.Authorities, skew.client(cfg.HTTPClient, requests))
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	keys := &keySource{base: bg, auth: auth, clock: cfg.Clock, log: cfg.Logger, interval: cfg.unknownKidInterval}
	d, err := fetchStart(ctx, auth, keys, cfg)
	if err == nil {
		err = cfg.adopt(d)
	}
	if err != nil {
		cancel()
		closeIdle(own)
		return nil, err
	}
	v := newVerifier(cfg, keys.lookup, revocation.NewSet(cfg.MaxEntries))
	v.auth, v.keys, v.bg, v.cancel, v.skew = auth, keys, bg, cancel, skew
	v.key.Store(&cfg.APIKey)
	leeway := func() time.Duration { return v.expect.Load().Leeway }
	skew.leeway.Store(&leeway)
	skew.check()
	keys.published = v.follow
	feedTransport := feed.DefaultTransport()
	v.transports = append(own, feedTransport)
	v.feed = &feed.Client{
		URLs:       cfg.Authorities,
		APIKey:     cfg.APIKey,
		HTTPClient: skew.client(cfg.HTTPClient, feedTransport),
		ApplyMany:  v.applyMany,
		Grow:       v.set.Grow,
		Reset:      v.reset,
		Clock:      cfg.Clock,
		Logger:     cfg.Logger,
		RetryMin:   cfg.feedRetryMin,
		RetryMax:   cfg.feedRetryMax,
		Follower: &feed.Follower{ID: feed.NewFollowerID(), Name: cfg.Name, Host: hostname(),
			Version: moduleVersion(), StaleAfter: cfg.StaleAfter},
		Ready:   v.complete,
		Issuer:  cfg.Issuer,
		OnNodes: auth.set,
	}
	keys.accept = v.acceptKeys
	v.start(bg)
	if err := v.waitOpened(ctx); err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// newLocalVerifier returns a Verifier over c.Local: a key set and a revocation set
// that the caller keeps current (the authority verifying its own tokens,
// verifiertest). A local verifier is never stale, starts no goroutine and
// ignores Authorities, APIKey, StaleAfter, Introspect, MaxEntries,
// JWKSRefresh and HTTPClient. Config.Issuer must be set: there is no
// discovery to take it from, and an empty expected issuer matches no token.
// MaxLifetime defaults to one hour.
func newLocalVerifier(c Config) (*Verifier, error) {
	if c.Issuer == "" {
		return nil, errors.New("verifier: a local verifier needs Config.Issuer (there is no discovery to take it from)")
	}
	if err := checkCannotBeOff(c); err != nil {
		return nil, err
	}
	cfg := c.settings(tuning{})
	if cfg.MaxLifetime == 0 {
		cfg.MaxLifetime = DefaultMaxLifetime
	}
	v := newVerifier(cfg, c.Local.Keys, c.Local.Set)
	v.acceptBound = c.Local.AcceptBound
	return v, nil
}

func newVerifier(cfg settings, keys func() token.KeyLookup, set *revocation.Set) *Verifier {
	v := &Verifier{
		cfg:    cfg,
		now:    cfg.Clock.Now,
		log:    cfg.Logger,
		lookup: keys,
		set:    set,
		cache:  newCache(cfg.CacheSize),
	}
	if cfg.DPoPNonce > 0 {
		v.nonces = dpop.NewNonces(cfg.DPoPNonce)
	}
	v.proofs = dpop.NewChecker(dpop.Config{Window: cfg.DPoPWindow, MaxProofs: cfg.DPoPMaxProofs, Nonces: v.nonces})
	e := cfg.expect()
	v.expect.Store(&e)
	v.heard.Store(&heard{})
	return v
}

// start runs the background goroutines of a remote verifier.
func (v *Verifier) start(ctx context.Context) {
	v.wg.Add(4)
	// The tickers are made here, not in the goroutines, so that a clock
	// moved on right after New (tests do) reaches them.
	keysTick := clock.NewTicker(v.cfg.Clock, v.cfg.JWKSRefresh)
	pruneTick := clock.NewTicker(v.cfg.Clock, defaultPruneEvery)
	watchTick := clock.NewTicker(v.cfg.Clock, defaultWatchEvery)
	go func() {
		defer v.wg.Done()
		if err := v.feed.Run(ctx); err != nil && ctx.Err() == nil {
			v.log.Error("verifier: feed stopped", "err", err)
		}
	}()
	go func() {
		defer v.wg.Done()
		v.keys.run(ctx, keysTick)
	}()
	go func() {
		defer v.wg.Done()
		v.pruneLoop(ctx, pruneTick)
	}()
	go func() {
		defer v.wg.Done()
		v.watch(ctx, watchTick)
	}()
}

// requestTransport returns the transport of the requests other than the
// feed's when Config.HTTPClient has none: a copy of http.DefaultTransport,
// which the Verifier owns (own), or http.DefaultTransport itself when an
// app replaced it with a RoundTripper of its own (a tracing wrapper, say),
// which the Verifier then uses as it is and leaves open.
func requestTransport() (t http.RoundTripper, own []*http.Transport) {
	d, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return http.DefaultTransport, nil
	}
	c := d.Clone()
	return c, []*http.Transport{c}
}

func closeIdle(ts []*http.Transport) {
	for _, t := range ts {
		t.CloseIdleConnections()
	}
}

// Close stops the background goroutines and waits for them. The Verifier
// must not be used afterwards. Close on a local verifier does nothing.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() {
		if v.cancel == nil {
			return
		}
		v.cancel()
		v.wg.Wait()
		v.keys.close()
		closeIdle(v.transports)
	})
	return nil
}

// Verify checks raw and returns its claims, or an error wrapping one of the
// package's sentinels. In order: the size; then either a cache hit (a token
// verified before, whose key is still published, re-checked against the
// clock) or token.Verify with the current key set, fetching the key set
// again once if the kid is unknown; then the revocation set (ErrRevoked);
// then whether that set can be trusted: if the feed is stale or the set is
// full, the authority is asked (Config.Introspect) or ErrStale returned.
//
// The claims are immutable and shared with the cache: a token verified
// before costs no allocation. ctx bounds the network calls Verify may make
// (a key set fetch for an unknown kid, introspection); with a current state
// and a known key it makes none.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	c, err := v.verify(ctx, raw, v.now())
	if err == nil && c.t.JKT != "" && !v.acceptBound {
		err = errBoundAsBearer
	}
	if err != nil {
		v.logRejection(ctx, c, err)
		return nil, err
	}
	return c, nil
}

// verify runs the pipeline. On error it still returns the claims if the
// token got far enough to have them, for the log.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Claims, error) {
	e, err := v.verifyEntry(ctx, raw, now)
	if e == nil {
		return nil, err
	}
	return e.claims, err
}

// verifyEntry is verify returning the token's cache entry (nil when the
// token did not get as far as its claims).
func (v *Verifier) verifyEntry(ctx context.Context, raw string, now time.Time) (*cached, error) {
	if len(raw) > v.expect.Load().MaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(raw))
	}
	e := v.cached(raw, now)
	if e == nil {
		var err error
		if e, err = v.verifyToken(ctx, raw, now); err != nil {
			return nil, err
		}
	}
	return e, v.checkRevocation(ctx, raw, e, now)
}

// cached returns the entry of raw if it was verified before, is still
// within its validity period under the current rules, and its key is still
// published. It returns nil on a miss, and a token outside its window is
// one: token.Verify then gives the precise error. It does not allocate.
func (v *Verifier) cached(raw string, now time.Time) *cached {
	if v.cache == nil {
		return nil
	}
	e := v.cache.get(raw)
	if e == nil {
		return nil
	}
	if n := now.UnixNano(); v.expect.Load() == e.expect && n >= e.from && n <= e.until && v.stillPublished(e) {
		return e
	}
	// Withdrawn key, other rules, or outside the window: verify afresh,
	// which fails (or refetches the key set), or caches the token again
	// under the current rules.
	v.cache.remove(raw)
	return nil
}

// stillPublished reports whether the key that verified a cached token is
// in the current key set: at once if the set is the one it was verified
// with (a *token.KeySet never changes once built), else by looking it up.
func (v *Verifier) stillPublished(e *cached) bool {
	keys := v.lookup()
	if ks, ok := keys.(*token.KeySet); ok && ks != nil && ks == e.keys {
		return true
	}
	k, ok := keys.Lookup(e.key.ID)
	return ok && sameKey(k, e.key)
}

// verifyToken checks signature and claims with the current key set. A token
// naming an unknown kid makes a remote verifier fetch the key set again (a
// key may just have been rotated in) and retry once. The entry it returns
// is also cached, when the verifier has a cache.
func (v *Verifier) verifyToken(ctx context.Context, raw string, now time.Time) (*cached, error) {
	keys, expect := v.lookup(), v.expect.Load()
	used := &usedKey{keys: keys}
	c, err := token.Verify(raw, used, *expect, now)
	if v.refetchable(err) && v.keys.refetch(ctx) {
		keys, expect = v.lookup(), v.expect.Load()
		used = &usedKey{keys: keys}
		c, err = token.Verify(raw, used, *expect, now)
	}
	if err != nil {
		return nil, err
	}
	e := &cached{claims: newClaims(c), key: used.key, rev: v.set.Key(c.SessionID, c.Subject)}
	e.keys, _ = keys.(*token.KeySet)
	if c.JKT != "" {
		e.ath = sha256.Sum256([]byte(raw))
	}
	from, until := validity.Window(c.IssuedAt, c.NotBefore, c.Expiry, expect.Leeway, expect.MaxLifetime)
	e.expect, e.from, e.until = expect, from.UnixNano(), until.UnixNano()
	if v.cache != nil {
		// Cached under the key the verification used: a cache hit is
		// valid exactly as long as that key is still published.
		v.cache.put(raw, e, now)
	}
	return e, nil
}

// usedKey is a KeyLookup that remembers the key it returned: the one that
// verified the token, since token.Verify looks up at most once (see
// token.KeyLookup). A cached token is tied to that key, never to a kid read
// from its header apart from the verification.
type usedKey struct {
	keys token.KeyLookup
	key  token.PublicKey
}

func (u *usedKey) Lookup(kid string) (token.PublicKey, bool) {
	k, ok := u.keys.Lookup(kid)
	if ok {
		u.key = k
	}
	return k, ok
}

// checkRevocation rejects a revoked token, then makes sure the revocation
// set could be trusted to know: if the state is stale or the set is full, it
// asks the authority (Introspect) or fails closed. A revocation found locally
// is final even when the state is stale, since stale state can miss
// revocations but never invents them; so the set is consulted first and
// spares the authority a request.
func (v *Verifier) checkRevocation(ctx context.Context, raw string, e *cached, now time.Time) error {
	if kind, ok := v.set.RevokedKey(&e.rev, e.claims.t.Generation); ok {
		return fmt.Errorf("%w: %s", ErrRevoked, kind)
	}
	err := v.staleness(now)
	if err == nil {
		return nil
	}
	if !v.cfg.Introspect {
		return err
	}
	return v.auth.introspect(ctx, v.apiKey(), raw)
}
