package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/bench/history"
	"github.com/tegata-dev/tegata/internal/clock"
	"github.com/tegata-dev/tegata/verifier"
)

// vslot is one of the run's in-process verifiers: its links to the nodes
// stay while the nemesis restarts the verifier behind them from nothing.
type vslot struct {
	i     int
	name  string
	links []*link
	urls  []string // the links' URLs, its own node first

	restart sync.Mutex // one restart at a time
	v       atomic.Pointer[verifier.Verifier]
}

// feedKeys are the feed API keys of the verifier groups (apiKeyGroupSize
// verifiers each), replaced when the nemesis revokes one.
type feedKeys struct {
	mu   sync.Mutex
	keys []client.APIKey
	n    int
}

func (k *feedKeys) get(group int) string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.keys[group].Key
}

// renew creates a new key for group and returns the old one.
func (k *feedKeys) renew(ctx context.Context, admin *client.Client, group int) (old client.APIKey, err error) {
	k.mu.Lock()
	k.n++
	name := fmt.Sprintf("chaos-feed-%d-%d", group, k.n)
	k.mu.Unlock()
	nk, err := admin.CreateAPIKey(ctx, client.APIKeyRequest{Name: name, Role: client.RoleFeed})
	if err != nil {
		return client.APIKey{}, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if group < len(k.keys) {
		old = k.keys[group]
		k.keys[group] = nk
	} else {
		k.keys = append(k.keys, nk)
	}
	return old, nil
}

// startVerifiers makes every verifier's links and key group, then starts
// the verifiers, a few at a time.
func (cr *chaosRun) startVerifiers(ctx context.Context) error {
	cr.keys = &feedKeys{}
	for g := range (cr.cfg.Verifiers + apiKeyGroupSize - 1) / apiKeyGroupSize {
		if _, err := cr.keys.renew(ctx, cr.cc.admin[0], g); err != nil {
			return fmt.Errorf("chaos: feed key of group %d: %w", g, err)
		}
	}
	for i := range cr.cfg.Verifiers {
		ls, urls, err := cr.cc.links()
		if err != nil {
			return err
		}
		cr.vs = append(cr.vs, &vslot{i: i, name: fmt.Sprintf("v%d", i), links: ls, urls: rotate(urls, i)})
	}
	for i := range cr.cfg.Gates {
		cr.h.Add(history.Event{P: cr.cc.gates[i].name, Kind: history.KindStart, StaleMS: cr.cfg.StaleAfter.Milliseconds(), Detail: "gate process"})
	}
	sem := make(chan struct{}, 16)
	errs := make(chan error, len(cr.vs))
	for _, s := range cr.vs {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- cr.startVerifier(ctx, s, 0)
		}()
	}
	var first error
	for range cr.vs {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// verifierCache is each verifier's cache of verified tokens: small, so
// that it fills early in the run and the harness's memory bound measures
// leaks rather than caches filling.
const verifierCache = 256

// startVerifier starts slot s's verifier from nothing, its clock off by
// skew, and waits (bounded by ctx) until it has opened its feed.
func (cr *chaosRun) startVerifier(ctx context.Context, s *vslot, skew time.Duration) error {
	s.restart.Lock()
	defer s.restart.Unlock()
	if old := s.v.Swap(nil); old != nil {
		old.Close()
	}
	cr.h.Add(history.Event{P: s.name, Kind: history.KindStart, StaleMS: cr.cfg.StaleAfter.Milliseconds(), SkewMS: skew.Milliseconds(), Detail: "in-process verifier"})
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg := verifier.Config{Authorities: s.urls, APIKey: cr.keys.get(s.i / apiKeyGroupSize),
		StaleAfter: cr.cfg.StaleAfter, Name: "chaos-" + s.name, CacheSize: verifierCache, Logger: slog.New(slog.DiscardHandler)}
	cfg.Clock = clock.Offset(clock.Real, skew)
	v, err := verifier.New(sctx, cfg)
	if err != nil {
		return fmt.Errorf("chaos: verifier %s: %w", s.name, err)
	}
	s.v.Store(v)
	return nil
}

// stopVerifiers closes the links first, so that no verifier waits on a
// connection held in one, then the verifiers.
func (cr *chaosRun) stopVerifiers() {
	for _, s := range cr.vs {
		for _, l := range s.links {
			l.close()
		}
	}
	var wg sync.WaitGroup
	for _, s := range cr.vs {
		if v := s.v.Swap(nil); v != nil {
			wg.Go(func() { v.Close() })
		}
	}
	wg.Wait()
}

// verify asks slot s about t and records the verdict; false when no
// verifier runs in the slot now.
func (cr *chaosRun) verify(ctx context.Context, s *vslot, t tokenInfo, final bool, detail string, op int64) (string, bool) {
	v := s.v.Load()
	if v == nil {
		return "", false
	}
	e := history.Event{P: s.name, Kind: history.KindVerify, Tok: t.jti, SID: t.sid, Sub: t.sub, SGen: t.sgen, Final: final, Detail: detail, Op: op}
	e.Pos = v.State().Position
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	e.Start = cr.h.Now()
	_, err := v.Verify(cctx, t.raw)
	e.T = cr.h.Now()
	e.PosAfter = v.State().Position
	e.Verdict = verdictOf(err)
	cr.h.Add(e)
	return e.Verdict, true
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func verdictOf(err error) string {
	switch {
	case err == nil:
		return history.Accept
	case errors.Is(err, verifier.ErrRevoked):
		return history.Revoked
	case errors.Is(err, verifier.ErrStale):
		return history.Stale
	}
	return history.Other
}

// gateVerify asks gate g about t through its forward-auth endpoint and
// records the verdict.
func (cr *chaosRun) gateVerify(ctx context.Context, g int, t tokenInfo, final bool, detail string, op int64) string {
	e := history.Event{P: cr.cc.gates[g].name, Kind: history.KindVerify, Tok: t.jti, SID: t.sid, Sub: t.sub, SGen: t.sgen, Final: final, Detail: detail, Op: op}
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	e.Start = cr.h.Now()
	revoked, err := revokedAt(cctx, cr.cc.hc, cr.cc.gateURL[g], t.raw)
	e.T = cr.h.Now()
	switch {
	case err == nil && revoked:
		e.Verdict = history.Revoked
	case err == nil:
		e.Verdict = history.Accept
	case errors.Is(err, errRejected) && containsAny(err.Error(), "not in sync"):
		e.Verdict = history.Stale
	case errors.Is(err, errRejected):
		e.Verdict, e.Detail = history.Other, err.Error()
	default:
		e.Verdict = history.Indefinite
	}
	cr.h.Add(e)
	return e.Verdict
}

// sampleStates records every verifier's state each second until ctx ends.
func (cr *chaosRun) sampleStates(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range cr.vs {
			if v := s.v.Load(); v != nil {
				// T before the state is read, the position after it: the
				// rules then hold the verifier to less than it claimed.
				at := cr.h.Now()
				st := v.State()
				cr.h.Add(history.Event{T: at, P: s.name, Kind: history.KindState, Ready: st.Ready, PosAfter: v.State().Position})
			}
		}
	}
}
