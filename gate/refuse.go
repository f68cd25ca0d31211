package gate

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/verifier"
)

// errorBody is the JSON body of every error answer.
type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// refuse answers 401 with an RFC 6750 challenge. The description is
// verifier.Reason, one of a few fixed phrases free of quotes, so it can be
// put in the quoted-string as is; the cause goes to the log only. A request
// that sent no token gets a challenge without error attributes (RFC 6750
// §3.1).
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, err error) {
	refuse(g.log, w, r, err)
}

func refuse(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	reason := verifier.Reason(err)
	challenge := `Bearer realm="tegata"`
	if !errors.Is(err, verifier.ErrNoToken) {
		challenge += `, error="invalid_token", error_description="` + reason + `"`
	}
	logRefusal(log, r, err, reason)
	w.Header().Set("WWW-Authenticate", challenge)
	writeJSON(w, http.StatusUnauthorized, errorBody{"invalid_token", reason})
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

// writeJSON answers status with v as JSON, never cached.
func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
