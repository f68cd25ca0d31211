package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
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
}

// AuthorityTarget is the rate of session creations and of refreshes per
// second the project aims at on Postgres.
const AuthorityTarget = 2000

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
	switch name {
	case "sqlite":
	case "postgres":
		s, err := newSchema(ctx, cfg.postgres())
		if err != nil {
			return err
		}
		defer s.drop()
		sc.DB = s.dsn
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
	return runAuthorityPhases(ctx, cfg, name, c, r)
}

// phase is one measured phase of Authority.
type phase struct {
	what     string
	res      loadResult
	from, to cpuSample
}

func runAuthorityPhases(ctx context.Context, cfg AuthorityConfig, name string, c *client.Client, r *Report) error {
	// Warm up connections, the store's pools and caches.
	if _, err := createSessions(ctx, []*client.Client{c}, "warmup", 200, cfg.Workers); err != nil {
		return err
	}
	cpu := newCPUGroups()
	cpu.add("benchmark process (authority + load generator)", os.Getpid())
	if name == "postgres" {
		cpu.addName("postgres", "postgres")
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
		ph := phase{what: p.what, from: cpu.sample()}
		ph.res = closedLoop(ctx, cfg.Workers, cfg.Phase, p.call)
		ph.to = cpu.sample()
		cfg.logf("authority %s: %.0f %s/s", name, ph.res.rate(), p.what)
		phases = append(phases, ph)
	}
	recordAuthority(r, name, cpu, phases)
	return nil
}

// recordAuthority adds one store's phases to the report.
func recordAuthority(r *Report, name string, cpu *cpuGroups, phases []phase) {
	for _, ph := range phases {
		r.CPU = append(r.CPU, cpu.use(name+" "+ph.what, ph.from, ph.to))
		if ph.res.errs > 0 {
			r.fail("%s %s: %d errors, first: %v", name, ph.what, ph.res.errs, ph.res.firstErr)
		}
		r.result(fmt.Sprintf("%s: %s", name, ph.what), ph.res.rate(), "/s")
		r.result(fmt.Sprintf("%s: %s p50", name, ph.what), ph.res.lat.P50, "ms")
		r.result(fmt.Sprintf("%s: %s p99", name, ph.what), ph.res.lat.P99, "ms")
	}
	if name == "postgres" {
		r.target("authority-create-pg", "session creations/s on Postgres", phases[0].res.rate(), ">=", AuthorityTarget, "/s", "")
		r.target("authority-refresh-pg", "refreshes/s on Postgres", phases[1].res.rate(), ">=", AuthorityTarget, "/s", "")
	}
}

// quietLogger logs errors only, to w (nowhere when w is nil).
func quietLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelError}))
}
