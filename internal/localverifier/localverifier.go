// Package localverifier names what a verifier over state its owner keeps
// current is given: the key set and the revocation set of tegata's own
// processes (the authority verifying its own tokens; verifiertest, the test
// kit apps use).
//
// Such a process sets verifier.Config's Local field, which the Config
// carries in an unexported embedded struct: go doc does not show it and an
// app cannot build a Source (this package is internal), while the compiler
// checks both ends. verifier.New then builds a local verifier: it is never
// stale, starts no goroutine and makes no request.
package localverifier

import (
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/token"
)

// Source is the state a local verifier reads. Its owner keeps both current;
// the verifier never changes them.
type Source struct {
	// Keys is called on every Verify and must be cheap.
	Keys func() token.KeyLookup
	// Set is the revocation set the owner applies entries to.
	Set *revocation.Set
	// AcceptBound makes Verify accept DPoP-bound tokens without a proof:
	// for the authority's introspection and RFC 7009 revocation, whose
	// callers are not the token's presenter (a resource server checks the
	// proof itself, then asks).
	AcceptBound bool
}
