// Command benchdoc writes docs/benchmarks.md from the outputs of one run of
// scripts/bench.sh, so that no figure in that document is typed by hand. It
// reads, from -dir: micro.txt (`go test -bench` output), <name>.json and
// <name>.status for each system benchmark, commands.txt (every command the
// script ran, in order), profile-<target id>.txt (pprof output for missed
// targets) and the optional postgres-version.txt, redis-version.txt,
// loadavg.txt and date.txt (when the run began).
//
// With -plan it prints instead the profiles the script should take: one
// line per missed target that has a profile recipe.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory holding one run's outputs (required)")
	plan := flag.Bool("plan", false, "print the profiles to take for missed targets, not the document")
	elapsed := flag.Duration("elapsed", 0, "wall time of the whole run, for the document")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "benchdoc: -dir is required")
		os.Exit(2)
	}
	r := load(*dir)
	r.elapsed = elapsed.Round(time.Second)
	if *plan {
		r.plan(os.Stdout)
		return
	}
	r.write(os.Stdout)
}
