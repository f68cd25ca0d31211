// Package server wires a running authority: it prepares the data directory
// (master key, bootstrap API key), opens the store, starts the authority,
// the feed hub and the HTTP server, and shuts them down gracefully. It is
// what `tegata serve` runs; tests start it in-process.
package server
