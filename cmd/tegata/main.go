// Command tegata runs the tegata authority, the gate and the operator
// commands. See `tegata -h`. The system benchmarks are a command of their
// own, tegata-bench (internal/bench/cmd/tegata-bench, a module of its own),
// so that the product binary carries no benchmark code.
package main

import (
	"os"

	"github.com/tegata-dev/tegata/internal/cli"
)

func main() { os.Exit(cli.Main(cli.OS())) }
