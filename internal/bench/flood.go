package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/verifier"
)

// FloodConfig tunes Flood. Zero fields take the defaults.
type FloodConfig struct {
	Setup
	Authorities int // authority nodes on one Postgres; default 2
	Gates       int // gate processes; default 3
	Revocations int // subject revocations in the burst; default 100,000
	// Batch is how many subjects one bulk revocation call carries
	// (POST /v1/revocations); default 10,000, the most the API takes.
	Batch int
	// Workers is how many bulk calls are in flight at once, alternating
	// nodes; default 2.
	Workers int
	// Bulk is how many subjects the end-to-end bulk revocation measured
	// before the flood cuts off in one call; default 10,000, negative skips
	// it.
	Bulk      int
	ProbeRate float64 // gate /auth latency probes per second, all gates together; default 400
	// Idle is how long the gates are probed before the burst, for their
	// idle latency. Default 5s.
	Idle time.Duration
	// Canaries is how many of the revoked subjects get a session first, so
	// that their tokens can be checked at every gate afterwards. Default 100.
	Canaries int
	// Timeout bounds the wait for delivery after the last write. Default 60s.
	Timeout time.Duration
	// HeapProfile, if set, receives a heap profile taken while the
	// in-process verifier holds the whole flood.
	HeapProfile io.Writer
	// CatchUpProfile, if set, receives a CPU profile of in-process
	// verifiers catching up on the whole flood, profileRounds times after
	// the measured catch-up (one is too short for a useful profile).
	CatchUpProfile io.Writer
}

// profileRounds is how many catch-ups CatchUpProfile covers.
const profileRounds = 5

func (c *FloodConfig) defaults() {
	c.Authorities = cmp0(c.Authorities, 2)
	c.Gates = cmp0(c.Gates, 3)
	c.Revocations = cmp0(c.Revocations, 100_000)
	c.Batch = min(cmp0(c.Batch, client.MaxRevokeItems), client.MaxRevokeItems)
	c.Workers = cmp0(c.Workers, 2)
	c.Bulk = min(cmp0(c.Bulk, client.MaxRevokeItems), client.MaxRevokeItems)
	if c.Bulk < 0 {
		c.Bulk = 0
	}
	if c.ProbeRate <= 0 {
		c.ProbeRate = 400
	}
	c.Idle = cmp0(c.Idle, 5*time.Second)
	c.Canaries = min(cmp0(c.Canaries, 100), c.Revocations)
	c.Timeout = cmp0(c.Timeout, 60*time.Second)
}

// Flood targets.
const (
	FloodDeliveryTarget = 2 * time.Second
	FloodLatencyFactor  = 2.0
	EntryBytesTarget    = 64
)

// Flood writes a burst of subject revocations and measures how long until
// every gate has all of them, the gates' /auth latency meanwhile compared
// with before, and the heap a verifier spends per entry.
func Flood(ctx context.Context, cfg FloodConfig) (*Report, error) {
	cfg.defaults()
	began := time.Now()
	c, err := startCluster(ctx, cfg.Setup, cfg.Authorities, cfg.Gates)
	if err != nil {
		return nil, err
	}
	defer c.close()
	f := &floodRun{cfg: cfg, c: c, r: &Report{Benchmark: "flood"}}
	if err := f.run(ctx); err != nil {
		return nil, err
	}
	if err := c.alive(); err != nil {
		return nil, err
	}
	f.r.Seconds = time.Since(began).Seconds()
	return f.r, nil
}

// floodRun is one run of Flood.
type floodRun struct {
	cfg FloodConfig
	c   *cluster
	r   *Report

	canaries  []client.Tokens // sessions of subjects the burst revokes
	bulk      *bulkRun        // the end-to-end bulk revocation, nil if skipped
	bystander client.Tokens   // never revoked: the probes' token

	burstStart, lastAck time.Time
	lastSeq             int64 // the highest seq the burst wrote

	// Run-queue samples of the probes' path, idle and during the flood.
	idleQ, floodQ [2]queueSample
}

// queueSample is the run-queue figures of the gates and of this process
// (the prober) at one instant.
type queueSample struct {
	at          time.Time
	gates, self runQueue
}

func (f *floodRun) sampleQueues() queueSample {
	gates := make([]int, 0, len(f.c.gates))
	for _, g := range f.c.gates {
		gates = append(gates, g.cmd.Process.Pid)
	}
	return queueSample{at: time.Now(), gates: sampleRunQueue(gates), self: sampleRunQueue([]int{os.Getpid()})}
}

func (f *floodRun) subject(i int) string { return fmt.Sprintf("flood-%d", i) }

