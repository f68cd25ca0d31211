package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httpapi"
	"github.com/tegata-dev/tegata/internal/server"
)

// AuthorityConfig tunes Authority. Zero fields take the defaults.
type AuthorityConfig struct {
	Setup
	// Stores to measure, in order: "sqlite" and/or "postgres". Default both.
	Stores  []string
	Workers int           // concurrent HTTP clients; default 32
	Phase   time.Duration // duration of each phase; default 5s
	// NoStatusList serves without Token Status Lists (tegata serve
	// --status-list=false), to measure what the status index costs.
	NoStatusList bool
	// PhaseProfiles, when set, is a directory to write a CPU profile of
	// this process into for each phase of each store, named
	// STORE-PHASE.pprof ("postgres-session-revocations.pprof").
	PhaseProfiles string
}

// Authority targets: session creations and refreshes per second on either
// store, revocations per second on Postgres, through the HTTP API.
const (
	AuthorityTarget       = 5000
	AuthorityRevokeTarget = 10_000
)

// Authority measures one in-process authority per store over HTTP on
// loopback: session creations, then refreshes of those sessions, then their
// revocation, each phase by Workers concurrent clients for Phase.
func Authority(ctx context.Context, cfg AuthorityConfig) (*Report, error) {
	if len(cfg.Stores) == 0 {
		cfg.Stores = []string{"sqlite", "postgres"}
	}
	cfg.Workers = cmp0(cfg.Workers, 32)
	cfg.Phase = cmp0(cfg.Phase, 5*time.Second)
	began := time.Now()
	r := &Report{Benchmark: "authority"}
	r.param("server", "in-process authority (internal/server), HTTP on loopback, no rate limits")
	r.param("concurrent clients", cfg.Workers)
	r.param("phase duration", cfg.Phase)
	r.param("status lists", !cfg.NoStatusList)
	for _, name := range cfg.Stores {
		if err := authorityStore(ctx, cfg, name, r); err != nil {
			return nil, err
		}
	}
	r.Seconds = time.Since(began).Seconds()
	return r, nil
}

