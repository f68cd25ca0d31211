package cli

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/gate"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/verifier"
)

// startingReason is what /readyz says while 'tegata gate' waits for
// verifier.New, which returns once an authority has accepted the API key.
const startingReason = "starting: waiting for an authority to answer"

// errStarting refuses requests that arrive before the verifier exists. It
// wraps verifier.ErrStale: to a client it is the same "not in sync" as a
// gate that lost its authority.
var errStarting = fmt.Errorf("%w: %s", verifier.ErrStale, startingReason)

// startingGate is what 'tegata gate' serves until its verifier exists:
// /healthz answers 200, /readyz 503 with the reason, and each request the
// gate would check (every one in proxy mode, the forward-auth paths
// otherwise) is refused with 401 "verifier not in sync with authority", as
// a stale gate refuses it.
type startingGate struct {
	proxy bool
	log   *slog.Logger
}

func (s *startingGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == gate.PathHealth || p == gate.PathReady:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or HEAD")
		} else if p == gate.PathHealth {
			httperr.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		} else {
			httperr.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "ready": false, "reason": startingReason})
		}
	case s.proxy || p == "/" || p == gate.PathAuth || strings.HasPrefix(p, gate.PathAuth+"/"):
		s.log.InfoContext(r.Context(), "gate: request refused", "reason", verifier.Reason(errStarting), "err", errStarting,
			"method", r.Method, "path", p, "remote", r.RemoteAddr)
		verifier.WriteError(w, r, errStarting)
	default:
		httperr.Write(w, http.StatusNotFound, "not_found", "no such path: the gate is starting")
	}
}
