package bench

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/feed"
	"github.com/tegata-dev/tegata/internal/revocation"
)

// FanoutConfig tunes Fanout. Zero fields take the defaults.
type FanoutConfig struct {
	Setup
	// Counts are the numbers of verifiers measured, in increasing order:
	// verifiers are added to reach each. Default 10, 100, 1000, 2000.
	Counts []int
	// Gates are real `tegata gate` processes among the verifiers.
	// Default 3.
	Gates int
	// Backends: "sqlite" (one node) and "postgres" (PostgresNodes nodes
	// on one Postgres). Default both.
	Backends      []string
	PostgresNodes int
	// Rate is the revocations per second of each phase; Revocations how
	// many each phase makes. Defaults 10/s and 30.
	Rate        float64
	Revocations int
	// Idle is how long the idle CPU is measured at each count. Default 5s.
	Idle time.Duration
	// Settle is how long the connection burst (first reports, records
	// written) is left to end before the idle CPU is measured; the asks of
	// the verifier listing are left half as long. Default 2s.
	Settle time.Duration
	// Bulk is the size of the bulk revocation sent at the largest count;
	// -1 skips it. Default 10,000.
	Bulk int
	// Relays are the topologies measured, each on every backend: the
	// number of `tegata relay` processes the verifiers and gates follow,
	// round robin, instead of the nodes (relay i follows node i mod
	// nodes). 0 is the direct topology. Default 0 alone.
	Relays []int
}

func (c *FanoutConfig) defaults() {
	if len(c.Counts) == 0 {
		c.Counts = []int{10, 100, 1000, 2000}
	}
	c.Gates = cmp0(c.Gates, 3)
	if len(c.Backends) == 0 {
		c.Backends = []string{"sqlite", "postgres"}
	}
	c.PostgresNodes = cmp0(c.PostgresNodes, 3)
	if c.Rate <= 0 {
		c.Rate = 10
	}
	c.Revocations = cmp0(c.Revocations, 30)
	c.Idle = cmp0(c.Idle, 5*time.Second)
	c.Settle = cmp0(c.Settle, 2*time.Second)
	if c.Bulk == 0 {
		c.Bulk = 10_000
	}
	if len(c.Relays) == 0 {
		c.Relays = []int{0}
	}
}

// relayed reports whether any topology measured has relays.
func (c *FanoutConfig) relayed() bool {
	for _, k := range c.Relays {
		if k > 0 {
			return true
		}
	}
	return false
}

// FanoutPoint is one backend at one verifier count.
type FanoutPoint struct {
	Backend   string `json:"backend"`
	Verifiers int    `json:"verifiers"`
	// Propagation: revoke call's answer → the entry applied by every
	// verifier (from then on each rejects the token).
	Propagation Summary `json:"propagation"`
	// CPU of the authority nodes: per revocation per verifier (plain and
	// with ?confirm=), idle per 1,000 verifiers (share of a core), to
	// connect one verifier.
	CPUPerRevVerifierUS     float64 `json:"cpu_per_rev_verifier_us"`
	CPUPerRevVerifierConfUS float64 `json:"cpu_per_rev_verifier_confirm_us"`
	IdlePer1000             float64 `json:"idle_core_share_per_1000"`
	ConnectMS               float64 `json:"connect_cpu_ms_per_verifier"`
	MemPerStreamKiB         float64 `json:"node_kib_per_verifier"`
	Confirm                 Summary `json:"confirm"`
	BulkMS                  float64 `json:"bulk_ms,omitempty"`
	BulkErr                 string  `json:"bulk_error,omitempty"`
	// BulkNodeCPU and BulkFollowerCPU are the CPU seconds the nodes and
	// this process (the in-process verifiers) spent from the bulk call
	// until every verifier held it (or the wait gave up): who the bulk's
	// time went to.
	BulkNodeCPU     float64 `json:"bulk_node_cpu_s,omitempty"`
	BulkFollowerCPU float64 `json:"bulk_follower_cpu_s,omitempty"`
	// BulkFollowerFaults is the minor page faults this process took
	// meanwhile, per entry of the bulk per in-process verifier: the fresh
	// memory their sets and buffers touched for it.
	BulkFollowerFaults float64 `json:"bulk_follower_faults_per_entry,omitempty"`
	NotInForce         int64   `json:"confirm_not_in_force"`
	// InForceEarly counts ?confirm= calls answered in force before every
	// in-process verifier had applied the entry, while all held leases: a
	// broken promise.
	InForceEarly int64 `json:"confirm_in_force_before_applied,omitempty"`
	Listed       int   `json:"listed"`
	// Reconnects counts, per phase (connect, idle, revocations, confirm,
	// bulk), the in-process verifiers' stream ends, each followed by a
	// reconnect; phases without one are left out.
	Reconnects map[string]int64 `json:"reconnects,omitempty"`
	// Relays is the number of relays the verifiers followed (0: the
	// nodes, directly), and Relay what they cost; the node figures above
	// are the nodes' alone, the latencies end to end through the relays.
	Relays int        `json:"relays,omitempty"`
	Relay  *RelayCost `json:"relay,omitempty"`
}

