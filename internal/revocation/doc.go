// Package revocation holds the in-memory revocation set every verifier keeps:
// revoked sessions and subject cutoffs, each remembered until the last token
// it covers has expired.
//
// A Set is safe for concurrent use. Lookups (Revoked) are the hot path, run
// on every verified request: they take no lock and write no shared memory,
// so they scale across cores. Apply, Prune and Reset are rare; they lock one
// of many shards at a time (Reset: all of them), and a lookup meets them only
// on the shard being changed, for as long as that one change takes.
package revocation
