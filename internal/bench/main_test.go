package bench_test

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/bench"
	"github.com/tegata-dev/tegata/internal/bench/benchcmd"
	"github.com/tegata-dev/tegata/internal/cli"
)

// childEnv makes the test binary run as the tegata command (or, for
// "upstream", as tegata-bench), so the system benchmarks under test can
// start authority nodes, gates and the upstream from it without building
// cmd/tegata and tegata-bench first.
const childEnv = "TEGATA_BENCH_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(loopbackPeerEnv); spec != "" {
		loopbackPeer(spec)
		os.Exit(0)
	}
	if spec := os.Getenv(spinEnv); spec != "" {
		spin(spec)
	}
	if os.Getenv(childEnv) == "1" {
		if len(os.Args) > 1 && os.Args[1] == "upstream" {
			os.Exit(benchcmd.Main(benchcmd.OS()))
		}
		os.Exit(cli.Main(cli.OS()))
	}
	code := m.Run()
	dropLookupSchema()
	os.Exit(code)
}

// setup returns a Setup that starts this test binary as tegata, on the
// test Postgres; without Postgres it skips the test (fails under CI=true).
func setup(t *testing.T) bench.Setup {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	return bench.Setup{Binary: bin, Self: bin, Env: []string{childEnv + "=1"}, Postgres: testPostgres(t), Progress: tLog{t}}
}

// testPostgres returns the DSN of the test database if it answers.
func testPostgres(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("TEGATA_TEST_POSTGRES")
	if dsn == "" {
		dsn = bench.DefaultPostgres
	}
	db, err := sql.Open("pgx", dsn)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		unreachable(tb, "Postgres at "+dsn+" (set TEGATA_TEST_POSTGRES)", err)
	}
	return dsn
}

// unreachable fails under CI=true, where the servers are part of the
// environment, and skips otherwise.
func unreachable(tb testing.TB, what string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s unreachable under CI=true: %v", what, err)
	}
	tb.Skipf("%s unreachable; skipping (under CI=true this fails): %v", what, err)
}

// tLog sends a benchmark's progress lines to the test log.
type tLog struct{ t *testing.T }

func (w tLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
