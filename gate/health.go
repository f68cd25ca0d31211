package gate

import (
	"net/http"

	"github.com/tegata-dev/tegata/internal/httperr"
	"time"
)

// health answers /healthz: the process is up and serving.
func (g *gate) health(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the /readyz answer. It leaves out the feed's source and last
// error: in proxy mode clients can reach /readyz, and those name internal
// hosts. The verifier logs them.
type readiness struct {
	Status     string     `json:"status"` // "ready", "not_ready" or "starting"
	Ready      bool       `json:"ready"`
	Reason     string     `json:"reason,omitempty"` // why not ready, naming no host
	Position   int64      `json:"position"`
	Head       int64      `json:"head"`
	LastHeard  *time.Time `json:"last_heard,omitempty"`
	LagSeconds float64    `json:"lag_seconds"`
	Entries    int        `json:"entries"`
	Overflow   bool       `json:"overflow"`
	Keys       int        `json:"keys"`
	// ClockSkewSeconds is the authority's clock minus the gate's.
	ClockSkewSeconds float64 `json:"clock_skew_seconds"`
}

// ready answers /readyz: 200 when the verifier's revocation state is
// current (tokens are checked locally) and its clock agrees with the
// authority's within the leeway, else 503, with the state either way.
func (g *gate) ready(w http.ResponseWriter, r *http.Request) {
	if !allowRead(w, r) {
		return
	}
	st := g.v.State()
	body := readiness{Status: "ready", Ready: st.Ready, Reason: st.Reason, Position: st.Position, Head: st.Head,
		LagSeconds: st.Lag.Seconds(), Entries: st.Entries, Overflow: st.Overflow, Keys: st.Keys,
		ClockSkewSeconds: st.ClockSkew.Seconds()}
	if !st.LastHeard.IsZero() {
		t := st.LastHeard.UTC()
		body.LastHeard = &t
	}
	if st.ClockOff != "" {
		// Every token would be refused as expired or not yet valid: the
		// clock is named first whatever else is pending, since it does not
		// heal on its own.
		reason := st.ClockOff
		if !st.Ready && st.Reason != "" {
			reason += "; " + st.Reason
		}
		body.Ready, body.Reason = false, reason
	}
	status := http.StatusOK
	if !body.Ready {
		body.Status, status = "not_ready", http.StatusServiceUnavailable
	}
	writeJSON(w, status, body)
}

// allowRead answers 405 to anything but GET and HEAD.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or HEAD")
	return false
}
