// Package benchcmd is the tegata-bench command line: it parses arguments and
// runs the system benchmarks of package bench, which start real authority
// nodes and gates from a tegata binary. It lives outside the product binary
// so that `tegata` carries no benchmark code.
package benchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	benchmark "github.com/tegata-dev/tegata/internal/bench"
)

const benchUsage = `want 'tegata-bench propagation|flood|authority|gate [flags]'`

const benchHelp = `tegata-bench: the system benchmarks of tegata, each a few minutes at most on 2 cores.

Usage: tegata-bench NAME [flags]

  tegata-bench propagation   N authority nodes on Postgres and M gates (processes); revoke
                             sessions at a steady rate; revoke-acknowledged → rejected at every
                             gate latency (all revocations must arrive, else exit 1); then
                             revocations with ?confirm=: the call's latency, and every gate
                             must refuse the token at the first request after the call
  tegata-bench flood         a bulk revocation of 10,000 subjects end to end (call → every gate
                             rejects), then 100,000 revocations in a burst through the bulk API:
                             time until every gate has them, gate latency during the flood vs
                             idle, verifier heap and CPU per entry
  tegata-bench authority     session creations, refreshes and revocations per second through the
                             HTTP API on SQLite and on Postgres (in-process authority, loopback)
  tegata-bench gate          requests per second and latency through the gate, next to a
                             trivial upstream hit directly
  tegata-bench fanout        10 to 2,000 verifiers (real feed clients in this process, and a few
                             gates) on one SQLite node and on three Postgres nodes: propagation,
                             node CPU per revocation per verifier, idle and connect cost, memory
                             per stream, ?confirm= latency, a bulk revocation; --relays K puts K
                             'tegata relay' processes between the nodes and the verifiers (and
                             adds their CPU and memory); --doc FILE writes the table and a plot
                             (--png) into FILE's fan-out section

  tegata-bench chaos         3 authority nodes on Postgres, 4 gates and 200 in-process verifiers,
                             each behind a cutting proxy, under load (sessions, refreshes, revocations,
                             role changes, probes) while a nemesis drawn from --seed kills, pauses,
                             cuts, stalls, skews, rotates keys and slows Postgres; then a checker reads
                             the whole history and fails the run naming any broken promise
                             (docs/reliability.md)

Every benchmark takes --tegata (the tegata binary it starts nodes and gates from; env
TEGATA_BIN, default 'tegata' next to tegata-bench, then on PATH), --db (Postgres URL; env
TEGATA_BENCH_POSTGRES), --json and --cpuprofile FILE. Run 'tegata-bench NAME -h' for its
flags; scripts/bench.sh builds both binaries, runs them all and writes docs/benchmarks.md.

Example:
  go build -o /tmp/tegata ./cmd/tegata && go build -o /tmp/tegata-bench ./internal/bench/cmd/tegata-bench
  /tmp/tegata-bench propagation --duration 10s
`

// benchCommands are the system benchmarks; each registers its flags and
// returns the function that runs it.
var benchCommands = map[string]func(Env, *flag.FlagSet, *benchmark.Setup) func(context.Context) (*benchmark.Report, error){
	"propagation": benchPropagation,
	"flood":       benchFlood,
	"authority":   benchAuthority,
	"gate":        benchGate,
	"fanout":      benchFanout,
	"chaos":       benchChaos,
}

// Env is the process environment as the command sees it.
type Env struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// OS returns the real process environment.
func OS() Env {
	return Env{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// errUsage marks a command-line mistake: exit code 2.
var errUsage = errors.New("usage")

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// Main runs the command line and returns the exit code.
func Main(env Env) int {
	err := bench(env, env.Args)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(env.Stderr, "tegata-bench: %s\n(run 'tegata-bench -h' for help)\n", strings.TrimPrefix(err.Error(), "usage: "))
		return 2
	default:
		fmt.Fprintf(env.Stderr, "tegata-bench: %v\n", err)
		return 1
	}
}

func bench(env Env, args []string) error {
	if len(args) == 0 {
		return usageErr(benchUsage)
	}
	switch args[0] {
	case "-h", "--help", "help":
		fmt.Fprint(env.Stdout, benchHelp)
		return nil
	case "upstream":
		return benchUpstream(env, args[1:])
	}
	register, ok := benchCommands[args[0]]
	if !ok {
		return usageErr("unknown benchmark %q; %s", args[0], benchUsage)
	}
	fs := newFlags(env, args[0])
	setup := benchmark.Setup{Progress: env.Stderr}
	tegataBin := fs.String("tegata", env.Getenv("TEGATA_BIN"), "the tegata binary to start authority nodes and gates from (env TEGATA_BIN; default: tegata next to this program, then on PATH)")
	fs.StringVar(&setup.Postgres, "db", envOr(env, "TEGATA_BENCH_POSTGRES", benchmark.DefaultPostgres),
		"Postgres URL; each run creates and drops a schema of its own (env TEGATA_BENCH_POSTGRES)")
	jsonOut := fs.Bool("json", false, "print the results as JSON (for scripts/bench.sh)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (load generator and any in-process authority) to this file")
	run := register(env, fs, &setup)
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("cannot find the tegata-bench binary to start the upstream from: %w", err)
	}
	setup.Self = self
	if setup.Binary, err = findTegata(*tegataBin, self); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	stopProfile, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	r, err := run(ctx)
	stopProfile()
	if err != nil {
		return err
	}
	if *jsonOut {
		if err := printJSON(env, r); err != nil {
			return err
		}
	} else {
		r.WriteText(env.Stdout)
	}
	if r.Failed() {
		return fmt.Errorf("%s: %d failure(s): %s", r.Benchmark, len(r.Failures), strings.Join(r.Failures, "; "))
	}
	return nil
}

