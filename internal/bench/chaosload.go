package bench

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/bench/history"
)

// tokenInfo is an access token and the claims the checker needs.
type tokenInfo struct {
	raw, jti, sid, sub string
	sgen               int64
}

// parseToken reads the claims of a token the authority just issued (its
// signature is the verifiers' business).
func parseToken(raw string) (tokenInfo, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return tokenInfo{}, errors.New("chaos: not a JWT")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tokenInfo{}, err
	}
	var c struct {
		JTI  string `json:"jti"`
		SID  string `json:"sid"`
		Sub  string `json:"sub"`
		SGen int64  `json:"sgen"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return tokenInfo{}, err
	}
	return tokenInfo{raw: raw, jti: c.JTI, sid: c.SID, sub: c.Sub, sgen: c.SGen}, nil
}

// rtID names a refresh token in the history without writing it there.
func rtID(rt string) string {
	h := sha256.Sum256([]byte(rt))
	return hex.EncodeToString(h[:6])
}

// chaosSession is a session the load keeps alive.
type chaosSession struct {
	mu     sync.Mutex // one refresh operation at a time
	sid    string
	sub    string
	rt     string
	prevRT string    // the refresh token before rt
	rotAt  time.Time // when rt was answered
	tok    tokenInfo
	dead   atomic.Bool
}

// chaosLoad is the run's load: sessions created, refreshed and revoked,
// roles changed, and every verifier and gate probed.
type chaosLoad struct {
	cr  *chaosRun
	op  atomic.Int64
	sub atomic.Int64

	mu       sync.Mutex
	sessions []*chaosSession
	tokens   []tokenInfo // recent tokens, a ring
	revoked  []tokenInfo // recent tokens of revoked sessions and subjects, a ring
	ti, ri   int
}

const (
	chaosSubjects = 40 // subjects the sessions are spread over
	tokenRing     = 4000
	revokedRing   = 1000
	callTimeout   = 8 * time.Second
)

func newChaosLoad(cr *chaosRun) *chaosLoad { return &chaosLoad{cr: cr} }

// start runs the load's workers until ctx ends.
func (l *chaosLoad) start(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, w := range []struct {
		every time.Duration
		f     func(context.Context, *rand.Rand)
	}{
		{100 * time.Millisecond, l.create},
		{40 * time.Millisecond, l.refresh},
		{40 * time.Millisecond, l.refresh},
		{250 * time.Millisecond, l.revoke},
		{3 * time.Millisecond, l.probe},
		{3 * time.Millisecond, l.probe},
		{60 * time.Millisecond, l.probeGate},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			t := time.NewTicker(w.every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					w.f(ctx, rng)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.cr.sampleStates(ctx)
	}()
	return &wg
}

func (l *chaosLoad) node(rng *rand.Rand) *client.Client {
	return l.cr.cc.admin[rng.IntN(len(l.cr.cc.admin))]
}

func (l *chaosLoad) addToken(t tokenInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.tokens) < tokenRing {
		l.tokens = append(l.tokens, t)
	} else {
		l.tokens[l.ti%tokenRing] = t
	}
	l.ti++
}

func (l *chaosLoad) addRevoked(t tokenInfo) {
	if t.raw == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.revoked) < revokedRing {
		l.revoked = append(l.revoked, t)
	} else {
		l.revoked[l.ri%revokedRing] = t
	}
	l.ri++
}

// create signs a subject in on a random node.
func (l *chaosLoad) create(ctx context.Context, rng *rand.Rand) {
	sub := fmt.Sprintf("chaos-%d", rng.IntN(chaosSubjects))
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	e := history.Event{P: "load", Kind: history.KindSession, Sub: sub, Start: l.cr.h.Now()}
	t, err := l.node(rng).CreateSession(cctx, client.SessionRequest{Subject: sub, Device: "chaos", Claims: map[string]any{"role": "user"}})
	e.T = l.cr.h.Now()
	if err != nil {
		if ctx.Err() == nil {
			e.Detail = err.Error()
			l.cr.h.Add(e)
		}
		return
	}
	ti, err := parseToken(t.AccessToken)
	if err != nil {
		return
	}
	e.OK, e.SID, e.Tok, e.SGen, e.NewRT = true, t.SessionID, ti.jti, ti.sgen, rtID(t.RefreshToken)
	l.cr.h.Add(e)
	l.addToken(ti)
	s := &chaosSession{sid: t.SessionID, sub: sub, rt: t.RefreshToken, rotAt: time.Now(), tok: ti}
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
}

// pick returns a random live session, dropping dead ones it meets.
func (l *chaosLoad) pick(rng *rand.Rand) *chaosSession {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.sessions) > 0 {
		i := rng.IntN(len(l.sessions))
		s := l.sessions[i]
		if !s.dead.Load() {
			return s
		}
		l.sessions[i] = l.sessions[len(l.sessions)-1]
		l.sessions = l.sessions[:len(l.sessions)-1]
	}
	return nil
}

// refresh rotates a session's refresh token: usually once, sometimes
// from two or three tabs at once (to different nodes), and now and then
// presents the token before the current one, as a thief would.
func (l *chaosLoad) refresh(ctx context.Context, rng *rand.Rand) {
	s := l.pick(rng)
	if s == nil || !s.mu.TryLock() {
		return
	}
	defer s.mu.Unlock()
	if s.dead.Load() {
		return
	}
	if s.prevRT != "" && time.Since(s.rotAt) > refreshGrace+2*time.Second && rng.IntN(50) == 0 {
		l.refreshOnce(ctx, rng, s, s.prevRT)
		return
	}
	tabs := 1
	if rng.IntN(5) == 0 {
		tabs = 2 + rng.IntN(2)
	}
	var wg sync.WaitGroup
	rt := s.rt
	for range tabs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.refreshOnce(ctx, rand.New(rand.NewPCG(rng.Uint64(), 1)), s, rt)
		}()
	}
	wg.Wait()
}

// refreshOnce presents rt once and records the answer; a new refresh
// token becomes the session's. Callers hold s.mu; concurrent tabs of one
// operation share it.
func (l *chaosLoad) refreshOnce(ctx context.Context, rng *rand.Rand, s *chaosSession, rt string) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	e := history.Event{P: "load", Kind: history.KindRefresh, SID: s.sid, Sub: s.sub, RT: rtID(rt), Start: l.cr.h.Now()}
	t, err := l.node(rng).Refresh(cctx, rt)
	e.T = l.cr.h.Now()
	switch {
	case errors.Is(err, client.ErrInvalidGrant):
		e.Verdict = history.InvalidGrant
		s.dead.Store(true)
		l.addRevoked(l.latest(s)[0])
	case err != nil:
		if ctx.Err() != nil {
			return
		}
		e.Verdict, e.Detail = history.Indefinite, err.Error()
	default:
		ti, perr := parseToken(t.AccessToken)
		if perr != nil {
			return
		}
		e.OK, e.NewRT, e.Tok, e.SGen = true, rtID(t.RefreshToken), ti.jti, ti.sgen
		l.addToken(ti)
		l.mu.Lock()
		if s.rt == rt {
			s.prevRT, s.rt, s.rotAt, s.tok = rt, t.RefreshToken, time.Now(), ti
		}
		l.mu.Unlock()
	}
	l.cr.h.Add(e)
}