// RelayCost is what the relays of a point cost, summed over the relay
// processes and measured as the nodes' CPU is: per revocation per
// verifier beyond idle (plain and with ?confirm=), idle per 1,000
// verifiers (share of a core), to connect one verifier; their resident
// memory per verifier added and in all, and their CPU during the bulk.
type RelayCost struct {
	CPUPerRevVerifierUS     float64 `json:"cpu_per_rev_verifier_us"`
	CPUPerRevVerifierConfUS float64 `json:"cpu_per_rev_verifier_confirm_us"`
	IdlePer1000             float64 `json:"idle_core_share_per_1000"`
	ConnectMS               float64 `json:"connect_cpu_ms_per_verifier"`
	MemPerVerifierKiB       float64 `json:"kib_per_verifier"`
	MemKiB                  float64 `json:"kib"`
	BulkCPU                 float64 `json:"bulk_cpu_s,omitempty"`
}

// label names the point's backend and topology in reports and logs:
// "sqlite", "sqlite via 4 relays".
func (p FanoutPoint) label() string { return topology(p.Backend, p.Relays) }

func topology(backend string, relays int) string {
	switch relays {
	case 0:
		return backend
	case 1:
		return backend + " via 1 relay"
	}
	return fmt.Sprintf("%s via %d relays", backend, relays)
}

// Fanout measures what a revocation costs an authority per connected
// verifier, and how fast it reaches all of them, as the count grows.
func Fanout(ctx context.Context, cfg FanoutConfig) (*Report, []FanoutPoint, error) {
	cfg.defaults()
	began := time.Now()
	r := &Report{Benchmark: "fanout"}
	r.param("verifier counts", fmt.Sprint(cfg.Counts))
	r.param("gate processes among them", cfg.Gates)
	if cfg.relayed() {
		r.param("relays (0: the verifiers follow the nodes)", fmt.Sprint(cfg.Relays))
	}
	r.param("revocations per phase", fmt.Sprintf("%d at %g/s", cfg.Revocations, cfg.Rate))
	r.param("cores", numCPU())
	r.param("load average at start", loadAverage())
	var points []FanoutPoint
	for _, relays := range cfg.Relays {
		for _, backend := range cfg.Backends {
			ps, err := fanoutBackend(ctx, cfg, backend, relays, r)
			points = append(points, ps...)
			if err != nil {
				return r, points, err
			}
		}
	}
	r.param("load average at end", loadAverage())
	fanoutTargets(r, points, cfg)
	r.Seconds = time.Since(began).Seconds()
	return r, points, nil
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// fanoutRun is one backend's cluster, its relays if any, and its
// in-process verifiers.
type fanoutRun struct {
	cfg     FanoutConfig
	c       *cluster
	backend string
	relays  int
	name    string // backend and topology, for logs
	vs      []*fanVerifier
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	tr      tracker
	// notInForce counts ?confirm= calls answered 202 (not in force within
	// the wait), since the last point.
	notInForce int64
	// early counts ?confirm= calls answered in force while an in-process
	// verifier had not applied the entry yet, since the last point.
	early int64
	ends  streamEnds // the in-process verifiers' log
}

// fanoutBackend measures one backend, with relays relays (0: none), at
// every count. When it fails, or the bulk does, the cluster's directory
// (the processes' stderr logs) is kept.
func fanoutBackend(ctx context.Context, cfg FanoutConfig, backend string, relays int, r *Report) (points []FanoutPoint, err error) {
	var c *cluster
	switch backend {
	case "sqlite":
		c, err = startSQLiteCluster(ctx, cfg.Setup, 0)
	case "postgres":
		c, err = startCluster(ctx, cfg.Setup, cfg.PostgresNodes, 0)
	default:
		return nil, fmt.Errorf("bench: unknown backend %q (sqlite or postgres)", backend)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		c.keep = c.keep || err != nil
		c.close()
	}()
	if err := c.startRelays(ctx, relays); err != nil {
		return nil, err
	}
	if err := c.startGates(ctx, cfg.Gates); err != nil {
		return nil, err
	}
	vctx, cancel := context.WithCancel(ctx)
	f := &fanoutRun{cfg: cfg, c: c, backend: backend, relays: relays, name: topology(backend, relays), cancel: cancel}
	defer f.stop()
	for _, n := range cfg.Counts {
		p, err := f.point(vctx, n, n == cfg.Counts[len(cfg.Counts)-1])
		if err != nil {
			cfg.logf("fanout %s: %d verifiers failed; stream reconnects by phase until then: %v", f.name, n, p.Reconnects)
			f.reportReconnects(r, p)
			return points, err
		}
		points = append(points, p)
		f.report(r, p)
		if err := c.alive(); err != nil {
			return points, c.failed(err)
		}
	}
	return points, nil
}

func (f *fanoutRun) stop() {
	f.cancel()
	f.wg.Wait()
}

// startSQLiteCluster starts one authority node on its embedded SQLite and
// the gates.
func startSQLiteCluster(ctx context.Context, setup Setup, gates int) (c *cluster, err error) {
	if c, err = newCluster(setup); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.close()
			c = nil
		}
	}()
	master := make([]byte, 32)
	_, _ = rand.Read(master)
	env := []string{"TEGATA_API_KEY=" + c.apiKey, "TEGATA_FEED_KEY=" + c.feedKey,
		"TEGATA_MASTER_KEY=" + base64.StdEncoding.EncodeToString(master)}
	p, err := c.startNode("authority node (SQLite)", env, "--addr", "127.0.0.1:0", "--data", c.dir,
		"--issuer", benchIssuer, "--rate-limits", "off", "--log-level", "info")
	if err != nil {
		return c, err
	}
	c.nodes = append(c.nodes, p)
	url, err := p.waitListening(ctx)
	if err != nil {
		return c, err
	}
	c.urls = append(c.urls, url)
	c.clients = append(c.clients, &client.Client{BaseURL: url, APIKey: c.apiKey, HTTPClient: c.hc})
	setup.logf("authority node (SQLite) listening at %s", url)
	return c, c.startGates(ctx, gates)
}

