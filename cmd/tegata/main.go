// Command tegata runs the tegata authority, the gate, operator commands and
// benchmarks. See `tegata -h`.
package main

import (
	"os"

	"github.com/tegata-dev/tegata/internal/cli"
)

func main() { os.Exit(cli.Main(cli.OS())) }
