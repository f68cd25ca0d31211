package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/pgtest"
	"github.com/tegata-dev/tegata/internal/server"
	"github.com/tegata-dev/tegata/internal/testtime"
)

// clock is the node's clock in these tests. It is the wall clock, since
// the tests also talk to real processes and sockets, and the node's
// background work (record flushes, heartbeats, paced reads) must go on
// while a test waits for it; tests move it ahead to reach expiries.
type clock = testtime.Running

// parallelTests is how many tests run at once unless -parallel says
// otherwise: the tests mostly wait (on the network, Postgres, a node's
// background work), so go test's default, the CPU count, leaves the CPUs
// idle.
const parallelTests = 8

func TestMain(m *testing.M) {
	testtime.DefaultParallel(parallelTests)
	os.Exit(pgtest.Main(m))
}

func newClock() *clock { return testtime.NewRunning() }

// logBuffer collects log output so tests can check that no secret leaks.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

type env struct {
	*server.Running
	admin *client.Client
	anon  *client.Client
	clock *clock
	logs  *logBuffer
	dir   string
}

// start runs an authority on embedded SQLite in a temp dir, on a real
// loopback port.
func start(t testing.TB, tune func(*server.Config)) *env {
	t.Helper()
	logs := &logBuffer{}
	clk := newClock()
	cfg := server.Config{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:  clk,
	}
	if tune != nil {
		tune(&cfg)
	}
	r, err := server.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		// A connection the test's client dialled and never used holds
		// Shutdown for 5 s (net/http counts it as idle only then).
		http.DefaultClient.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	// Tests begin once the node is ready: its feed hub has read the log's
	// head, so streams open and position reports are taken.
	eventually(t, "the node reports ready", func() bool {
		res, err := http.Get(r.URL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
	return &env{Running: r, clock: clk, logs: logs, dir: cfg.DataDir,
		admin: &client.Client{BaseURL: r.URL, APIKey: r.APIKey},
		anon:  &client.Client{BaseURL: r.URL}}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
