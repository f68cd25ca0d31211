package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
)

// GateConfig tunes Gate. Zero fields take the defaults.
type GateConfig struct {
	Setup
	Workers  int           // concurrent connections of the load generator; default 16
	Duration time.Duration // each measurement; default 10s
	Tokens   int           // distinct valid tokens sent in turn; default 256
	// Warmup precedes each measurement: connections are dialed and every
	// token is verified once, so the measurement sees the steady state.
	// Default 1s.
	Warmup time.Duration
}

// Gate measures requests per second and latency of `tegata gate` as a
// forward-auth endpoint and as a reverse proxy, next to the same request
// answered directly by a trivial upstream, all separate processes on
// loopback driven by a closed-loop Go load generator.
func Gate(ctx context.Context, cfg GateConfig) (*Report, error) {
	cfg.Workers = cmp0(cfg.Workers, 16)
	cfg.Duration = cmp0(cfg.Duration, 10*time.Second)
	cfg.Tokens = cmp0(cfg.Tokens, 256)
	cfg.Warmup = cmp0(cfg.Warmup, time.Second)
	if cfg.Binary == "" || cfg.Self == "" {
		return nil, errNoBinary
	}
	began := time.Now()
	g, err := startGateRig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer g.close()
	r := &Report{Benchmark: "gate"}
	r.param("load generator", fmt.Sprintf("Go, closed loop, %d connections, %s per measurement after %s warm-up", cfg.Workers, cfg.Duration, cfg.Warmup))
	r.param("request", fmt.Sprintf("GET with Authorization: Bearer <one of %d valid access tokens, in turn>", cfg.Tokens))
	r.param("processes", "authority (in-process, SQLite) · gate · upstream (answers 200 \"ok\") · load generator, all on loopback")
	rates := make([]float64, 3)
	for i, t := range []gateTarget{
		{"upstream directly", g.upstream + "/auth", true},
		{"gate forward-auth (/auth → 200)", g.forward + "/auth", false},
		{"gate reverse proxy → upstream", g.proxy + "/app", true},
	} {
		if rates[i], err = g.run(ctx, t, r); err != nil {
			return nil, err
		}
	}
	r.result("forward-auth throughput / direct", rates[1]/rates[0], "×")
	r.result("reverse proxy throughput / direct", rates[2]/rates[0], "×")
	r.note("connections opened to the upstream count what the upstream accepted during the measurement: the load generator keeps %d alive; a client that opens many more is not reusing them (e.g. Go's http.Transport keeps only 2 idle connections per host unless told otherwise)", cfg.Workers)
	if err := g.alive(); err != nil {
		return nil, err
	}
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

// gateTarget is one thing Gate measures.
type gateTarget struct {
	name, url string
	upstream  bool // the requests reach the upstream
}

// run warms t up, measures it and adds the figures to r; it returns the
// throughput.
func (g *gateRig) run(ctx context.Context, t gateTarget, r *Report) (float64, error) {
	g.measure(ctx, t.url, g.cfg.Warmup)
	cpu := g.cpuGroups()
	before := cpu.sample()
	conns0, err := g.upstreamConns(ctx)
	if err != nil {
		return 0, err
	}
	res := g.measure(ctx, t.url, g.cfg.Duration)
	r.CPU = append(r.CPU, cpu.use(t.name, before, cpu.sample()))
	conns1, err := g.upstreamConns(ctx)
	if err != nil {
		return 0, err
	}
	if res.errs > 0 {
		r.fail("%s: %d errors, first: %v", t.name, res.errs, res.firstErr)
	}
	g.cfg.logf("gate: %s: %.0f req/s", t.name, res.rate())
	r.result(t.name+": throughput", res.rate(), "req/s")
	r.result(t.name+": p50", res.lat.P50, "ms")
	r.result(t.name+": p99", res.lat.P99, "ms")
	if t.upstream {
		r.result(t.name+": connections opened to the upstream", float64(conns1-conns0), "")
	}
	return res.rate(), nil
}

// gateRig is the processes Gate measures.
type gateRig struct {
	cfg                      GateConfig
	srv                      *server.Running
	dir                      string
	procs                    []*process
	upstream, forward, proxy string
	tokens                   []string
	hc                       *http.Client
}

func startGateRig(ctx context.Context, cfg GateConfig) (g *gateRig, err error) {
	g = &gateRig{cfg: cfg, hc: newHTTPClient(cfg.Workers * 2)}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	if g.dir, err = os.MkdirTemp("", "tegata-bench-"); err != nil {
		return g, err
	}
	g.srv, err = server.Start(ctx, server.Config{Addr: "127.0.0.1:0", DataDir: g.dir, FeedKey: benchFeedKey,
		Limits: &httpapi.Limits{}, Logger: quietLogger(cfg.Progress)})
	if err != nil {
		return g, err
	}
	c := &client.Client{BaseURL: g.srv.URL, APIKey: g.srv.APIKey, HTTPClient: g.hc}
	toks, err := createSessions(ctx, []*client.Client{c}, "gate", cfg.Tokens, 16)
	if err != nil {
		return g, err
	}
	for _, t := range toks {
		g.tokens = append(g.tokens, t.AccessToken)
	}
	self := g.cfg.Setup
	self.Binary = self.Self
	up, err := g.startWith(ctx, self, "upstream", nil, "upstream", "--listen", "127.0.0.1:0")
	if err != nil {
		return g, err
	}
	g.upstream = up
	if g.forward, err = g.startGate(ctx, "gate forward-auth"); err != nil {
		return g, err
	}
	g.proxy, err = g.startGate(ctx, "gate proxy", "--upstream", g.upstream)
	return g, err
}

// start runs a child that logs its URL and waits for that line.
func (g *gateRig) start(ctx context.Context, name string, env []string, args ...string) (string, error) {
	return g.startWith(ctx, g.cfg.Setup, name, env, args...)
}

// startWith is start with another binary (setup.Binary).
func (g *gateRig) startWith(ctx context.Context, setup Setup, name string, env []string, args ...string) (string, error) {
	p, err := startProcess(setup, "", name, env, args...)
	if err != nil {
		return "", err
	}
	g.procs = append(g.procs, p)
	return p.waitListening(ctx)
}

// startGate runs a gate on a free port and waits until it is ready.
func (g *gateRig) startGate(ctx context.Context, name string, extra ...string) (string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", err
	}
	args := append([]string{"gate", "--authority", g.srv.URL, "--listen", addr, "--log-level", "warn"}, extra...)
	p, err := startProcess(g.cfg.Setup, "", name, gateEnv(benchFeedKey), args...)
	if err != nil {
		return "", err
	}
	g.procs = append(g.procs, p)
	url := "http://" + addr
	return url, p.waitHTTP(ctx, g.hc, url+"/readyz")
}

