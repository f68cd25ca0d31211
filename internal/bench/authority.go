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
	pools := make([][]client.Tokens, cfg.Workers)
	s0 := cpu.sample()
	create := closedLoop(ctx, cfg.Workers, cfg.Phase, func(ctx context.Context, w, i int) error {
		t, err := c.CreateSession(ctx, fmt.Sprintf("user-%d-%d", w, i), "bench", map[string]any{"roles": []string{"reader"}})
		if err == nil {
			pools[w] = append(pools[w], t)
		}
		return err
	})
	cfg.logf("authority %s: %.0f session creations/s", name, create.rate())
	s1 := cpu.sample()
	refresh := closedLoop(ctx, cfg.Workers, cfg.Phase, func(ctx context.Context, w, i int) error {
		p := pools[w]
		if len(p) == 0 {
			return errDone
		}
		t, err := c.Refresh(ctx, p[i%len(p)].RefreshToken)
		if err == nil {
			p[i%len(p)].RefreshToken = t.RefreshToken
		}
		return err
	})
	cfg.logf("authority %s: %.0f refreshes/s", name, refresh.rate())
	s2 := cpu.sample()
	revoke := closedLoop(ctx, cfg.Workers, cfg.Phase, func(ctx context.Context, w, i int) error {
		if i >= len(pools[w]) {
			return errDone
		}
		_, err := c.RevokeSession(ctx, pools[w][i].SessionID, "bench")
		return err
	})
	cfg.logf("authority %s: %.0f revocations/s", name, revoke.rate())
	s3 := cpu.sample()
	for _, ph := range []struct {
		what     string
		res      loadResult
		from, to cpuSample
	}{{"session creations", create, s0, s1}, {"refreshes", refresh, s1, s2}, {"session revocations", revoke, s2, s3}} {
		r.CPU = append(r.CPU, cpu.use(name+" "+ph.what, ph.from, ph.to))
		if ph.res.errs > 0 {
			r.fail("%s %s: %d errors, first: %v", name, ph.what, ph.res.errs, ph.res.firstErr)
		}
		r.result(fmt.Sprintf("%s: %s", name, ph.what), ph.res.rate(), "/s")
		r.result(fmt.Sprintf("%s: %s p50", name, ph.what), ph.res.lat.P50, "ms")
		r.result(fmt.Sprintf("%s: %s p99", name, ph.what), ph.res.lat.P99, "ms")
	}
	if name == "postgres" {
		for _, ph := range []struct {
			id, what string
			res      loadResult
		}{{"authority-create-pg", "session creations/s on Postgres", create}, {"authority-refresh-pg", "refreshes/s on Postgres", refresh}} {
			r.target(ph.id, ph.what, ph.res.rate(), ">=", AuthorityTarget, "/s", "")
		}
	}
	return nil
}

// quietLogger logs errors only, to w (nowhere when w is nil).
func quietLogger(w io.Writer) *slog.Logger {
	if w == nil {
		w = io.Discard
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelError}))
}
