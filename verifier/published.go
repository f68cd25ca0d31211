package verifier

import (
	"errors"
	"time"

	"github.com/tegata-dev/tegata/token"
)

// This file follows what the authority publishes about its tokens besides
// its keys: the longest lifetime of a token that can still be valid
// (tegata_access_token_max_lifetime) and the clock skew it tolerates
// (tegata_leeway). Both change while verifiers run: an operator lowers the
// access token lifetime during an incident (the longest valid lifetime
// stays up until the old tokens expire) or raises it. The verifier reads
// them at start (Config.adopt), again with every periodic key set fetch,
// and when a token fails a claim check, since a lifetime longer than the
// one known may just have been raised: that fetch is the one an unknown kid
// triggers, at most one per unknownKidInterval. Values the Config sets are
// kept, except that a Leeway larger than the authority's is lowered to it.

// refetchable reports whether a failed verification may succeed once the
// authority's key set and published values are fetched again.
func (v *Verifier) refetchable(err error) bool {
	return v.keys != nil && (errors.Is(err, token.ErrUnknownKey) || errors.Is(err, token.ErrClaims))
}

// follow adopts what the authority publishes now (see above). Called from
// the key source's fetches, one at a time.
func (v *Verifier) follow(d discovery) {
	old := v.expect.Load()
	e := *old
	if !v.cfg.maxLifetimeSet && d.MaxLifetime > 0 {
		e.MaxLifetime = time.Duration(d.MaxLifetime) * time.Second
	}
	if d.Leeway > 0 {
		published := time.Duration(d.Leeway) * time.Second
		switch {
		case !v.cfg.leewaySet:
			e.Leeway = published
		case e.Leeway > published:
			v.log.Error("verifier: the authority lowered its leeway below Config.Leeway; using the authority's, "+
				"since it stops sending revocations that long after they expire", "config", v.cfg.Leeway, "authority", published)
			e.Leeway = published
		}
	}
	if e.MaxLifetime != old.MaxLifetime || e.Leeway != old.Leeway {
		v.expect.Store(&e)
		v.log.Info("verifier: following the authority's token lifetime and leeway",
			"max_lifetime", e.MaxLifetime, "leeway", e.Leeway)
	}
}