// fanVerifier is one in-process verifier: a real feed client, following
// one node first, naming itself and reporting, applying to a real set.
type fanVerifier struct {
	c    *feed.Client
	set  *revocation.Set
	bulk atomic.Int64 // bulk entries applied
}

// tracker counts, per watched session, the verifiers that have applied
// its revocation, and per bulk, the verifiers that have all of it.
type tracker struct {
	sessions sync.Map // sid → *watch
	bulkLeft atomic.Int64
	bulkDone atomic.Int64 // unix nanos when the last verifier completed the bulk
}

type watch struct {
	left atomic.Int64
	last atomic.Int64 // unix nanos of the last apply
	done chan struct{}
}

const bulkPrefix = "fanout-bulk-"

// applyMany is every in-process verifier's ApplyMany, as the verifier
// package's (whose Grow is the set's too): the set's, and the tracker's
// count. bulk counts this
// verifier's bulk entries.
func (t *tracker) applyMany(set *revocation.Set, bulk *atomic.Int64, bulkN int) func([]revocation.Entry) (int, error) {
	return func(es []revocation.Entry) (int, error) {
		n, err := set.ApplyMany(es)
		bulks := int64(0)
		for _, e := range es[:n] {
			switch {
			case e.Kind == revocation.KindSession:
				t.applied(e.Session)
			case strings.HasPrefix(e.Subject, bulkPrefix):
				bulks++
			}
		}
		if bulks > 0 && bulk.Add(bulks) == int64(bulkN) {
			t.bulkDone.Store(time.Now().UnixNano())
			t.bulkLeft.Add(-1)
		}
		return n, err
	}
}

// applied counts a verifier's applying the revocation of session sid, if
// it is watched.
func (t *tracker) applied(sid string) {
	if w, ok := t.sessions.Load(sid); ok {
		w := w.(*watch)
		w.last.Store(time.Now().UnixNano())
		if w.left.Add(-1) == 0 {
			close(w.done)
		}
	}
}

// grow starts verifiers until n are connected in all (the gates
// included), each following node (or relay) i mod nodes first.
func (f *fanoutRun) grow(ctx context.Context, n int) {
	log := slog.New(&f.ends)
	for i := len(f.vs) + f.cfg.Gates; i < n; i++ {
		set := revocation.NewSet(0)
		v := &fanVerifier{set: set}
		v.c = &feed.Client{URLs: rotate(f.c.followURLs(), i), APIKey: f.c.feedKey, Logger: log,
			ApplyMany: f.tr.applyMany(set, &v.bulk, f.cfg.Bulk), Grow: set.Grow, Reset: func() {},
			Follower: &feed.Follower{ID: feed.NewFollowerID(), Name: fmt.Sprintf("fanout-%d", i), StaleAfter: 10 * time.Second}}
		f.vs = append(f.vs, v)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			_ = v.c.Run(ctx)
		}()
	}
}

// current reports whether every in-process verifier is synced and holds a
// lease.
func (f *fanoutRun) current() bool {
	now := time.Now()
	for _, v := range f.vs {
		st := v.c.State()
		if !st.Synced || !now.Before(st.FreshUntil) {
			return false
		}
	}
	return true
}

// procRSS is a process's resident memory in KiB (VmRSS).
func procRSS(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return n
		}
	}
	return 0
}