func benchPropagation(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.PropagationConfig
	fs.IntVar(&cfg.Authorities, "authorities", 3, "authority nodes sharing one Postgres")
	fs.IntVar(&cfg.Gates, "gates", 8, "gate processes, following the nodes in turn")
	fs.Float64Var(&cfg.Rate, "rate", 50, "session revocations per second")
	fs.Float64Var(&cfg.ConfirmRate, "confirm-rate", 20, "then: revocations per second, every other one with ?confirm=")
	fs.DurationVar(&cfg.ConfirmDuration, "confirm-duration", 0, "how long that phase lasts (default 20s)")
	fs.DurationVar(&cfg.ConfirmWait, "confirm", 0, "the ?confirm= wait of each (default 5s)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long to revoke (default 20s)")
	fs.DurationVar(&cfg.Poll, "poll", 0, "probe interval per gate per pending revocation (default 1ms)")
	fs.DurationVar(&cfg.Timeout, "timeout", 0, "a revocation not rejected everywhere within this is missing (default 10s)")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		return benchmark.Propagation(ctx, cfg)
	}
}

func benchFlood(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.FloodConfig
	fs.IntVar(&cfg.Authorities, "authorities", 2, "authority nodes sharing one Postgres")
	fs.IntVar(&cfg.Gates, "gates", 3, "gate processes, following the nodes in turn")
	fs.IntVar(&cfg.Revocations, "revocations", 100_000, "subject revocations in the burst")
	fs.IntVar(&cfg.Batch, "batch", 10_000, "subjects per bulk revocation call (POST /v1/revocations, at most 10,000)")
	fs.IntVar(&cfg.Workers, "workers", 2, "bulk revocation calls in flight at once, alternating nodes")
	fs.IntVar(&cfg.Bulk, "bulk", 10_000, "subjects of the end-to-end bulk revocation measured before the burst (call → every gate rejects); -1 skips it")
	fs.Float64Var(&cfg.ProbeRate, "probe-rate", 0, "gate /auth latency probes per second (default 400)")
	fs.DurationVar(&cfg.Idle, "idle", 0, "how long to probe the idle gates first (default 5s)")
	memProfile := fs.String("memprofile", "", "write a heap profile taken while the in-process verifier holds the flood to this file")
	catchUpProfile := fs.String("catchup-profile", "", "write a CPU profile of in-process verifiers catching up on the whole flood to this file")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		for _, p := range []struct {
			path string
			w    *io.Writer
		}{{*memProfile, &cfg.HeapProfile}, {*catchUpProfile, &cfg.CatchUpProfile}} {
			if p.path == "" {
				continue
			}
			f, err := os.Create(p.path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			*p.w = f
		}
		return benchmark.Flood(ctx, cfg)
	}
}

func benchAuthority(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.AuthorityConfig
	stores := fs.String("stores", "sqlite,postgres", "comma-separated stores to measure")
	fs.IntVar(&cfg.Workers, "workers", 32, "concurrent HTTP clients")
	fs.DurationVar(&cfg.Phase, "phase", 0, "duration of each phase (default 5s)")
	statusList := fs.Bool("status-list", true, "serve Token Status Lists, as tegata serve does by default (false: measure without the status index)")
	fs.StringVar(&cfg.PhaseProfiles, "phase-profiles", "", "write a CPU profile of this process per store and phase into this directory (STORE-PHASE.pprof); not with --cpuprofile")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		cfg.Stores = strings.Split(*stores, ",")
		cfg.NoStatusList = !*statusList
		return benchmark.Authority(ctx, cfg)
	}
}

func benchGate(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.GateConfig
	fs.IntVar(&cfg.Workers, "workers", 16, "concurrent connections of the load generator")
	fs.DurationVar(&cfg.Duration, "duration", 0, "duration of each measurement (default 10s)")
	fs.IntVar(&cfg.Tokens, "tokens", 256, "distinct valid tokens the requests carry, in turn")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		return benchmark.Gate(ctx, cfg)
	}
}

// benchUpstream is the trivial upstream `tegata-bench gate` compares the
// gate with and proxies to: it answers every request 200. Not listed in the
// usage text; it exists so the comparison runs in a process of its own, as
// the gate does.
func benchUpstream(env Env, args []string) error {
	fs := newFlags(env, "upstream")
	listen := fs.String("listen", "127.0.0.1:0", "listen address")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return benchmark.ServeUpstream(ctx, *listen, env.Stderr)
}

