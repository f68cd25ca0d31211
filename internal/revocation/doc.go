// Package revocation holds the in-memory revocation set every verifier keeps:
// revoked sessions and subject cutoffs, each remembered until the last token
// it covers has expired.
//
// A Set is safe for concurrent use. Lookups (Revoked) are the hot path, run
// on every verified request: they take no lock and write no shared memory,
// so they scale across cores (but for a subject whose cutoff's generation
// does not fit 32 bits, which no authority's counter reaches: that one is
// read under its shard's lock). Writers lock one of many shards at a time
// (Reset: all of them). Apply, however many entries a feed delivers at once,
// never holds a lookup back; Prune and Reset, which move or drop entries in
// place, hold back a lookup only on the shard being changed, for as long as
// that one change takes.
package revocation