// point grows the verifiers to n and measures.
func (f *fanoutRun) point(ctx context.Context, n int, last bool) (FanoutPoint, error) {
	p := FanoutPoint{Backend: f.backend, Verifiers: n, Relays: f.relays}
	if f.relays > 0 {
		p.Relay = &RelayCost{}
	}
	setup := f.cfg.Setup
	added := n - len(f.vs) - f.cfg.Gates
	u0 := f.spent()
	wait := f.profile(ctx, n, "connect", time.Duration(3+n/500)*time.Second)
	began, before := time.Now(), n-added
	mark := f.ends.n.Load()
	f.grow(ctx, n)
	deadline := time.Now().Add(time.Duration(60+n/20) * time.Second)
	for !f.current() {
		if time.Now().After(deadline) {
			f.reconnects(&p, "connect", mark)
			return p, f.c.failed(fmt.Errorf("bench: %s: %d verifiers not all current after a minute", f.name, n))
		}
		time.Sleep(50 * time.Millisecond)
	}
	current := time.Now()
	// Let the connection burst settle (first reports, the records written).
	time.Sleep(f.cfg.Settle)
	u1 := f.spent()
	wait()
	// The streams connected meanwhile cost their idle rate too (measured
	// below): the verifiers there before for the whole phase, the new ones
	// for half the time until all were current (they connect in a ramp)
	// and then for the rest. On a loaded machine the phase lasts long.
	phase := time.Since(began).Seconds()
	streamSeconds := float64(before)*phase + float64(added)*(current.Sub(began).Seconds()/2+time.Since(current).Seconds())
	connect := u1.sub(u0)
	if added > 0 {
		p.MemPerStreamKiB = connect.nodeRSS / float64(added)
	}
	setup.logf("fanout %s: %d verifiers current after %.1f s; %s", f.name, n, current.Sub(began).Seconds(),
		f.reconnects(&p, "connect", mark))

	mark = f.ends.n.Load()
	p.Listed = f.listed(ctx, f.wantListed(n))
	time.Sleep(f.cfg.Settle / 2) // the listing's asks answered
	wait = f.profile(ctx, n, "idle", f.cfg.Idle)
	i0 := f.spent()
	t0 := time.Now()
	time.Sleep(f.cfg.Idle)
	i1 := f.spent()
	wait()
	idle := i1.sub(i0).scale(1 / time.Since(t0).Seconds())
	p.IdlePer1000 = idle.node * 1000 / float64(n)
	setup.logf("fanout %s: idle %.2f%% of a core (%.2f%% per 1,000); %s%s", f.name, idle.node*100, p.IdlePer1000*100,
		f.reconnects(&p, "idle", mark), f.relayIdle(&p, idle, i1))
	var beyond spent
	if added > 0 {
		beyond = connect.sub(idle.scale(streamSeconds / float64(n))).scale(1000 / float64(added))
		p.ConnectMS = max(0, beyond.node)
	}
	setup.logf("fanout %s: connect %.2f ms of node CPU per verifier beyond idle (%.2f ms in all, over %.1f s)%s",
		f.name, p.ConnectMS, connect.node*1000/float64(max(added, 1)), phase, f.relayConnect(&p, beyond, connect, added))

	if err := f.revocationPhases(ctx, &p, n, idle); err != nil {
		return p, err
	}
	if last && f.cfg.Bulk > 0 {
		f.bulkPhase(ctx, &p, n)
	}
	return p, nil
}

// relayIdle records the relays' idle rate in p and says it for the log.
func (f *fanoutRun) relayIdle(p *FanoutPoint, idle, now spent) string {
	if p.Relay == nil {
		return ""
	}
	p.Relay.IdlePer1000 = idle.relay * 1000 / float64(p.Verifiers)
	p.Relay.MemKiB = now.relayRSS
	return fmt.Sprintf("; relays: idle %.2f%% of a core (%.2f%% per 1,000), %.0f MiB resident",
		idle.relay*100, p.Relay.IdlePer1000*100, now.relayRSS/1024)
}

// relayConnect records the relays' cost to connect a verifier (beyond
// idle, and their memory) in p and says it for the log.
func (f *fanoutRun) relayConnect(p *FanoutPoint, beyond, connect spent, added int) string {
	if p.Relay == nil || added <= 0 {
		return ""
	}
	p.Relay.ConnectMS = max(0, beyond.relay)
	p.Relay.MemPerVerifierKiB = connect.relayRSS / float64(added)
	return fmt.Sprintf("; relays %.2f ms per verifier beyond idle, %.0f KiB per verifier", p.Relay.ConnectMS, p.Relay.MemPerVerifierKiB)
}

