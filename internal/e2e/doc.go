// Package e2e holds tegata's end-to-end tests across processes and nodes:
// several authority nodes on one real Postgres, verifiers following them
// over HTTP, streams cut and resumed, nodes and Postgres restarted. It has
// no non-test code.
package e2e
