// Package revocation holds the in-memory revocation set every verifier keeps:
// revoked sessions and subject cutoffs, each remembered until the last token
// it covers has expired.
//
// A Set is safe for concurrent use. Lookups (Revoked) are the hot path, run
// on every verified request, and take only a read lock on one of many shards,
// so they scale across cores; Apply, Prune and Reset are rare and lock one
// shard at a time (Reset: all of them).
package revocation