// revocationPhases measures the revocations, plain then with ?confirm=.
func (f *fanoutRun) revocationPhases(ctx context.Context, p *FanoutPoint, n int, idle spent) error {
	revPhase := time.Duration(float64(f.cfg.Revocations) / f.cfg.Rate * float64(time.Second))
	wait := f.profile(ctx, n, "revocations", revPhase)
	mark := f.ends.n.Load()
	prop, cpuRev, _, err := f.revocations(ctx, n, 0, idle)
	wait()
	rec := f.reconnects(p, "revocations", mark)
	if err != nil {
		return err
	}
	p.Propagation, p.CPUPerRevVerifierUS = prop, cpuRev.node/float64(n)*1e6
	f.cfg.logf("fanout %s: propagation p50 %.1f p99 %.1f max %.1f ms; %.2f µs per revocation per verifier%s; %s",
		f.name, prop.P50, prop.P99, prop.Max, p.CPUPerRevVerifierUS, f.relayRevocation(p, cpuRev, false), rec)
	wait = f.profile(ctx, n, "confirm", revPhase)
	mark = f.ends.n.Load()
	_, cpuConf, conf, err := f.revocations(ctx, n, 5*time.Second, idle)
	wait()
	rec = f.reconnects(p, "confirm", mark)
	if err != nil {
		return err
	}
	p.Confirm, p.CPUPerRevVerifierConfUS = conf, cpuConf.node/float64(n)*1e6
	p.NotInForce, f.notInForce = f.notInForce, 0
	p.InForceEarly, f.early = f.early, 0
	f.cfg.logf("fanout %s: confirm p50 %.1f p99 %.1f ms; %.2f µs per revocation per verifier%s; %s",
		f.name, conf.P50, conf.P99, p.CPUPerRevVerifierConfUS, f.relayRevocation(p, cpuConf, true), rec)
	return nil
}

// relayRevocation records the relays' CPU per revocation (perRev.relay,
// in seconds) per verifier in p, and says it and the total for the log.
func (f *fanoutRun) relayRevocation(p *FanoutPoint, perRev spent, confirm bool) string {
	if p.Relay == nil {
		return ""
	}
	us := perRev.relay / float64(p.Verifiers) * 1e6
	if confirm {
		p.Relay.CPUPerRevVerifierConfUS = us
	} else {
		p.Relay.CPUPerRevVerifierUS = us
	}
	return fmt.Sprintf(" on the nodes, %.2f on the relays, %.2f in all", us, us+(perRev.node/float64(p.Verifiers)*1e6))
}

// bulkPhase sends the bulk revocation and records its time to every
// verifier and who spent CPU on it. A bulk that does not reach everyone
// is a failure of the point (BulkErr), not of the run.
func (f *fanoutRun) bulkPhase(ctx context.Context, p *FanoutPoint, n int) {
	wait := f.profile(ctx, n, "bulk", 10*time.Second)
	u0 := f.spent()
	self := strconv.Itoa(os.Getpid())
	self0, faults0 := procCPU(self), procMinorFaults(self)
	mark := f.ends.n.Load()
	var err error
	p.BulkMS, err = f.bulk(ctx)
	used := f.spent().sub(u0)
	p.BulkNodeCPU, p.BulkFollowerCPU = used.node, procCPU(self)-self0
	p.BulkFollowerFaults = (procMinorFaults(self) - faults0) / float64(f.cfg.Bulk*len(f.vs))
	wait()
	if err != nil {
		p.BulkErr = err.Error()
		f.c.keep = true // the error names the logs
	}
	relays := ""
	if p.Relay != nil {
		p.Relay.BulkCPU = used.relay
		relays = fmt.Sprintf(", relays %.1f s", used.relay)
	}
	f.cfg.logf("fanout %s: bulk of %d reached all %d in %.0f ms (%v); CPU: nodes %.1f s%s, in-process verifiers %.1f s (%.3f minor page faults per entry per verifier); %s",
		f.name, f.cfg.Bulk, n, p.BulkMS, err, p.BulkNodeCPU, relays, p.BulkFollowerCPU, p.BulkFollowerFaults, f.reconnects(p, "bulk", mark))
}

// reconnects records in p the in-process verifiers' stream ends since
// mark (an earlier count) as phase's, and says how many for its log line.
func (f *fanoutRun) reconnects(p *FanoutPoint, phase string, mark int64) string {
	n, last := f.ends.since(mark)
	if n == 0 {
		return "no stream reconnects"
	}
	if p.Reconnects == nil {
		p.Reconnects = map[string]int64{}
	}
	p.Reconnects[phase] = n
	return fmt.Sprintf("%d stream reconnects (the last after: %s)", n, last)
}

// fanoutPhases are the phases of a point, in order.
var fanoutPhases = []string{"connect", "idle", "revocations", "confirm", "bulk"}

// reportReconnects adds p's stream reconnects, per phase that had any, to
// r's results.
func (f *fanoutRun) reportReconnects(r *Report, p FanoutPoint) {
	for _, phase := range fanoutPhases {
		if n := p.Reconnects[phase]; n > 0 {
			r.result(p.prefix()+"stream reconnects during "+phase, float64(n), "")
		}
	}
}