// measure runs the load generator against url for d.
func (g *gateRig) measure(ctx context.Context, url string, d time.Duration) loadResult {
	return closedLoop(ctx, g.cfg.Workers, d, func(ctx context.Context, w, i int) error {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+g.tokens[(w*7919+i)%len(g.tokens)])
		resp, err := g.hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s answered %s", url, resp.Status)
		}
		return nil
	})
}

// cpuGroups accounts for the gates, the upstream and this process.
func (g *gateRig) cpuGroups() *cpuGroups {
	c := newCPUGroups()
	for _, p := range g.procs {
		c.add(p.name, p.cmd.Process.Pid)
	}
	c.add("benchmark process (load generator, authority)", os.Getpid())
	return c
}

// upstreamConns asks the upstream how many connections it has accepted.
func (g *gateRig) upstreamConns(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", g.upstream+upstreamConnsPath, nil)
	if err != nil {
		return 0, err
	}
	resp, err := g.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (g *gateRig) alive() error {
	for _, p := range g.procs {
		if p.exited() {
			return p.errorf("exited during the run (%v)", p.cmd.ProcessState)
		}
	}
	return nil
}

func (g *gateRig) close() {
	g.hc.CloseIdleConnections() // see cluster.close
	for i := len(g.procs) - 1; i >= 0; i-- {
		g.procs[i].stop()
	}
	if g.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = g.srv.Shutdown(sctx)
	}
	if g.dir != "" {
		_ = os.RemoveAll(g.dir)
	}
}

// benchFeedKey is the feed key of the gate benchmark's authority.
var benchFeedKey = "tgk_benchfeed_" + randomString(24)

// gateEnv is the environment of a gate child: the feed key, under the name
// gates read (and the name gates read before it, for an older binary).
func gateEnv(feedKey string) []string {
	return []string{"TEGATA_FEED_KEY=" + feedKey, "TEGATA_API_KEY=" + feedKey}
}
