package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
)

// PropagationConfig tunes Propagation. Zero fields take the defaults.
type PropagationConfig struct {
	Setup
	Authorities int           // authority nodes on one Postgres; default 3
	Gates       int           // gate processes; default 8
	Rate        float64       // revocations per second; default 50
	Duration    time.Duration // how long revocations go on; default 20s
	// Poll is the interval between two probes of one gate for one pending
	// revocation: the resolution of the measurement. Default 1ms.
	Poll time.Duration
	// Timeout: a revocation not rejected by every gate this long after its
	// acknowledgement counts as missing. Default 10s.
	Timeout time.Duration
	// ConfirmRate and ConfirmDuration pace the second phase: revocations,
	// every other one with ?confirm=ConfirmWait and followed by one probe
	// of every gate. Defaults 20/s, 20s and 5s.
	ConfirmRate     float64
	ConfirmDuration time.Duration
	ConfirmWait     time.Duration
}

func (c *PropagationConfig) defaults() {
	c.Authorities = cmp0(c.Authorities, 3)
	c.Gates = cmp0(c.Gates, 8)
	if c.ConfirmRate <= 0 {
		c.ConfirmRate = 20
	}
	c.ConfirmDuration = cmp0(c.ConfirmDuration, 20*time.Second)
	c.ConfirmWait = cmp0(c.ConfirmWait, 5*time.Second)
	if c.Rate <= 0 {
		c.Rate = 50
	}
	c.Duration = cmp0(c.Duration, 20*time.Second)
	c.Poll = cmp0(c.Poll, time.Millisecond)
	c.Timeout = cmp0(c.Timeout, 10*time.Second)
}

