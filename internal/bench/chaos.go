package bench

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/tegata-dev/tegata/internal/bench/history"
)

// ChaosConfig tunes Chaos. Zero fields take the defaults.
type ChaosConfig struct {
	Setup
	// Duration is how long faults are injected. Default 10 minutes.
	Duration time.Duration
	// Seed draws the fault schedule: one seed, one schedule.
	Seed uint64
	// Nodes, Gates and Verifiers: authority nodes on Postgres (default 3),
	// gate processes (4) and in-process verifiers (200).
	Nodes, Gates, Verifiers int
	// Interval is the mean time between two faults. Default 3s.
	Interval time.Duration
	// StaleAfter is the staleness bound of every verifier and gate.
	// Default 5s.
	StaleAfter time.Duration
	// PGRestart lets the nemesis restart the Postgres server
	// (PGRestartCommand). Off by default: it breaks every other user of
	// the server.
	PGRestart        bool
	PGRestartCommand []string
	// History is the file the history is written to. Empty: a file in the
	// temporary directory, removed when the run passes.
	History string
}

func (c *ChaosConfig) defaults() {
	c.Duration = cmp0(c.Duration, 10*time.Minute)
	c.Nodes = cmp0(c.Nodes, 3)
	c.Gates = cmp0(c.Gates, 4)
	c.Verifiers = cmp0(c.Verifiers, 200)
	c.Interval = cmp0(c.Interval, 3*time.Second)
	c.StaleAfter = cmp0(c.StaleAfter, 5*time.Second)
	if len(c.PGRestartCommand) == 0 {
		c.PGRestartCommand = []string{"pg_ctlcluster", "15", "main", "restart"}
	}
}

// refreshGrace is the nodes' --refresh-grace (the default).
const refreshGrace = 10 * time.Second

// leaseBound is history.Params.LeaseBound for a staleness bound: see
// there; the extra second covers the harness's own scheduling.
func leaseBound(staleAfter time.Duration) time.Duration {
	return 2*staleAfter + 2*time.Second + time.Second + time.Second
}

// chaosRun is one chaos run in progress.
type chaosRun struct {
	cfg   ChaosConfig
	cc    *chaosCluster
	h     *history.Writer
	vs    []*vslot
	load  *chaosLoad
	keys  *feedKeys
	began time.Time

	mu       sync.Mutex
	faultLog []string // faults that could not be carried out, in words
}

// Chaos runs the cluster under load while the nemesis injects faults
// drawn from the seed, then lets it settle, reads the store, and checks
// the whole history (package history). A violation fails the report.
func Chaos(ctx context.Context, cfg ChaosConfig) (*Report, error) {
	cfg.defaults()
	r := &Report{Benchmark: "chaos"}
	r.param("seed", cfg.Seed)
	r.param("duration", cfg.Duration)
	r.param("nodes, gates, verifiers", fmt.Sprintf("%d, %d, %d", cfg.Nodes, cfg.Gates, cfg.Verifiers))
	r.param("staleness bound", cfg.StaleAfter)
	r.param("Postgres restarts", cfg.PGRestart)
	r.param("cores", numCPU())
	r.param("load average at start", loadAverage())
	hf, path, err := openHistory(cfg.History)
	if err != nil {
		return nil, err
	}
	defer hf.Close()
	cr := &chaosRun{cfg: cfg, h: history.NewWriter(hf), began: time.Now()}
	r.param("history", path)
	if cr.cc, err = startChaosCluster(ctx, cfg.Setup, cfg.Nodes, cfg.Gates, cfg.StaleAfter); err != nil {
		return r, err
	}
	defer cr.cc.close()
	if err := cr.run(ctx, r); err != nil {
		return r, err
	}
	if err := cr.h.Close(); err != nil {
		return r, fmt.Errorf("chaos: writing the history: %w", err)
	}
	if err := cr.check(path, r); err != nil {
		return r, err
	}
	r.param("load average at end", loadAverage())
	r.Seconds = time.Since(cr.began).Seconds()
	if !r.Failed() && cfg.History == "" {
		_ = os.Remove(path)
	}
	return r, nil
}

