package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/tegata-dev/tegata/internal/inforce"
	"github.com/tegata-dev/tegata/internal/store"
)

// InForce tells when revocations are in force on every verifier, and who
// follows the feed (internal/inforce.Cluster).
type InForce interface {
	// Confirm waits up to wait for log position seq (0: the log's head
	// now) to be in force on every verifier.
	Confirm(ctx context.Context, seq int64, wait time.Duration) inforce.Confirmation
	// List returns the live verifiers of the cluster.
	List(ctx context.Context) (inforce.Listing, error)
}

// DefaultMaxConfirm caps ?confirm= unless Config.MaxConfirm says otherwise.
const DefaultMaxConfirm = 30 * time.Second

// confirmWait reads ?confirm=<duration>. ok is false when absent.
func (s *server) confirmWait(r *http.Request) (time.Duration, bool, error) {
	v, ok := r.URL.Query()["confirm"]
	if !ok {
		return 0, false, nil
	}
	if s.inForce == nil {
		return 0, false, badRequest("confirm is not available on this server", nil)
	}
	d, err := time.ParseDuration(v[0])
	if err != nil || d < 0 || len(v) > 1 {
		return 0, false, badRequest(`confirm must be one non-negative duration, such as "5s" or "500ms"`, err)
	}
	return min(d, s.maxConfirm), true, nil
}

// appendCtx is the context a revocation's append runs under: with
// ?confirm=, marked so that the append's notification has every node ask
// its verifiers for their positions in the same write as the entry
// (store.WithConfirmation), rather than in a write of its own once this
// node's Confirm has asked.
func appendCtx(r *http.Request, confirm bool) context.Context {
	if confirm {
		return store.WithConfirmation(r.Context())
	}
	return r.Context()
}

// confirmed writes a revocation's answer: 200 as it always was, or with
// ?confirm= the confirmation too, and 202 if the wait ran out before the
// revocation was in force (it is committed either way). seq 0 confirms
// the log's head now: nothing new was recorded, but whatever revoked the
// target before is covered.
func (s *server) confirmed(w http.ResponseWriter, r *http.Request, body map[string]any, seq int64, wait time.Duration, confirm bool) {
	status := http.StatusOK
	if confirm {
		c := s.inForce.Confirm(r.Context(), seq, wait)
		body["confirmation"] = c
		if !c.InForce {
			status = http.StatusAccepted
		}
	}
	writeJSON(w, status, body)
}

// listVerifiers is GET /v1/verifiers.
func (s *server) listVerifiers(w http.ResponseWriter, r *http.Request) error {
	if s.inForce == nil {
		return &apiError{Status: http.StatusNotFound, Code: "not_found", Description: "no such endpoint for this method"}
	}
	l, err := s.inForce.List(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}