// cmp0 returns def when v is zero or negative.
func cmp0[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// PropagationTarget is the p99 the project aims at for revoke-acknowledged
// to rejected-at-every-gate.
const PropagationTarget = 50 * time.Millisecond

// ConfirmTarget is the p99 the project aims at for a revoke call with
// ?confirm= (request → answer in force) with 3 nodes and 8 gates.
const ConfirmTarget = 20 * time.Millisecond

// errMissing is a revocation that did not reach a gate within the timeout.
var errMissing = errors.New("not rejected within the timeout")

// Propagation revokes sessions at a steady rate, alternating authority
// nodes, and measures for each the time from the revoke call's 200 to the
// moment the session's access token is refused by every gate.
func Propagation(ctx context.Context, cfg PropagationConfig) (*Report, error) {
	cfg.defaults()
	began := time.Now()
	c, err := startCluster(ctx, cfg.Setup, cfg.Authorities, cfg.Gates)
	if err != nil {
		return nil, err
	}
	defer c.close()
	n := int(math.Ceil(cfg.Rate * cfg.Duration.Seconds()))
	m := int(math.Ceil(cfg.ConfirmRate * cfg.ConfirmDuration.Seconds()))
	toks, err := createSessions(ctx, c.clients, "prop", n+m, 16)
	if err != nil {
		return nil, err
	}
	toks, confirmToks := toks[:n], toks[n:]
	if err := checkAccepted(ctx, c.hc, c.gateURL, toks, 16); err != nil {
		return nil, err
	}
	cfg.logf("propagation: %d sessions created and accepted by %d gates; revoking at %g/s", n, len(c.gates), cfg.Rate)
	run := &propagationRun{cfg: cfg, c: c}
	cpu := c.cpuGroups()
	before := cpu.sample()
	run.revokeAll(ctx, toks)
	use := cpu.use("revocations", before, cpu.sample())
	cfg.logf("propagation: %d confirmed revocations at %g/s", m, cfg.ConfirmRate)
	before = cpu.sample()
	run.confirmAll(ctx, confirmToks)
	useConfirm := cpu.use("confirmed revocations", before, cpu.sample())
	if err := c.alive(); err != nil {
		return nil, err
	}
	r := run.report(n)
	run.reportConfirm(r, m)
	r.CPU = append(r.CPU, use, useConfirm)
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

// propagationRun is the state shared by the goroutines of one run.
type propagationRun struct {
	cfg     PropagationConfig
	c       *cluster
	all     recorder // ack → rejected by every gate
	perGate recorder // ack → rejected by one gate
	ack     recorder // revoke call → 200
	rtt     recorder // one /auth probe
	confirm recorder // revoke call with ?confirm= → answer in force
	plain   recorder // revoke call without, in the same phase
	refused atomic.Int64
	mu      sync.Mutex
	fails   []string
}

// revokeAll revokes toks[i] at start + i/Rate, each in its own goroutine so
// that a slow call does not delay the schedule, and waits for all.
func (p *propagationRun) revokeAll(ctx context.Context, toks []client.Tokens) {
	schedule(ctx, toks, p.cfg.Rate, p.revokeOne)
}

// schedule calls one(i, toks[i]) at start + i/rate, each in its own
// goroutine, and waits for all.
func schedule(ctx context.Context, toks []client.Tokens, rate float64, one func(context.Context, int, client.Tokens)) {
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	var wg sync.WaitGroup
	for i, t := range toks {
		time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			one(ctx, i, t)
		}()
	}
	wg.Wait()
}

func (p *propagationRun) revokeOne(ctx context.Context, i int, t client.Tokens) {
	sent := time.Now()
	r, err := p.c.clients[i%len(p.c.clients)].RevokeSession(ctx, client.SessionRevocation{SessionID: t.SessionID, Reason: "bench propagation"})
	ack := time.Now()
	if err == nil && !r.Revoked {
		err = errors.New("authority says it was already revoked")
	}
	if err != nil {
		p.failf("revocation %d: %v", i, err)
		return
	}
	p.ack.add(ack.Sub(sent))
	lat := make([]time.Duration, len(p.c.gateURL))
	err = p.eachGate(func(g int, url string) error {
		at, err := p.waitRevoked(ctx, url, t.AccessToken, ack.Add(p.cfg.Timeout))
		lat[g] = at.Sub(ack)
		return err
	})
	if err != nil {
		p.failf("revocation %d (session %s): %v", i, t.SessionID, err)
		return
	}
	for _, d := range lat {
		p.perGate.add(d)
	}
	p.all.add(slices.Max(lat))
}

// eachGate runs fn for every gate at once and joins their errors.
func (p *propagationRun) eachGate(fn func(g int, url string) error) error {
	errs := make([]error, len(p.c.gateURL))
	var wg sync.WaitGroup
	for g, url := range p.c.gateURL {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = fn(g, url)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitRevoked probes gate every Poll until it refuses token as revoked and
// returns when that answer arrived: an upper bound on when the gate learnt
// of the revocation, late by at most one interval plus one round trip.
func (p *propagationRun) waitRevoked(ctx context.Context, gate, token string, deadline time.Time) (time.Time, error) {
	for {
		sent := time.Now()
		revoked, err := revokedAt(ctx, p.c.hc, gate, token)
		got := time.Now()
		p.rtt.add(got.Sub(sent))
		switch {
		case err != nil:
			return got, fmt.Errorf("gate %s: %w", gate, err)
		case revoked:
			return got, nil
		case got.After(deadline):
			return got, fmt.Errorf("gate %s: %w (%s)", gate, errMissing, p.cfg.Timeout)
		case ctx.Err() != nil:
			return got, ctx.Err()
		}
		time.Sleep(time.Until(sent.Add(p.cfg.Poll)))
	}
}

func (p *propagationRun) failf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fails = append(p.fails, fmt.Sprintf(format, args...))
}

func (p *propagationRun) report(n int) *Report {
	r := &Report{Benchmark: "propagation"}
	cfg := p.cfg
	r.param("authority nodes (Postgres)", cfg.Authorities)
	r.param("gates (processes)", cfg.Gates)
	r.param("revocations", fmt.Sprintf("%d session revocations at %g/s for %s, alternating nodes", n, cfg.Rate, cfg.Duration))
	r.param("poll interval per gate per pending revocation", cfg.Poll)
	all, gate := summarize(p.all.take()), summarize(p.perGate.take())
	rtt, ack := summarize(p.rtt.take()), summarize(p.ack.take())
	r.result("revocations checked (rejected by every gate)", float64(all.N), "")
	r.result("revocations missing or failed", float64(n-all.N), "")
	r.latency("ack → rejected at every gate", all)
	r.latency("ack → rejected at one gate", gate)
	r.result("revoke call (request → 200) p50", ack.P50, "ms")
	r.result("revoke call (request → 200) p99", ack.P99, "ms")
	r.result("probe round trip p50", rtt.P50, "ms")
	r.target("propagation-p99", "propagation p99 (ack → rejected at every gate)", all.P99, "<", ms(PropagationTarget), " ms", "")
	r.note("latency runs from the 200 answer to the revoke call to the arrival of the first 401 \"token revoked\" from the last gate; "+
		"each gate is probed every %s per pending revocation, so a figure is late by at most %s plus one probe round trip (p50 %s ms)",
		cfg.Poll, cfg.Poll, FormatValue(rtt.P50))
	for i, f := range p.fails {
		if i == 10 {
			r.fail("... and %d more", len(p.fails)-10)
			break
		}
		r.fail("%s", f)
	}
	return r
}
