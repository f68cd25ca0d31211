package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/store"
)

// apiError keeps what the client is told apart from the cause that is
// logged (tailscale's tsweb.HTTPError shape).
type apiError struct {
	Status      int
	Code        string
	Description string
	Cause       error     // logged, never sent
	Header      [2]string // optional extra header (name, value)
	// Challenge: the answer refuses a bearer credential, so it carries
	// the shared WWW-Authenticate challenge (httperr.Refuse). NoCredential:
	// none was sent, so the challenge names no error (RFC 6750 §3.1).
	Challenge, NoCredential bool
}

func (e *apiError) Error() string { return e.Code + ": " + e.Description }

func badRequest(desc string, cause error) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "invalid_request", Description: desc, Cause: cause}
}

// toAPIError classifies any error returned by a handler.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var e *authority.Error
	if errors.As(err, &e) {
		status := http.StatusBadRequest
		switch e.Code {
		case authority.CodeNotFound:
			status = http.StatusNotFound
		case authority.CodeConflict:
			status = http.StatusConflict
		}
		return &apiError{Status: status, Code: e.Code, Description: e.Description, Cause: err}
	}
	if errors.Is(err, authority.ErrStale) {
		return &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "this node cannot read the revocation log right now; try another node", Cause: err,
			Header: [2]string{"Retry-After", "1"}}
	}
	if errors.Is(err, store.ErrUnwritable) {
		// Nothing was changed: a sign-out or revocation answered so is not
		// in force, and the client must know to try again.
		return &apiError{Status: http.StatusServiceUnavailable, Code: "temporarily_unavailable",
			Description: "this node cannot write to its store right now: nothing was changed (a sign-out or revocation is NOT in force); try again or another node", Cause: err,
			Header: [2]string{"Retry-After", "1"}}
	}
	if errors.Is(err, authority.ErrUnauthorized) {
		return &apiError{Status: http.StatusUnauthorized, Code: httperr.InvalidToken, Description: "invalid API key", Challenge: true}
	}
	return &apiError{Status: http.StatusInternalServerError, Code: "server_error", Description: "internal error", Cause: err}
}

// writeError is the single error path: log with the cause, answer with the
// client-safe code and description.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ae := toAPIError(err)
	level := slog.LevelInfo
	switch {
	case ae.Status >= 500:
		level = slog.LevelError
	case ae.Status == http.StatusTooManyRequests:
		level = slog.LevelDebug // an abusive client must not flood the logs
	}
	attrs := []any{"method", r.Method, "route", r.Pattern, "status", ae.Status, "error", ae.Code, "description", ae.Description}
	if ae.Cause != nil {
		attrs = append(attrs, "cause", ae.Cause.Error())
	}
	log.Log(r.Context(), level, "request refused", attrs...)
	if ae.Header[0] != "" {
		w.Header().Set(ae.Header[0], ae.Header[1])
	}
	if ae.Challenge {
		httperr.Refuse(w, ae.Status, ae.Code, ae.Description, ae.NoCredential)
		return
	}
	httperr.Write(w, ae.Status, ae.Code, ae.Description)
}

// writeJSON is the shared JSON writer (no-store).
var writeJSON = httperr.WriteJSON