// authorityStore runs the three phases against one store.
func authorityStore(ctx context.Context, cfg AuthorityConfig, name string, r *Report) error {
	dir, err := os.MkdirTemp("", "tegata-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sc := server.Config{Addr: "127.0.0.1:0", DataDir: dir, Limits: &httpapi.Limits{}, Logger: quietLogger(cfg.Progress)}
	if cfg.NoStatusList {
		sc.Authority.StatusLists.Size = -1 // no status lists
	}
	var pgFind func() []int
	switch name {
	case "sqlite":
	case "postgres":
		s, err := newSchema(ctx, cfg.postgres())
		if err != nil {
			return err
		}
		defer s.drop()
		// The authority's connections carry a name of their own, so that
		// only the Postgres processes serving them count as its CPU.
		app := "tegata-bench-" + s.name
		if sc.DB, err = withParam(s.dsn, "application_name", app); err != nil {
			return err
		}
		find, stop, err := s.backends(ctx, app, cfg.logf)
		if err != nil {
			return err
		}
		defer stop()
		pgFind = find
	default:
		return fmt.Errorf("bench: unknown store %q (want sqlite or postgres)", name)
	}
	srv, err := server.Start(ctx, sc)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	c := &client.Client{BaseURL: srv.URL, APIKey: srv.APIKey, HTTPClient: newHTTPClient(cfg.Workers)}
	ws, _ := srv.Store.(writeStats)
	return runAuthorityPhases(ctx, cfg, name, c, ws, pgFind, r)
}

// writeStats is what a store that commits in batches reports (package
// sqlstore): writes committed, and in how many transactions.
type writeStats interface {
	WriteStats() (writes, batches int64)
}

// selfGroup names this process's CPU in the authority benchmark.
const selfGroup = "benchmark process (authority + load generator)"

// phase is one measured phase of Authority.
type phase struct {
	what     string
	res      loadResult
	from, to cpuSample
	perBatch float64 // writes per transaction, 0 if the store does not say
}

func stats(ws writeStats) (writes, batches int64) {
	if ws == nil {
		return 0, 0
	}
	return ws.WriteStats()
}

// runAuthorityPhases runs the phases against c; pgFind, when set, lists the
// Postgres processes serving the authority.
func runAuthorityPhases(ctx context.Context, cfg AuthorityConfig, name string, c *client.Client, ws writeStats, pgFind func() []int, r *Report) error {
	// Warm up connections, the store's pools and caches.
	if _, err := createSessions(ctx, []*client.Client{c}, "warmup", 200, cfg.Workers); err != nil {
		return err
	}
	cpu := newCPUGroups()
	cpu.add(selfGroup, os.Getpid())
	if pgFind != nil {
		cpu.addFind("postgres", pgFind)
	}
	// Each worker keeps the sessions it created: it refreshes them, then
	// revokes them.
	pools := make([][]client.Tokens, cfg.Workers)
	var phases []phase
	for _, p := range []struct {
		what string
		call func(ctx context.Context, w, i int) error
	}{
		{"session creations", func(ctx context.Context, w, i int) error {
			t, err := c.CreateSession(ctx, client.SessionRequest{Subject: fmt.Sprintf("user-%d-%d", w, i), Device: "bench", Claims: map[string]any{"roles": []string{"reader"}}})
			if err == nil {
				pools[w] = append(pools[w], t)
			}
			return err
		}},
		{"refreshes", func(ctx context.Context, w, i int) error {
			if len(pools[w]) == 0 {
				return errDone
			}
			s := &pools[w][i%len(pools[w])]
			t, err := c.Refresh(ctx, s.RefreshToken)
			if err == nil {
				s.RefreshToken = t.RefreshToken
			}
			return err
		}},
		{"session revocations", func(ctx context.Context, w, i int) error {
			if i >= len(pools[w]) {
				return errDone
			}
			_, err := c.RevokeSession(ctx, client.SessionRevocation{SessionID: pools[w][i].SessionID, Reason: "bench"})
			return err
		}},
	} {
		stopProfile, err := cfg.profilePhase(name, p.what)
		if err != nil {
			return err
		}
		ph := phase{what: p.what, from: cpu.sample()}
		w0, b0 := stats(ws)
		ph.res = closedLoop(ctx, cfg.Workers, cfg.Phase, p.call)
		ph.to = cpu.sample()
		if err := stopProfile(); err != nil {
			return err
		}
		if w1, b1 := stats(ws); b1 > b0 {
			ph.perBatch = float64(w1-w0) / float64(b1-b0)
		}
		cfg.logf("authority %s: %.0f %s/s", name, ph.res.rate(), p.what)
		phases = append(phases, ph)
	}
	recordAuthority(r, name, cpu, phases)
	return nil
}

// profilePhase starts a CPU profile of one phase if cfg asks for one, and
// returns what stops it.
func (cfg AuthorityConfig) profilePhase(store, what string) (stop func() error, err error) {
	if cfg.PhaseProfiles == "" {
		return func() error { return nil }, nil
	}
	path := filepath.Join(cfg.PhaseProfiles, store+"-"+strings.ReplaceAll(what, " ", "-")+".pprof")
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: phase profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("bench: phase profile (not with --cpuprofile): %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}

// recordAuthority adds one store's phases to the report.
func recordAuthority(r *Report, name string, cpu *cpuGroups, phases []phase) {
	for _, ph := range phases {
		use := cpu.use(name+" "+ph.what, ph.from, ph.to)
		r.CPU = append(r.CPU, use)
		if ph.res.errs > 0 {
			r.fail("%s %s: %d errors, first: %v", name, ph.what, ph.res.errs, ph.res.firstErr)
		}
		r.result(fmt.Sprintf("%s: %s", name, ph.what), ph.res.rate(), "/s")
		r.result(fmt.Sprintf("%s: %s p50", name, ph.what), ph.res.lat.P50, "ms")
		r.result(fmt.Sprintf("%s: %s p99", name, ph.what), ph.res.lat.P99, "ms")
		if ph.perBatch > 0 {
			r.result(fmt.Sprintf("%s: %s, writes per transaction (group commit)", name, ph.what), ph.perBatch, "")
		}
		// CPU per call is what a busy machine disturbs least: it says what
		// a call costs, where the rate says how fast this machine was.
		if ph.res.ok > 0 {
			per := func(group string) float64 { return use.Get(group) / float64(ph.res.ok) * 1e6 }
			r.result(fmt.Sprintf("%s: %s, CPU per call of this process (authority + load generator)", name, ph.what), per(selfGroup), "µs")
			if name == "postgres" {
				r.result(fmt.Sprintf("%s: %s, CPU per call of Postgres", name, ph.what), per("postgres"), "µs")
			}
		}
	}
	short := map[string]string{"sqlite": "sl", "postgres": "pg"}[name]
	store := map[string]string{"sqlite": "SQLite", "postgres": "Postgres"}[name]
	r.target("authority-create-"+short, "session creations/s on "+store, phases[0].res.rate(), ">=", AuthorityTarget, "/s", "")
	r.target("authority-refresh-"+short, "refreshes/s on "+store, phases[1].res.rate(), ">=", AuthorityTarget, "/s", "")
	if name == "postgres" {
		r.target("authority-revoke-pg", "revocations/s through the API on Postgres", phases[2].res.rate(), ">=", AuthorityRevokeTarget, "/s", "")
	}
}

// quietLogger logs errors only, to w (nowhere when w is nil).
func quietLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelError}))
}