func (f *floodRun) run(ctx context.Context) error {
	if err := f.prepare(ctx); err != nil {
		return err
	}
	cpu := f.c.cpuGroups()
	p := newProber(f.c, f.bystander.AccessToken, f.cfg.ProbeRate)
	p.start(ctx)
	defer p.stop()
	f.cfg.logf("flood: probing idle gates for %s", f.cfg.Idle)
	f.idleQ[0] = f.sampleQueues()
	time.Sleep(f.cfg.Idle)
	idle := p.phase()
	f.idleQ[1] = f.sampleQueues()
	if err := f.runBulk(ctx); err != nil {
		return err
	}
	p.phase() // the bulk revocation's latencies are no part of the flood's
	f.cfg.logf("flood: writing %d subject revocations in bulk calls of %d", f.cfg.Revocations, f.cfg.Batch)
	before := cpu.sample()
	f.floodQ[0] = f.sampleQueues()
	f.burstStart = time.Now()
	if err := f.burst(ctx); err != nil {
		return err
	}
	f.cfg.logf("flood: burst written in %s; waiting for every gate", f.lastAck.Sub(f.burstStart).Round(time.Millisecond))
	d, err := f.waitDelivered(ctx)
	if err != nil {
		return err
	}
	during := p.phase()
	f.floodQ[1] = f.sampleQueues()
	f.r.CPU = append(f.r.CPU, cpu.use("burst start → every gate has all", before, cpu.sample()))
	p.stop()
	f.checkCanaries(ctx)
	cu, err := f.measureVerifier(ctx)
	if err != nil {
		return err
	}
	f.report(idle, during, p.refused.Load(), d, cu)
	return nil
}

// prepare creates the canary and bystander sessions and checks that the
// gates accept them.
func (f *floodRun) prepare(ctx context.Context) error {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	clients := f.c.clients
	for _, i := range rng.Perm(f.cfg.Revocations)[:f.cfg.Canaries] {
		t, err := clients[i%len(clients)].CreateSession(ctx, client.SessionRequest{Subject: f.subject(i), Device: "canary"})
		if err != nil {
			return fmt.Errorf("bench: canary session: %w", err)
		}
		f.canaries = append(f.canaries, t)
	}
	var err error
	if f.bystander, err = clients[0].CreateSession(ctx, client.SessionRequest{Subject: "flood-bystander", Device: "bystander"}); err != nil {
		return err
	}
	if err := checkAccepted(ctx, f.c.hc, f.c.gateURL, append(f.canaries, f.bystander), 16); err != nil {
		return err
	}
	return f.prepareBulk(ctx)
}

