package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/bench/history"
)

// confirmWait is the ?confirm= of the revocations that ask for one.
const confirmWait = 3 * time.Second

// revoke makes one revocation: a session, a subject signed out
// everywhere, a role change (access tokens cut off, new claims), or a
// bulk call of several; a third of them with ?confirm=.
func (l *chaosLoad) revoke(ctx context.Context, rng *rand.Rand) {
	var confirm time.Duration
	if rng.IntN(3) == 0 {
		confirm = confirmWait
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout+confirm)
	defer cancel()
	switch n := rng.IntN(20); {
	case n < 9:
		l.revokeSession(cctx, rng, confirm)
	case n < 12:
		l.revokeSubject(cctx, rng, client.ScopeSessions, nil, confirm)
	case n < 17:
		l.revokeSubject(cctx, rng, client.ScopeAccess, map[string]any{"role": fmt.Sprint("role-", rng.IntN(5))}, confirm)
	default:
		l.revokeBulk(cctx, rng, confirm)
	}
}

func (l *chaosLoad) revokeSession(ctx context.Context, rng *rand.Rand, confirm time.Duration) {
	s := l.pick(rng)
	if s == nil {
		return
	}
	s.dead.Store(true)
	e := l.revokeEvent(history.ScopeSession, confirm)
	e.SID = s.sid
	res, err := l.node(rng).RevokeSession(ctx, client.SessionRevocation{SessionID: s.sid, Confirm: confirm, Reason: "chaos"})
	l.answered(ctx, e, res, err, l.latest(s)...)
}

// tokens returns the session's latest access token.
func (l *chaosLoad) latest(s *chaosSession) []tokenInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []tokenInfo{s.tok}
}

// subjectTokens returns the latest token of each session of sub, and
// marks the sessions dead when signOut.
func (l *chaosLoad) subjectTokens(sub string, signOut bool) []tokenInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []tokenInfo
	for _, s := range l.sessions {
		if s.sub == sub && !s.dead.Load() {
			out = append(out, s.tok)
			if signOut {
				s.dead.Store(true)
			}
		}
	}
	return out
}

func (l *chaosLoad) revokeSubject(ctx context.Context, rng *rand.Rand, scope string, claims map[string]any, confirm time.Duration) {
	sub := fmt.Sprintf("chaos-%d", rng.IntN(chaosSubjects))
	toks := l.subjectTokens(sub, scope == client.ScopeSessions)
	hs := history.ScopeSubject
	if scope == client.ScopeAccess {
		hs = history.ScopeAccess
	}
	e := l.revokeEvent(hs, confirm)
	e.Sub = sub
	res, err := l.node(rng).RevokeSubject(ctx, client.SubjectRevocation{Subject: sub, Scope: scope, Claims: claims, Confirm: confirm, Reason: "chaos"})
	l.answered(ctx, e, res, err, toks...)
}

func (l *chaosLoad) revokeEvent(scope string, confirm time.Duration) history.Event {
	return history.Event{P: "load", Kind: history.KindRevoke, Scope: scope, Confirm: confirm > 0, Op: l.op.Add(1), Start: l.cr.h.Now()}
}

// answered records a revocation's answer and probes the tokens it covers.
func (l *chaosLoad) answered(ctx context.Context, e history.Event, res client.Revocation, err error, covered ...tokenInfo) {
	e.T = l.cr.h.Now()
	if err != nil {
		if ctx.Err() == nil {
			e.Detail = err.Error()
			l.cr.h.Add(e)
		}
		return
	}
	e.OK = true
	if res.Entry != nil {
		e.Seq = res.Entry.Seq
		e.SID, e.Sub, e.SGen = "", "", 0
		if res.Entry.Kind == "session" {
			e.SID = res.Entry.SessionID
		} else {
			e.Sub, e.SGen = res.Entry.Subject, res.Entry.Generation
		}
	}
	if c := res.Confirmation; c != nil {
		e.InForce = c.InForce
	}
	l.cr.h.Add(e)
	if e.Seq > 0 {
		l.covered(covered, e.Op)
	}
}

