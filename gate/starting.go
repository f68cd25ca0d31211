package gate

import (
	"fmt"
	"net/http"

	"github.com/tegata-dev/tegata/verifier"
)

// errStarting refuses requests that arrive before the verifier exists. It
// wraps verifier.ErrStale: to a client it is the same "not in sync" as a
// gate that lost its authority.
var errStarting = fmt.Errorf("%w: %s", verifier.ErrStale, startingReason)

const startingReason = "starting: waiting for an authority to answer"

// Starting returns the handler to serve while the verifier the gate will
// wrap is being built (verifier.New waits for an authority that is not up
// yet): /healthz answers 200, /readyz 503 with the reason, and each request
// the gate would check is refused with 401 "verifier not in sync with
// authority", as a stale gate refuses it. Serve New's handler once
// verifier.New has returned. Config.Metrics is not used.
func Starting(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	return &starting{g: &gate{cfg: cfg, log: cfg.Logger}}
}

type starting struct{ g *gate }

func (s *starting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == PathHealth:
		s.g.health(w, r)
	case r.URL.Path == PathReady:
		if allowRead(w, r) {
			writeJSON(w, http.StatusServiceUnavailable, readiness{Status: "starting", Reason: startingReason})
		}
	case s.g.cfg.Upstream != nil || isAuthPath(r.URL.Path):
		s.g.refuse(w, r, errStarting)
	default:
		notFound(w)
	}
}
