// Package authority is tegata's token authority: it creates sessions, signs
// access tokens, rotates refresh tokens with reuse (theft) detection, records
// revocations and manages signing keys. It holds no state of its own beyond
// caches; everything durable goes through a store.Store, so any number of
// authority processes may share one Postgres.
//
// An Authority is safe for concurrent use.
package authority