func openHistory(path string) (*os.File, string, error) {
	if path != "" {
		f, err := os.Create(path)
		return f, path, err
	}
	f, err := os.CreateTemp("", "tegata-chaos-*.jsonl")
	if err != nil {
		return nil, "", err
	}
	return f, f.Name(), nil
}

// run is the run's phases: verifiers up, resources measured, load and
// faults, every fault ended, settling, final probes, the store read.
func (cr *chaosRun) run(ctx context.Context, r *Report) error {
	cfg := cr.cfg
	if err := cr.startVerifiers(ctx); err != nil {
		return err
	}
	defer cr.stopVerifiers()
	cr.cfg.logf("chaos: %d verifiers current; load and faults for %s (seed %d)", len(cr.vs), cfg.Duration, cfg.Seed)
	before := cr.resources(ctx)
	cr.load = newChaosLoad(cr)
	lctx, stopLoad := context.WithCancel(ctx)
	loadDone := cr.load.start(lctx)
	sched := chaosSchedule(cfg.Seed, scheduleShape{Duration: cfg.Duration, Interval: cfg.Interval,
		Nodes: cfg.Nodes, Gates: cfg.Gates, Verifiers: cfg.Verifiers, PGRestart: cfg.PGRestart})
	n := newNemesis(cr)
	warm := make(chan map[string]usage, 1)
	go func() {
		// The baseline of the resource bound is taken once the load has
		// filled what it fills by design (every verifier's cache of
		// verified tokens, the harness's rings of recent tokens).
		select {
		case <-ctx.Done():
			warm <- nil
		case <-time.After(cfg.Duration / 4):
			warm <- cr.resources(ctx)
		}
	}()
	n.run(ctx, sched)
	n.healAll(ctx)
	cr.cfg.logf("chaos: every fault ended")
	stopLoad()
	loadDone.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	cr.cfg.logf("chaos: faults over (%d drawn); settling", len(sched))
	if err := cr.settle(ctx); err != nil {
		r.fail("%v", err)
	}
	cr.cfg.logf("chaos: settled; final probes")
	cr.finals(ctx)
	after := cr.resources(ctx)
	cr.reportResources(r, before, <-warm, after)
	if err := cr.audit(ctx); err != nil {
		return err
	}
	cr.cfg.logf("chaos: store read; checking the history")
	cr.mu.Lock()
	for _, s := range cr.faultLog {
		r.note("fault not carried out: %s", s)
	}
	cr.mu.Unlock()
	return nil
}

// check reads the history back and checks it.
func (cr *chaosRun) check(path string, r *Report) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	evs, err := history.Read(f)
	if err != nil {
		return err
	}
	res := history.Check(evs, history.Params{Grace: refreshGrace, LeaseBound: leaseBound(cr.cfg.StaleAfter)})
	r.result("history events", float64(len(evs)), "")
	for _, k := range sortedKeys(res.Faults) {
		r.result("faults injected: "+k, float64(res.Faults[k]), "")
	}
	for _, k := range sortedKeys(res.Revocations) {
		r.result("revocations acknowledged: "+k, float64(res.Revocations[k]), "")
	}
	r.result("revocations answered in force (?confirm=)", float64(res.Confirmed), "")
	for _, k := range sortedKeys(res.Verdicts) {
		r.result("verdicts: "+k, float64(res.Verdicts[k]), "")
	}
	for _, k := range sortedKeys(res.Checks) {
		r.result("checks: "+k, float64(res.Checks[k]), "")
	}
	r.latency("ack → enforced (first refusal) per verifier, under faults", summarize(res.Enforced))
	for i, v := range res.Violations {
		if i == 20 {
			r.fail("… and %d more violations (history %s)", len(res.Violations)-20, path)
			break
		}
		r.fail("%v", v)
	}
	return nil
}

func sortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// faultFailed notes a fault the nemesis could not carry out (a process
// already gone): the run goes on.
func (cr *chaosRun) faultFailed(format string, args ...any) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if len(cr.faultLog) < 50 {
		cr.faultLog = append(cr.faultLog, fmt.Sprintf(format, args...))
	}
}
