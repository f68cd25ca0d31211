// Package validity is the time rule of tegata access tokens written once:
// the instants at which a token's iat, nbf and exp let it be accepted.
// Package token applies it in Verify; package verifier keeps the interval
// of a cached token so that a cache hit costs two comparisons. Pure
// functions, safe for concurrent use.
package validity

import "time"

// Window returns the interval of instants at which a token with these
// times is accepted, both ends included: not before iat or nbf (nbf zero
// when absent) less leeway, not after exp plus leeway, and, when
// maxLifetime is positive, not while exp lies more than maxLifetime after
// the instant plus leeway (a token minted with a lifetime longer than the
// verifier allows only becomes acceptable that close to its expiry).
func Window(iat, nbf, exp time.Time, leeway, maxLifetime time.Duration) (from, until time.Time) {
	from = iat
	if nbf.After(from) {
		from = nbf
	}
	if maxLifetime > 0 {
		if earliest := exp.Add(-maxLifetime); earliest.After(from) {
			from = earliest
		}
	}
	return from.Add(-leeway), exp.Add(leeway)
}