// listed returns how many verifiers node 0 lists, asking until it lists n
// or 5s have passed: a node learns of the verifiers of another from the
// records each writes every second.
func (f *fanoutRun) listed(ctx context.Context, n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := 0
		if l, err := f.c.clients[0].Verifiers(ctx); err == nil {
			got = len(l.Verifiers)
		}
		if got >= n || time.Now().After(deadline) || ctx.Err() != nil {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// revocations revokes Revocations sessions at Rate (with ?confirm=confirm
// when set), and returns the propagation to every in-process verifier,
// the nodes' and the relays' CPU per revocation beyond their idle rates,
// and the calls' latency.
func (f *fanoutRun) revocations(ctx context.Context, n int, confirm time.Duration, idle spent) (Summary, spent, Summary, error) {
	k := f.cfg.Revocations
	sessions := make([]client.Tokens, k)
	for i := range sessions {
		t, err := f.c.clients[i%len(f.c.clients)].CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprintf("fanout-%d-%d", n, i), Device: "fanout"})
		if err != nil {
			return Summary{}, spent{}, Summary{}, f.c.failed(fmt.Errorf("bench: session on node %d: %w", i%len(f.c.clients), err))
		}
		sessions[i] = t
	}
	watches := make([]*watch, k)
	for i, s := range sessions {
		w := &watch{done: make(chan struct{})}
		w.left.Store(int64(len(f.vs)))
		watches[i] = w
		f.tr.sessions.Store(s.SessionID, w)
	}
	var prop, calls, applied []time.Duration
	var failed error
	var notInForce, early atomic.Int64
	var mu sync.Mutex
	var wg sync.WaitGroup
	u0 := f.spent()
	self0 := procCPU(strconv.Itoa(os.Getpid()))
	start := time.Now()
	tick := time.NewTicker(time.Duration(float64(time.Second) / f.cfg.Rate))
	for i := range k {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			node := i % len(f.c.clients)
			res, err := f.c.clients[node].RevokeSession(ctx, client.SessionRevocation{SessionID: sessions[i].SessionID, Confirm: confirm})
			acked := time.Now()
			if err != nil {
				err = fmt.Errorf("bench: revocation %d (confirm %v) on node %d after %v: %w", i, confirm, node, acked.Sub(t0).Round(time.Millisecond), err)
			}
			if err == nil && confirm > 0 && (res.Confirmation == nil || !res.Confirmation.InForce) {
				notInForce.Add(1)
			} else if err == nil && confirm > 0 && !closed(watches[i].done) && f.leased(acked) {
				// Every verifier applies an entry before it reports
				// holding it: while all hold leases, in force must mean
				// applied everywhere.
				early.Add(1)
			}
			if err == nil {
				select {
				case <-watches[i].done:
				case <-time.After(10 * time.Second):
					err = fmt.Errorf("bench: revocation %d not applied by %d verifiers within 10s", i, watches[i].left.Load())
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed = err
				return
			}
			calls = append(calls, acked.Sub(t0))
			prop = append(prop, max(0, time.Duration(watches[i].last.Load()-acked.UnixNano())))
			applied = append(applied, time.Duration(watches[i].last.Load()-t0.UnixNano()))
		}()
	}
	tick.Stop()
	wg.Wait()
	used := f.spent().sub(u0)
	wall := time.Since(start).Seconds()
	self := procCPU(strconv.Itoa(os.Getpid())) - self0
	f.cfg.logf("fanout %s: %d revocations (confirm %v): this process (the in-process verifiers) spent %.2f µs of CPU per revocation per verifier, %.0f%% of a core",
		f.name, k, confirm, self/float64(k)/float64(len(f.vs))*1e6, self/wall*100)
	for _, s := range sessions {
		f.tr.sessions.Delete(s.SessionID)
	}
	if failed != nil {
		return Summary{}, spent{}, Summary{}, f.c.failed(failed)
	}
	if err := f.gatesReject(ctx, sessions); err != nil {
		return Summary{}, spent{}, Summary{}, f.c.failed(err)
	}
	perRev := used.sub(idle.scale(wall)).scale(1 / float64(k))
	f.early += early.Load()
	if n := notInForce.Load(); n > 0 {
		f.notInForce += n
	}
	if confirm > 0 {
		// Where a confirmed call's time goes: until the last verifier
		// applied the entry, and from then until the call answered (the
		// reports, the node's evaluation, the answer).
		a := summarize(applied)
		f.cfg.logf("fanout %s: confirm calls: the last verifier applied the entry after p50 %.1f p99 %.1f ms of the call",
			f.name, a.P50, a.P99)
	}
	return summarize(prop), perRev, summarize(calls), nil
}

// leased reports whether every in-process verifier held a lease at t.
func (f *fanoutRun) leased(t time.Time) bool {
	for _, v := range f.vs {
		if !v.c.State().FreshUntil.After(t) {
			return false
		}
	}
	return true
}

