package bench

import (
	"fmt"
	"io"
	"runtime"
	"time"
)

// DefaultPostgres is the database the benchmarks use when Setup.Postgres is
// empty (the CLI's --db flag defaults to env TEGATA_BENCH_POSTGRES, then
// this).
const DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// Setup is what every system benchmark needs from its environment.
type Setup struct {
	// Binary is the tegata executable started for authority nodes and gates.
	Binary string
	// Self is the tegata-bench executable, started as `Self upstream` for
	// the bare upstream the gate benchmark compares with.
	Self string
	// Env is added to the environment of every child process (tests run
	// their own binary as tegata by setting a variable here).
	Env []string
	// Postgres is the base URL of a database in which each run creates, and
	// finally drops, a schema of its own. Empty: DefaultPostgres.
	Postgres string
	// Progress receives one line per phase, so a long run shows signs of
	// life. Nil: nothing.
	Progress io.Writer
	// NodeProfiles, when set, starts authority nodes with their profiles
	// on a metrics listener (serve --metrics-addr --pprof), and the
	// benchmarks that support it write CPU profiles of the first node
	// per phase into this directory.
	NodeProfiles string
}

// nodeFlags are the serve flags every authority node gets beyond its own:
// with NodeProfiles, a metrics listener serving profiles.
func (s Setup) nodeFlags() ([]string, error) {
	if s.NodeProfiles == "" {
		return nil, nil
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	return []string{"--metrics-addr", addr, "--pprof"}, nil
}

func (s Setup) postgres() string {
	if s.Postgres == "" {
		return DefaultPostgres
	}
	return s.Postgres
}

func (s Setup) logf(format string, args ...any) {
	if s.Progress != nil {
		fmt.Fprintf(s.Progress, time.Now().Format("15:04:05.000")+" "+format+"\n", args...)
	}
}

// numCPU is the number of cores the machine offers this process.
func numCPU() int { return runtime.NumCPU() }
