// Package apicheck holds the test that keeps docs/packages.md and the
// public packages' exported names in step: every exported name of
// verifier, verifier/verifiertest, client, gate and token is listed there
// with the reason it is public, and every name listed there exists. It has
// no code of its own.
package apicheck