// burst writes the revocations through the authorities' bulk endpoint,
// Batch subjects per call, Workers calls at once, alternating nodes, and
// sets lastAck to when the last call was answered and lastSeq to the
// highest seq written.
func (f *floodRun) burst(ctx context.Context) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	calls := (f.cfg.Revocations + f.cfg.Batch - 1) / f.cfg.Batch
	for range f.cfg.Workers {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= calls || ctx.Err() != nil {
					return
				}
				seq, err := f.revokeRange(ctx, f.c.clients[k%len(f.c.clients)], k*f.cfg.Batch, min((k+1)*f.cfg.Batch, f.cfg.Revocations))
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				f.lastSeq, f.lastAck = max(f.lastSeq, seq), time.Now()
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// revokeRange cuts off subjects [from, to) in one call and returns the highest
// seq written.
func (f *floodRun) revokeRange(ctx context.Context, c *client.Client, from, to int) (int64, error) {
	items := make([]client.RevokeItem, 0, to-from)
	for i := from; i < to; i++ {
		items = append(items, client.RevokeItem{Subject: f.subject(i), Scope: client.ScopeSessions})
	}
	res, err := c.RevokeMany(ctx, client.BulkRevocation{Items: items, Reason: "bench flood"})
	if err != nil {
		return 0, fmt.Errorf("bench: bulk revocation of subjects %d to %d: %w", from, to-1, err)
	}
	var last int64
	for _, r := range res.Items {
		if !r.Revoked {
			return 0, errors.New("bench: a subject cutoff was not written")
		}
		last = max(last, r.Seq)
	}
	return last, nil
}

// delivery is when each gate reported, at /readyz, a position at or past
// the burst's last seq: the feed applies the log in seq order, so the gate
// then holds every entry of the burst.
type delivery struct {
	all time.Time // the last gate
}

func (f *floodRun) waitDelivered(ctx context.Context) (delivery, error) {
	var d delivery
	deadline := time.Now().Add(f.cfg.Timeout)
	for _, g := range f.c.gateURL {
		for {
			pos, err := gatePosition(ctx, f.c.hc, g)
			if err != nil {
				return d, err
			}
			if pos >= f.lastSeq {
				d.all = time.Now()
				break
			}
			if time.Now().After(deadline) {
				f.r.fail("gate %s was at position %d, not %d, %s after the last write", g, pos, f.lastSeq, f.cfg.Timeout)
				d.all = time.Now()
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	return d, nil
}

// checkCanaries makes sure every gate refuses the canaries' tokens.
func (f *floodRun) checkCanaries(ctx context.Context) {
	bad := 0
	for _, t := range f.canaries {
		for _, g := range f.c.gateURL {
			if revoked, err := revokedAt(ctx, f.c.hc, g, t.AccessToken); err != nil || !revoked {
				bad++
			}
		}
	}
	if bad > 0 {
		f.r.fail("%d canary tokens (of %d × %d gates) still accepted or refused for another reason after delivery", bad, len(f.canaries), len(f.c.gateURL))
	}
}

// catchUp is what the in-process verifier cost.
type catchUp struct {
	entries  int
	perEntry float64       // heap bytes per entry
	took     time.Duration // from start to holding the whole log
	cpu      float64       // CPU seconds of this process meanwhile
}

// measureVerifier starts an in-process verifier once the flood is over (so
// that it competes with nothing during the flood), waits until it holds
// the whole log, timing that catch-up (the work a gate does in a flood,
// in a process otherwise idle), and measures the heap it holds: the live
// heap with it minus the live heap once it is closed and dropped, per
// entry.
func (f *floodRun) measureVerifier(ctx context.Context) (catchUp, error) {
	var c catchUp
	if f.cfg.HeapProfile != nil {
		// Sample small allocations finely: an entry's are tens of bytes.
		runtime.MemProfileRate = 4096
	}
	pid := strconv.Itoa(os.Getpid())
	cpu0, start := procCPU(pid), time.Now()
	v, err := f.caughtUpVerifier(ctx)
	// A deferred v.Close() would keep v reachable through the measurement.
	defer func() {
		if v != nil {
			_ = v.Close()
		}
	}()
	if err != nil {
		return c, err
	}
	c.took, c.cpu = time.Since(start), procCPU(pid)-cpu0
	c.entries = v.State().Entries
	with := liveHeap()
	if f.cfg.HeapProfile != nil {
		if err := pprof.WriteHeapProfile(f.cfg.HeapProfile); err != nil {
			return c, err
		}
	}
	_ = v.Close()
	v = nil
	without := liveHeap()
	if c.entries > 0 {
		c.perEntry = float64(int64(with)-int64(without)) / float64(c.entries)
	}
	return c, f.profileCatchUp(ctx)
}

// caughtUpVerifier starts an in-process verifier and waits until it has
// applied the whole log.
func (f *floodRun) caughtUpVerifier(ctx context.Context) (*verifier.Verifier, error) {
	v, err := verifier.New(ctx, verifier.Config{Authorities: f.c.urls, APIKey: f.c.feedKey, Logger: quietLogger(nil)})
	if err != nil {
		return nil, fmt.Errorf("bench: in-process verifier: %w", err)
	}
	deadline := time.Now().Add(f.cfg.Timeout)
	for v.State().Position < f.lastSeq {
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = v.Close()
			return nil, fmt.Errorf("bench: in-process verifier at position %d, not %d, after %s", v.State().Position, f.lastSeq, f.cfg.Timeout)
		}
		time.Sleep(time.Millisecond)
	}
	return v, nil
}

// profileCatchUp writes CatchUpProfile, if set.
func (f *floodRun) profileCatchUp(ctx context.Context) error {
	if f.cfg.CatchUpProfile == nil {
		return nil
	}
	if err := pprof.StartCPUProfile(f.cfg.CatchUpProfile); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	for range profileRounds {
		v, err := f.caughtUpVerifier(ctx)
		if err != nil {
			return err
		}
		_ = v.Close()
	}
	return nil
}

// reportQueues says how long the probes' path waited for a CPU, idle and
// during the flood: the gates' threads and this process's (the prober).
func (f *floodRun) reportQueues() {
	for _, ph := range []struct {
		name string
		q    [2]queueSample
	}{{"idle", f.idleQ}, {"during flood", f.floodQ}} {
		a, b := ph.q[0], ph.q[1]
		if b.gates.runs == 0 {
			return // no schedstat on this system
		}
		d := b.at.Sub(a.at)
		f.r.result("gates: wait for a CPU per run, "+ph.name, float64(b.gates.perRun(a.gates).Microseconds()), "µs")
		f.r.result("gates: threads ready but not running, "+ph.name, b.gates.share(a.gates, d), "")
		f.r.result("prober: wait for a CPU per run, "+ph.name, float64(b.self.perRun(a.self).Microseconds()), "µs")
	}
}

// reportCPUPerEntry divides the burst's CPU by its entries: what an entry
// costs Postgres, the authority nodes, and each gate, which other load
// disturbs less than rates and latencies.
func (f *floodRun) reportCPUPerEntry() {
	if len(f.r.CPU) == 0 || len(f.r.CPU[0].Groups) == 0 || f.cfg.Revocations == 0 {
		return
	}
	u, n := f.r.CPU[0], float64(f.cfg.Revocations)
	f.r.result("burst CPU per entry: postgres", u.Get("postgres")/n*1e6, "µs")
	f.r.result("burst CPU per entry: authority nodes", u.Get("authority nodes")/n*1e6, "µs")
	f.r.result("burst CPU per entry: each gate", u.Get("gates")/n/float64(len(f.c.gates))*1e6, "µs")
}

// liveHeap returns the bytes of live heap objects after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC() // a second cycle frees what finalizers of the first released
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func (f *floodRun) report(idle, during Summary, refused int64, d delivery, cu catchUp) {
	r, cfg := f.r, f.cfg
	r.param("authority nodes (Postgres)", cfg.Authorities)
	r.param("gates (processes)", cfg.Gates)
	r.param("burst", fmt.Sprintf("%d subject revocations (distinct subjects, no sessions needed)", cfg.Revocations))
	r.param("written via", fmt.Sprintf("the authorities' bulk endpoint (POST /v1/revocations), %d subjects per call, %d calls at once, alternating nodes", cfg.Batch, cfg.Workers))
	r.param("gate latency probes", fmt.Sprintf("%g/s open loop over all gates, bystander token; idle for %s before", cfg.ProbeRate, cfg.Idle))
	write := f.lastAck.Sub(f.burstStart)
	fromStart, fromAck := d.all.Sub(f.burstStart), d.all.Sub(f.lastAck)
	f.bulk.report(r, len(f.c.gateURL))
	r.result("burst written in", write.Seconds(), "s")
	r.result("write rate", float64(cfg.Revocations)/write.Seconds(), "/s")
	r.result("burst start → every gate has all", fromStart.Seconds(), "s")
	r.result("last write → every gate has all", fromAck.Seconds(), "s")
	r.latency("gate /auth idle", idle)
	r.latency("gate /auth during flood", during)
	f.reportQueues()
	f.reportCPUPerEntry()
	r.result("probes refused during the run", float64(refused), "")
	r.result("verifier entries after the flood", float64(cu.entries), "")
	r.result("verifier heap per entry", cu.perEntry, "B")
	r.result("verifier catch-up on the whole flood (after it), wall time", cu.took.Seconds(), "s")
	if cu.entries > 0 {
		r.result("verifier catch-up CPU per entry (feed decode + apply)", cu.cpu/float64(cu.entries)*1e6, "µs")
	}
	r.target("flood-delivery", "flood delivered (burst start → every gate has all)",
		fromStart.Seconds(), "<", FloodDeliveryTarget.Seconds(), " s", "")
	r.target("flood-delivery-after-write", "flood delivered (last write → every gate has all)",
		fromAck.Seconds(), "<", FloodDeliveryTarget.Seconds(), " s", "")
	ratio := during.P99 / idle.P99
	r.target("flood-gate-p99", "gate /auth p99 during the flood vs idle", ratio, "<=", FloodLatencyFactor, "×",
		fmt.Sprintf("%s ms vs %s ms (%.2f×)", FormatValue(during.P99), FormatValue(idle.P99), ratio))
	r.target("flood-heap", "verifier heap per live entry (subject entries, in-process verifier)",
		cu.perEntry, "<=", EntryBytesTarget, " B", "")
	r.note("a gate has the whole burst when its /readyz position reaches the burst's last seq (the feed applies the log in seq order); each gate's /readyz is polled every 1 ms; then the tokens of %d canary subjects are checked refused as revoked at every gate", len(f.canaries))
	r.note("heap per entry: after the flood an in-process verifier (package verifier) follows the same feed from position 0 (a snapshot of the live entries); live heap after a full GC with it, minus without it once closed, divided by its entry count; the entries are subject cutoffs of subjects named by 7–11 byte strings (the set keeps each as a fixed 64-bit key, whatever its length)")
	if refused > 0 {
		r.fail("gates refused the bystander's valid token %d times", refused)
	}
}
