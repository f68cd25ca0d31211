package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// The second phase of Propagation: revocations that wait until they are in
// force on every gate (?confirm=), alternating nodes. The call's latency is
// what an operator waits; right after each call, every gate is asked once
// about the revoked token, and each must refuse it: no polling, no retry.
// Every other revocation of the phase is a plain one, so that the cost of
// waiting is seen next to the plain call under the same load.

func (p *propagationRun) confirmAll(ctx context.Context, toks []client.Tokens) {
	schedule(ctx, toks, p.cfg.ConfirmRate, func(ctx context.Context, i int, t client.Tokens) {
		if i%2 == 1 {
			p.plainOne(ctx, i, t)
			return
		}
		p.confirmOne(ctx, i, t)
	})
}

// plainOne revokes without confirm and records the call's latency.
func (p *propagationRun) plainOne(ctx context.Context, i int, t client.Tokens) {
	sent := time.Now()
	_, err := p.c.clients[i%len(p.c.clients)].RevokeSession(ctx, client.SessionRevocation{SessionID: t.SessionID, Reason: "bench plain"})
	if err != nil {
		p.failf("plain revocation %d of the confirm phase: %v", i, err)
		return
	}
	p.plain.add(time.Since(sent))
}

func (p *propagationRun) confirmOne(ctx context.Context, i int, t client.Tokens) {
	sent := time.Now()
	r, err := p.c.clients[i%len(p.c.clients)].RevokeSession(ctx, client.SessionRevocation{
		SessionID: t.SessionID, Reason: "bench confirm", Confirm: p.cfg.ConfirmWait})
	took := time.Since(sent)
	switch {
	case err != nil:
		p.failf("confirmed revocation %d: %v", i, err)
		return
	case r.Confirmation == nil || !r.Confirmation.InForce:
		p.failf("confirmed revocation %d: not in force within %s: %+v", i, p.cfg.ConfirmWait, r.Confirmation)
		return
	case r.Confirmation.Confirmed != len(p.c.gates):
		p.failf("confirmed revocation %d: in force on %d verifiers, want the %d gates", i, r.Confirmation.Confirmed, len(p.c.gates))
	}
	p.confirm.add(took)
	err = p.eachGate(func(_ int, url string) error {
		revoked, err := revokedAt(ctx, p.c.hc, url, t.AccessToken)
		if err == nil && !revoked {
			err = errors.New("accepted the token")
		}
		if err != nil {
			return fmt.Errorf("gate %s, first request after the call: %w", url, err)
		}
		return nil
	})
	if err != nil {
		p.failf("confirmed revocation %d: %v", i, err)
		return
	}
	p.refused.Add(1)
}

func (p *propagationRun) reportConfirm(r *Report, m int) {
	cfg := p.cfg
	r.param("confirmed revocations", fmt.Sprintf("%d session revocations at %g/s for %s, alternating nodes: every other one with ?confirm=%s",
		m, cfg.ConfirmRate, cfg.ConfirmDuration, cfg.ConfirmWait))
	s, plain := summarize(p.confirm.take()), summarize(p.plain.take())
	r.result("confirmed revocations in force (200)", float64(s.N), "")
	r.result("confirmed revocations refused by every gate at the first request after the call", float64(p.refused.Load()), "")
	r.latency("confirmed revoke call (request → in force)", s)
	r.result("plain revoke call of the same phase (request → 200) p50", plain.P50, "ms")
	r.result("plain revoke call of the same phase (request → 200) p99", plain.P99, "ms")
	r.target("confirm-p99", fmt.Sprintf("confirmed revoke call p99 (%d nodes, %d gates)", cfg.Authorities, cfg.Gates),
		s.P99, "<", ms(ConfirmTarget), " ms", "")
	r.note("a confirmed revoke call returns once every gate has reported applying the revocation (or has been silent past its staleness bound); " +
		"its latency includes the commit, the feed's delivery to every gate, each gate's position report and, for gates following another node, that node's NOTIFY")
}
