package gate

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/verifier"
)

// writeJSON is the one writer of JSON answers, shared with the authority
// and the verifier middleware (errors: httperr.Write).
var writeJSON = httperr.WriteJSON

// refuse answers 401 with the RFC 6750 challenge the verifier middleware
// sends (verifier.WriteError); the cause goes to the log only.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, err error) {
	g.m.refused(err)
	refuse(g.log, w, r, err)
}

// refuse is the refusal of the plain gate and of web sessions alike.
func refuse(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	logRefusal(log, r, err, verifier.Reason(err))
	verifier.WriteError(w, r, err)
}

// logRefusal logs why a request was refused, never its token. Revocations
// and stale state are Info: an operator wants to see them. Missing, expired
// and invalid tokens are routine (and cheap to send in bulk), so Debug.
func logRefusal(log *slog.Logger, r *http.Request, err error, reason string) {
	level := slog.LevelDebug
	if errors.Is(err, verifier.ErrRevoked) || errors.Is(err, verifier.ErrInactive) ||
		errors.Is(err, verifier.ErrStale) || errors.Is(err, verifier.ErrUnavailable) {
		level = slog.LevelInfo
	}
	attrs := []any{"reason", reason, "err", err, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr}
	if p := originalPath(r); p != "" {
		attrs = append(attrs, "original_path", p)
	}
	log.Log(r.Context(), level, "gate: request refused", attrs...)
}

// originalPath returns the path of the request a forward-auth proxy is
// asking about, when it says (nginx with the documented X-Original-URI,
// Traefik's X-Forwarded-Uri), without the query, which may hold secrets.
func originalPath(r *http.Request) string {
	uri := r.Header.Get("X-Original-URI")
	if uri == "" {
		uri = r.Header.Get("X-Forwarded-Uri")
	}
	p, _, _ := strings.Cut(uri, "?")
	return p
}
