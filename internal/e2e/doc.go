// Package e2e holds tegata's end-to-end tests across processes and nodes:
// several authority nodes on one real Postgres, verifiers following them
// over HTTP, streams cut and resumed, nodes and Postgres restarted. It has
// no non-test code. It is a Go module of its own (with go.work tying it to
// the root), so that what only these tests use, chromedp above all, stays
// out of the library's go.mod.
//
// The tests run in parallel (each has its own Postgres schema, data
// directory and ports chosen by the kernel), except TestPostgresRestart,
// which restarts the server they all use; browser tests take turns for
// Chromium (newBrowser).
package e2e