// closed reports whether ch is closed, without waiting.
func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// gatesReject checks that every gate process refuses every revoked token.
func (f *fanoutRun) gatesReject(ctx context.Context, sessions []client.Tokens) error {
	for _, g := range f.c.gateURL {
		for _, s := range sessions {
			deadline := time.Now().Add(10 * time.Second)
			for {
				revoked, err := revokedAt(ctx, f.c.hc, g, s.AccessToken)
				if revoked {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("bench: gate %s still accepts a revoked token after 10s (%v)", g, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	return nil
}

// bulk revokes Bulk subjects in one call and returns the time until every
// in-process verifier holds all of them.
func (f *fanoutRun) bulk(ctx context.Context) (float64, error) {
	items := make([]client.RevokeItem, f.cfg.Bulk)
	for i := range items {
		// Access tokens only: one subject entry each, whether or not the
		// subject has sessions.
		items[i] = client.RevokeItem{Subject: fmt.Sprintf("%s%d", bulkPrefix, i), Scope: client.ScopeAccess}
	}
	f.tr.bulkLeft.Store(int64(len(f.vs)))
	start := time.Now()
	if _, err := f.c.clients[0].RevokeMany(ctx, client.BulkRevocation{Items: items, Reason: "bench fanout bulk"}); err != nil {
		return 0, f.c.failed(fmt.Errorf("bench: bulk revocation: %w", err))
	}
	deadline := time.Now().Add(60 * time.Second)
	for f.tr.bulkLeft.Load() > 0 {
		if time.Now().After(deadline) {
			return 0, f.c.failed(fmt.Errorf("bench: bulk revocation: %d verifiers lack it after 60s (the first holds %d entries of it, position %d)",
				f.tr.bulkLeft.Load(), f.vs[0].bulk.Load(), f.vs[0].c.State().Position))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return ms(time.Duration(f.tr.bulkDone.Load() - start.UnixNano())), nil
}

// prefix starts the name of each of the point's results: "sqlite 10
// verifiers: ", "sqlite 10 verifiers via 4 relays: ".
func (p FanoutPoint) prefix() string {
	return topology(fmt.Sprintf("%s %d verifiers", p.Backend, p.Verifiers), p.Relays) + ": "
}

func (f *fanoutRun) report(r *Report, p FanoutPoint) {
	pre := p.prefix()
	r.latency(pre+"propagation", p.Propagation)
	r.result(pre+"node CPU per revocation per verifier", p.CPUPerRevVerifierUS, "µs")
	r.result(pre+"node CPU per confirmed revocation per verifier", p.CPUPerRevVerifierConfUS, "µs")
	r.result(pre+"idle node CPU per 1,000 verifiers", p.IdlePer1000*100, "% of a core")
	r.result(pre+"node CPU to connect a verifier", p.ConnectMS, "ms")
	r.result(pre+"node memory per verifier", p.MemPerStreamKiB, "KiB")
	reportRelays(r, p)
	r.latency(pre+"confirm call", p.Confirm)
	if p.BulkMS > 0 {
		r.result(pre+"bulk revocation to every verifier", p.BulkMS, "ms")
	}
	if p.BulkNodeCPU > 0 {
		r.result(pre+"bulk revocation: node CPU", p.BulkNodeCPU, "s")
		if p.Relay != nil {
			r.result(pre+"bulk revocation: relays' CPU", p.Relay.BulkCPU, "s")
		}
		r.result(pre+"bulk revocation: in-process verifiers' CPU", p.BulkFollowerCPU, "s")
		r.result(pre+"bulk revocation: in-process verifiers' minor page faults per entry per verifier", p.BulkFollowerFaults, "")
	}
	if p.NotInForce > 0 {
		r.fail("%s%d ?confirm=5s calls answered not in force", pre, p.NotInForce)
	}
	if p.InForceEarly > 0 {
		r.fail("%s%d ?confirm=5s calls answered in force before every verifier had applied the entry", pre, p.InForceEarly)
	}
	if p.BulkErr != "" {
		r.fail("%s%s", pre, p.BulkErr)
	}
	r.result(pre+"verifiers listed", float64(p.Listed), "")
	f.reportReconnects(r, p)
	if want := f.wantListed(p.Verifiers); p.Listed != want {
		r.fail("%s: tegata verifiers listed %d of %d verifiers", pre, p.Listed, want)
	}
}

// wantListed is how many followers the nodes list with n verifiers: all
// of them, or through relays the relays (a relay reports for the
// verifiers and gates behind it under its own name).
func (f *fanoutRun) wantListed(n int) int {
	if f.relays == 0 {
		return n
	}
	return f.relays
}

// reportRelays adds what the relays of a relayed point cost, and the
// totals with the nodes', to r's results.
func reportRelays(r *Report, p FanoutPoint) {
	if p.Relay == nil {
		return
	}
	pre, c := p.prefix(), p.Relay
	r.result(pre+"relays' CPU per revocation per verifier", c.CPUPerRevVerifierUS, "µs")
	r.result(pre+"relays' CPU per confirmed revocation per verifier", c.CPUPerRevVerifierConfUS, "µs")
	r.result(pre+"idle relays' CPU per 1,000 verifiers", c.IdlePer1000*100, "% of a core")
	r.result(pre+"relays' CPU to connect a verifier", c.ConnectMS, "ms")
	r.result(pre+"relays' memory per verifier", c.MemPerVerifierKiB, "KiB")
	r.result(pre+"relays' memory in all", c.MemKiB/1024, "MiB")
	r.result(pre+"nodes and relays: CPU per revocation per verifier", p.CPUPerRevVerifierUS+c.CPUPerRevVerifierUS, "µs")
	r.result(pre+"nodes and relays: CPU per confirmed revocation per verifier", p.CPUPerRevVerifierConfUS+c.CPUPerRevVerifierConfUS, "µs")
	r.result(pre+"nodes and relays: idle CPU per 1,000 verifiers", (p.IdlePer1000+c.IdlePer1000)*100, "% of a core")
	r.result(pre+"nodes and relays: CPU to connect a verifier", p.ConnectMS+c.ConnectMS, "ms")
}

// fanoutTargets checks the goals of the fan-out issue against the points:
// those of a relayed topology under IDs of their own (relayed-cost, ...),
// on the nodes' CPU as the issue counts it.
func fanoutTargets(r *Report, points []FanoutPoint, cfg FanoutConfig) {
	for _, p := range points {
		pre := topology(fmt.Sprintf("%s, %d verifiers", p.Backend, p.Verifiers), p.Relays) + ": "
		target := func(id, name string, value float64, op string, limit float64, unit string) {
			if p.Relays > 0 {
				id = "relayed-" + id
			}
			r.target(id, pre+name, value, op, limit, unit, "")
		}
		if p.Verifiers >= 1000 {
			target("cost", "node CPU per revocation per verifier", p.CPUPerRevVerifierUS, "<=", 5, "µs")
			target("cost-confirm", "node CPU per confirmed revocation per verifier", p.CPUPerRevVerifierConfUS, "<=", 5, "µs")
			target("idle", "idle node CPU per 1,000 verifiers", p.IdlePer1000*100, "<=", 2, "% of a core")
		}
		switch p.Verifiers {
		case 1000:
			target("p99", "propagation p99", p.Propagation.P99, "<=", 30, "ms")
		case 2000:
			target("p99", "propagation p99", p.Propagation.P99, "<=", 60, "ms")
			target("confirm", "?confirm= call p99", p.Confirm.P99, "<=", 100, "ms")
			target("connect", "node CPU to connect all", p.ConnectMS*2000/1000, "<=", 1, "s")
			if p.BulkMS > 0 {
				target("bulk", fmt.Sprintf("bulk of %d to every verifier", cfg.Bulk), p.BulkMS, "<=", 2000, "ms")
			}
		}
	}
}

// profile takes a CPU profile of the first node for about d, from now, into
// Setup.NodeProfiles as <tag>-<n>-<phase>.pprof; the func it returns
// waits for it. Without NodeProfiles it does nothing.
func (f *fanoutRun) profile(ctx context.Context, n int, phase string, d time.Duration) func() {
	if f.cfg.NodeProfiles == "" || len(f.c.profile) == 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := filepath.Join(f.cfg.NodeProfiles, fmt.Sprintf("%s-%d-%s.pprof", f.tag(), n, phase))
		if err := fetchProfile(ctx, f.c.profile[0], d, path); err != nil {
			f.cfg.logf("fanout %s: profile %s: %v", f.name, phase, err)
		}
	}()
	stopSelf := f.profileSelf(n, phase)
	return func() {
		<-done
		stopSelf()
	}
}

// tag names the run in profile file names: "sqlite", "sqlite-relays4".
func (f *fanoutRun) tag() string {
	if f.relays == 0 {
		return f.backend
	}
	return fmt.Sprintf("%s-relays%d", f.backend, f.relays)
}

// profileSelf takes a CPU profile of this process (the in-process
// verifiers) into Setup.NodeProfiles as <tag>-<n>-<phase>-followers.pprof
// until the func it returns is called: the followers' side of a phase.
func (f *fanoutRun) profileSelf(n int, phase string) func() {
	path := filepath.Join(f.cfg.NodeProfiles, fmt.Sprintf("%s-%d-%s-followers.pprof", f.tag(), n, phase))
	out, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(out); err != nil {
			out.Close()
		}
	}
	if err != nil {
		f.cfg.logf("fanout %s: profile %s of the followers: %v", f.name, phase, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		out.Close()
	}
}

// fetchProfile gets url?seconds=<d rounded up> into path.
func fetchProfile(ctx context.Context, url string, d time.Duration, path string) error {
	secs := max(1, int((d+time.Second-1)/time.Second))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s?seconds=%d", url, secs), nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
