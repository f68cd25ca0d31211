package inforce

import (
	"time"

	"github.com/tegata-dev/tegata/internal/store"
)

// SilentHold is how long a verifier that went silent past its staleness
// bound is still counted as stale in the metrics, unless a verifier of the same
// name and host was heard since (it restarted). A frozen gate is listed as
// stale for only half its bound before it drops out of the listing, too
// briefly for an alert that samples every 15 s; counted this long, it is
// seen.
const SilentHold = 5 * time.Minute

// silent counts the verifiers of vs silent past their bound for at most
// SilentHold and not superseded by a later one of the same name and host.
func silent(vs map[string]store.VerifierRecord, now time.Time) int {
	type who struct{ name, host string }
	latest := map[who]time.Time{}
	for _, v := range vs {
		k := who{v.Name, v.Host}
		if v.HeardAt.After(latest[k]) {
			latest[k] = v.HeardAt
		}
	}
	n := 0
	for _, v := range vs {
		gone := now.Sub(v.HeardAt) - v.StaleAfter
		if gone > 0 && gone <= SilentHold && !latest[who{v.Name, v.Host}].After(v.HeardAt) {
			n++
		}
	}
	return n
}