// revokeBulk revokes two to five sessions and subjects in one call.
func (l *chaosLoad) revokeBulk(ctx context.Context, rng *rand.Rand, confirm time.Duration) {
	var items []client.RevokeItem
	var events []history.Event
	var covered [][]tokenInfo
	op := l.op.Add(1)
	for range 2 + rng.IntN(4) {
		e := history.Event{P: "load", Kind: history.KindRevoke, Confirm: confirm > 0, Op: op}
		if s := l.pick(rng); s != nil && rng.IntN(2) == 0 {
			s.dead.Store(true)
			items = append(items, client.RevokeItem{SessionID: s.sid})
			e.Scope, e.SID = history.ScopeSession, s.sid
			covered = append(covered, l.latest(s))
		} else {
			sub := fmt.Sprintf("chaos-%d", rng.IntN(chaosSubjects))
			items = append(items, client.RevokeItem{Subject: sub, Scope: client.ScopeAccess})
			e.Scope, e.Sub = history.ScopeAccess, sub
			covered = append(covered, l.subjectTokens(sub, false))
		}
		events = append(events, e)
	}
	start := l.cr.h.Now()
	res, err := l.node(rng).RevokeMany(ctx, client.BulkRevocation{Items: items, Confirm: confirm, Reason: "chaos bulk"})
	end := l.cr.h.Now()
	if err != nil {
		return
	}
	for i, e := range events {
		e.Start, e.T = start, end
		if o := res.Items[i]; o.Revoked {
			e.OK, e.Seq = true, o.Seq
			e.InForce = res.Confirmation != nil && res.Confirmation.InForce
			l.cr.h.Add(e)
			l.covered(covered[i], e.Op)
		}
	}
}

// covered keeps revoked tokens for the probes and follows each to a
// sample of verifiers and every gate until they refuse it.
func (l *chaosLoad) covered(toks []tokenInfo, op int64) {
	for _, t := range toks {
		if t.raw == "" {
			continue
		}
		l.addRevoked(t)
		go l.follow(t, op)
	}
}

// follow probes t at 16 random verifiers and every gate until each has
// refused it once (or 30 seconds).
func (l *chaosLoad) follow(t tokenInfo, op int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vs := l.cr.vs
	pending := map[int]bool{}
	for range 16 {
		pending[rand.IntN(len(vs))] = true
	}
	gates := map[int]bool{}
	for g := range l.cr.cc.gates {
		gates[g] = true
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; len(pending)+len(gates) > 0; n++ {
		for i := range pending {
			if v, ok := l.cr.verify(ctx, vs[i], t, false, history.Follow, op); ok && v != history.Accept {
				delete(pending, i)
			}
		}
		for g := range gates {
			if n%5 == 0 {
				if v := l.cr.gateVerify(ctx, g, t, false, history.Follow, op); v != history.Accept && v != history.Indefinite {
					delete(gates, g)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe asks a random verifier about a random recent token, revoked or
// not.
func (l *chaosLoad) probe(ctx context.Context, rng *rand.Rand) {
	t, ok := l.randomToken(rng)
	if !ok {
		return
	}
	l.cr.verify(ctx, l.cr.vs[rng.IntN(len(l.cr.vs))], t, false, "", 0)
}

func (l *chaosLoad) probeGate(ctx context.Context, rng *rand.Rand) {
	t, ok := l.randomToken(rng)
	if !ok {
		return
	}
	l.cr.gateVerify(ctx, rng.IntN(len(l.cr.cc.gates)), t, false, "", 0)
}

func (l *chaosLoad) randomToken(rng *rand.Rand) (tokenInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.revoked) > 0 && rng.IntN(2) == 0 {
		return l.revoked[rng.IntN(len(l.revoked))], true
	}
	if len(l.tokens) == 0 {
		return tokenInfo{}, false
	}
	return l.tokens[rng.IntN(len(l.tokens))], true
}
