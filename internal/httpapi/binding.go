package httpapi

import (
	"encoding/json"
	"net/http"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/store"
)

// getSession is GET /v1/sessions/{sid}: one live session with its binding
// and the bound key, which a web gate needs to check DBSC refresh proofs.
func (s *server) getSession(w http.ResponseWriter, r *http.Request) error {
	x, err := s.a.Session(r.Context(), r.PathValue("sid"))
	if err != nil {
		return err
	}
	if err := allowRead(r, x.Subject); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sessionOut(x, true))
	return nil
}

// bindSession is POST /v1/sessions/{sid}/bind: the caller (a web gate at
// DBSC registration, an app backend for a DPoP client) has checked a proof
// of possession of jwk and binds the session to it.
func (s *server) bindSession(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Kind         string          `json:"kind"`
		JWK          json.RawMessage `json:"jwk"`
		RefreshToken string          `json:"refresh_token"`
		Reason       string          `json:"reason"`
	}
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if len(req.JWK) == 0 {
		return badRequest(`"jwk" is required`, nil)
	}
	x, err := s.a.BindSession(r.Context(), r.PathValue("sid"), authority.BindRequest{Kind: req.Kind, JWK: req.JWK, RefreshToken: req.RefreshToken}, actor(r, req.Reason))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sessionOut(x, true))
	return nil
}

// bindingFailed is POST /v1/sessions/{sid}/binding-failed: the caller saw
// a proof for a bound session fail (signed by another key, or none where
// one was due) and the session is revoked as stolen.
func (s *server) bindingFailed(w http.ResponseWriter, r *http.Request) error {
	var req reasonBody
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	e, err := s.a.BindingFailed(r.Context(), r.PathValue("sid"), actor(r, req.Reason))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entryJSON(e))
	return nil
}

// allowRead refuses a caller with the usersOnly grant (a gate key) a read
// of an operator console session.
func allowRead(r *http.Request, subject string) error {
	if callerOf(r).grant != usersOnly || !store.IsConsoleSubject(subject) {
		return nil
	}
	return &apiError{Status: http.StatusForbidden, Code: httperr.InsufficientScope, Challenge: true,
		Description: "this API key may not read the operator console's sessions (it may revoke them)"}
}
