// Package bench runs tegata's system benchmarks (`tegata-bench ...`):
// revocation propagation across authority nodes and gates, a revocation
// flood, authority throughput, and gate throughput against a bare upstream.
// Each benchmark returns a Report that the CLI prints as a table or as JSON
// for scripts/bench.sh, which turns it into docs/benchmarks.md.
//
// Benchmarks start real processes (the tegata binary named in Setup) on
// loopback and a fresh Postgres schema per run, and stop and drop them before
// returning. A benchmark is one sequential run: its functions are not meant
// to be called concurrently with each other.
//
// The benchmarks (with benchdoc, benchcmd and cmd/tegata-bench) are a Go
// module of their own, tied to the root by go.work, so that what only they
// use (golang.org/x/perf) stays out of the library's go.mod.
package bench