// startCPUProfile starts profiling this process into path, if set, and
// returns the function that stops it.
func startCPUProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// findTegata returns the tegata binary the benchmarks start: the flag's
// value, else tegata next to this program, else tegata on PATH.
func findTegata(flagValue, self string) (string, error) {
	if flagValue != "" {
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("--tegata: %w", err)
		}
		return flagValue, nil
	}
	if p := filepath.Join(filepath.Dir(self), "tegata"); isFile(p) {
		return p, nil
	}
	if p, err := exec.LookPath("tegata"); err == nil {
		return p, nil
	}
	return "", errors.New("no tegata binary: build one (go build -o DIR/tegata ./cmd/tegata) next to tegata-bench, put it on PATH, or pass --tegata PATH")
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// newFlags returns a flag set that reports errors instead of exiting.
func newFlags(env Env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("tegata-bench "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses flags, turning flag errors into usage errors.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageErr("%v", err)
	}
	return nil
}

func envOr(env Env, name, def string) string {
	if v := env.Getenv(name); v != "" {
		return v
	}
	return def
}

func printJSON(env Env, v any) error {
	enc := json.NewEncoder(env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func benchFanout(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.FanoutConfig
	counts := fs.String("counts", "10,100,1000,2000", "verifier counts, increasing (gates included)")
	backends := fs.String("backends", "sqlite,postgres", "sqlite (one node) and/or postgres (--nodes nodes)")
	fs.IntVar(&cfg.PostgresNodes, "nodes", 3, "authority nodes on Postgres")
	fs.IntVar(&cfg.Gates, "gates", 3, "gate processes among the verifiers")
	fs.Float64Var(&cfg.Rate, "rate", 10, "revocations per second in each phase")
	fs.IntVar(&cfg.Revocations, "revocations", 30, "revocations per phase (plain, then with ?confirm=5s)")
	fs.DurationVar(&cfg.Idle, "idle", 0, "how long idle CPU is measured at each count (default 5s)")
	fs.IntVar(&cfg.Bulk, "bulk", 10_000, "subjects of the bulk revocation at the largest count; -1 skips it")
	relays := fs.String("relays", "0", "K: tegata relay processes between the nodes and the in-process verifiers (relay i follows node i mod nodes, verifier i relay i mod K, gates included); comma-separated to measure several topologies in one run, 0 being direct (0,4: direct, then through 4 relays)")
	doc := fs.String("doc", "", "replace the fan-out section of this Markdown file (docs/benchmarks.md) with the results")
	pngPath := fs.String("png", "docs/fanout.png", "with --doc: where the plot goes")
	fs.StringVar(&setup.NodeProfiles, "node-profiles", "", "start the nodes with --pprof and write CPU profiles of the first node per phase (connect, idle, revocations, confirm, bulk) into this directory, as BACKEND-N-PHASE.pprof, and of this process (the in-process verifiers) as BACKEND-N-PHASE-followers.pprof")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		for _, c := range strings.Split(*counts, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n < 1 {
				return nil, usageErr("--counts: %q is not a positive number", c)
			}
			cfg.Counts = append(cfg.Counts, n)
		}
		for _, k := range strings.Split(*relays, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(k))
			if err != nil || n < 0 {
				return nil, usageErr("--relays: %q is not a number of relays (0 or more)", k)
			}
			cfg.Relays = append(cfg.Relays, n)
		}
		cfg.Backends = strings.Split(*backends, ",")
		r, points, err := benchmark.Fanout(ctx, cfg)
		if err != nil || *doc == "" {
			return r, err
		}
		rel, relErr := filepath.Rel(filepath.Dir(*doc), *pngPath)
		if relErr != nil {
			rel = *pngPath
		}
		cmd := "tegata-bench fanout " + strings.Join(os.Args[2:], " ")
		return r, benchmark.WriteFanoutDoc(*doc, *pngPath, rel, cmd, r, points)
	}
}

func benchChaos(_ Env, fs *flag.FlagSet, setup *benchmark.Setup) func(context.Context) (*benchmark.Report, error) {
	var cfg benchmark.ChaosConfig
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Minute, "how long faults are injected (then the run settles and is checked)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "draws the fault schedule: one seed, one schedule")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "authority nodes on Postgres")
	fs.IntVar(&cfg.Gates, "gates", 4, "gate processes")
	fs.IntVar(&cfg.Verifiers, "verifiers", 200, "in-process verifiers")
	fs.DurationVar(&cfg.Interval, "interval", 3*time.Second, "mean time between two faults")
	fs.DurationVar(&cfg.StaleAfter, "stale-after", 5*time.Second, "staleness bound of every verifier and gate")
	fs.BoolVar(&cfg.PGRestart, "pg-restart", false, "let the nemesis restart the Postgres server (pg_ctlcluster 15 main restart): breaks every other user of the server")
	fs.StringVar(&cfg.History, "history", "", "write the history (JSON lines) to this file and keep it (default: a temporary file, kept only when the run fails)")
	return func(ctx context.Context) (*benchmark.Report, error) {
		cfg.Setup = *setup
		return benchmark.Chaos(ctx, cfg)
	}
}
