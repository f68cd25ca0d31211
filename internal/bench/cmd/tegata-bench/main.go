// Command tegata-bench runs tegata's system benchmarks against real
// authority nodes and gates started from a tegata binary. See
// `tegata-bench -h` and scripts/bench.sh.
package main

import (
	"os"

	"github.com/tegata-dev/tegata/internal/bench/benchcmd"
)

func main() { os.Exit(benchcmd.Main(benchcmd.OS())) }
