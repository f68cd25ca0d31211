package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/revocation"
	"github.com/tegata-dev/tegata/internal/store"
)

// tokensJSON is the answer to sign-in and refresh, in the wire type the
// client defines.
func (s *server) tokensJSON(t authority.Tokens) client.Tokens {
	typ := "Bearer"
	if t.DPoP {
		typ = "DPoP"
	}
	return client.Tokens{
		SessionID: t.SessionID, AccessToken: t.AccessToken, TokenType: typ,
		ExpiresIn:       int64(t.AccessExpiresAt.Sub(s.a.Config().Clock.Now()).Round(time.Second) / time.Second),
		AccessExpiresAt: t.AccessExpiresAt.UTC(), RefreshToken: t.RefreshToken,
		RefreshExpiresAt: t.RefreshExpiresAt.UTC().Truncate(time.Second), // whole seconds, like exp
	}
}

func (s *server) createSession(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Subject string         `json:"subject"`
		Claims  map[string]any `json:"claims"`
		Device  string         `json:"device"`
		DPoPJKT string         `json:"dpop_jkt"`
	}
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if err := s.allowSubject(r, req.Subject); err != nil {
		return err
	}
	jkt, err := s.proofKey(r, authority.SessionsPath)
	if err != nil {
		return err
	}
	if jkt != "" && req.DPoPJKT != "" && jkt != req.DPoPJKT {
		return badRequest(`"dpop_jkt" and the DPoP proof name different keys`, nil)
	}
	if jkt == "" {
		jkt = req.DPoPJKT
	}
	t, err := s.a.CreateSession(r.Context(), authority.SessionRequest{Subject: req.Subject, Claims: req.Claims, Device: req.Device,
		DPoPJKT: jkt, By: actor(r, "").By})
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "session created", "sid", t.SessionID, "sub", req.Subject)
	s.setDPoPNonce(w)
	writeJSON(w, http.StatusCreated, s.tokensJSON(t))
	return nil
}

func (s *server) refresh(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RefreshToken string `json:"refresh_token"`
		// DBSCProof: a browser's signed answer to a DBSC challenge, relayed
		// by the web gate; a session bound to a browser key needs it.
		DBSCProof string `json:"dbsc_proof"`
	}
	if err := decodeJSON(w, r, &req, true); err != nil {
		return err
	}
	if req.RefreshToken == "" {
		return badRequest(`"refresh_token" is required`, nil)
	}
	jkt, err := s.proofKey(r, authority.RefreshPath)
	if err != nil {
		return err
	}
	t, err := s.a.RefreshWith(r.Context(), authority.RefreshRequest{RefreshToken: req.RefreshToken, DPoPJKT: jkt, DBSCProof: req.DBSCProof})
	if err != nil {
		return err
	}
	s.setDPoPNonce(w)
	writeJSON(w, http.StatusOK, s.tokensJSON(t))
	return nil
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// entryJSON is the answer to a revocation: the entry recorded, or
// revoked false when the target was already revoked.
func entryJSON(e revocation.Entry) map[string]any {
	if e.Seq == 0 {
		return map[string]any{"revoked": false} // already revoked: nothing new recorded
	}
	return map[string]any{"revoked": true, "entry": e}
}

func (s *server) revokeSession(w http.ResponseWriter, r *http.Request) error {
	var req reasonBody
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	wait, confirm, err := s.confirmWait(r)
	if err != nil {
		return err
	}
	e, err := s.a.RevokeSession(appendCtx(r, confirm), r.PathValue("sid"), actor(r, req.Reason))
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "session revoked", "sid", r.PathValue("sid"), "seq", e.Seq, "by", actor(r, "").By)
	s.confirmed(w, r, entryJSON(e), e.Seq, wait, confirm)
	return nil
}

func (s *server) revokeSubject(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Scope  string      `json:"scope"`
		Claims claimsField `json:"claims"`
		Reason string      `json:"reason"`
	}
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	if callerOf(r).grant == signOutOnly && (req.Claims != nil || (req.Scope != "" && req.Scope != authority.ScopeSessions)) {
		return &apiError{Status: http.StatusForbidden, Code: httperr.InsufficientScope, Challenge: true,
			Description: "this API key may only sign a subject out everywhere (scope sessions, no claims)"}
	}
	wait, confirm, err := s.confirmWait(r)
	if err != nil {
		return err
	}
	sr := authority.SubjectRevocation{Subject: r.PathValue("sub"), Scope: req.Scope, Claims: req.Claims, Actor: actor(r, req.Reason)}
	if err := s.allowSubject(r, sr.Subject); err != nil {
		return err
	}
	e, err := s.a.RevokeSubject(appendCtx(r, confirm), sr)
	if err != nil {
		return err
	}
	s.log.InfoContext(r.Context(), "subject revoked", "sub", sr.Subject, "scope", req.Scope, "seq", e.Seq, "by", sr.Actor.By)
	s.confirmed(w, r, entryJSON(e), e.Seq, wait, confirm)
	return nil
}

type sessionJSON struct {
	ID          string       `json:"session_id"`
	Device      string       `json:"device"`
	CreatedAt   time.Time    `json:"created_at"`
	RefreshedAt time.Time    `json:"last_refreshed_at"`
	ExpiresAt   time.Time    `json:"expires_at"`
	Binding     *bindingJSON `json:"binding,omitempty"`
}

// bindingJSON is a session's device binding; the key itself only in the
// answer about one session (GET /v1/sessions/{sid}), where a gate reads it
// to check proofs.
type bindingJSON struct {
	Kind    string          `json:"kind"`
	JKT     string          `json:"jkt"`
	BoundAt time.Time       `json:"bound_at"`
	JWK     json.RawMessage `json:"jwk,omitempty"`
}

func sessionOut(x store.Session, withKey bool) sessionJSON {
	out := sessionJSON{ID: x.ID, Device: x.Device, CreatedAt: x.CreatedAt.UTC(),
		RefreshedAt: x.RefreshedAt.UTC(), ExpiresAt: x.ExpiresAt.UTC()}
	if b := x.Binding; b.Bound() {
		out.Binding = &bindingJSON{Kind: b.Kind, JKT: b.Thumbprint, BoundAt: b.BoundAt.UTC()}
		if withKey {
			out.Binding.JWK = b.Key
		}
	}
	return out
}

func (s *server) listSessions(w http.ResponseWriter, r *http.Request) error {
	if err := allowRead(r, r.PathValue("sub")); err != nil {
		return err
	}
	list, err := s.a.Sessions(r.Context(), r.PathValue("sub"))
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, x := range list {
		out = append(out, sessionOut(x, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"subject": r.PathValue("sub"), "sessions": out})
	return nil
}

// introspect is RFC 7662 for access tokens.
func (s *server) introspect(w http.ResponseWriter, r *http.Request) error {
	tok, err := decodeForm(w, r, "token")
	if err != nil {
		return err
	}
	c, err := s.a.Introspect(r.Context(), tok)
	if err != nil {
		return err
	}
	if c == nil {
		writeJSON(w, http.StatusOK, map[string]bool{"active": false})
		return nil
	}
	out := make(map[string]any, len(c.Extra)+10)
	for k, v := range c.Extra {
		out[k] = v
	}
	out["active"] = true
	out["token_type"] = "access_token"
	out["iss"], out["sub"], out["aud"] = c.Issuer, c.Subject, c.Audience
	out["iat"], out["exp"] = c.IssuedAt.Unix(), c.Expiry.Unix()
	out["jti"], out["sid"], out["sgen"] = c.ID, c.SessionID, c.Generation
	if c.JKT != "" {
		// RFC 9449 §6.2: the resource server checks the proof against it.
		out["cnf"] = map[string]string{"jkt": c.JKT}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// revokeToken is RFC 7009: 200 whether or not the token was valid.
func (s *server) revokeToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := decodeForm(w, r, "token")
	if err != nil {
		return err
	}
	wait, confirm, err := s.confirmWait(r)
	if err != nil {
		return err
	}
	if confirm {
		// A confirmed call holds a request open: operators only.
		if _, err := s.authenticate(r, adminOnly); err != nil {
			return err
		}
	}
	if _, err := s.a.RevokeToken(appendCtx(r, confirm), tok); err != nil {
		return err
	}
	s.confirmed(w, r, map[string]any{}, 0, wait, confirm)
	return nil
}

func (s *server) listKeys(w http.ResponseWriter, r *http.Request) error {
	keys, err := s.a.Keys(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": keys})
	return nil
}

func (s *server) rotateKey(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Reason string `json:"reason"`
		Use    string `json:"use"` // "access" (default) or "events"
	}
	if err := decodeJSON(w, r, &req, false); err != nil {
		return err
	}
	k, err := s.a.RotateKey(r.Context(), req.Use, actor(r, req.Reason))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": k.ID, "alg": k.Algorithm, "sign_from": k.SignFrom.UTC()})
	return nil
}

func (s *server) audit(w http.ResponseWriter, r *http.Request) error {
	after, err := queryInt(r, "after")
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	recs, more, err := s.a.Audit(r.Context(), after, int(min(limit, authority.MaxAuditPage)))
	if err != nil {
		return err
	}
	// The page in the wire types the client defines. NextAfter, the id of
	// the last record, is there only when more records follow.
	page := client.AuditPage{Records: make([]client.AuditRecord, 0, len(recs))}
	for _, x := range recs {
		page.Records = append(page.Records, client.AuditRecord{ID: x.ID, At: x.At.UTC(), By: x.Actor.By, Reason: x.Actor.Reason, Action: x.Action, Target: x.Target})
	}
	if more {
		page.NextAfter = recs[len(recs)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
	return nil
}

func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("query parameter "+name+" must be a non-negative integer", nil)
	}
	return n, nil
}

// proofKey checks the request's DPoP proof, if it carries one, for a POST
// to path and returns its key's thumbprint ("" without a proof). A proof
// without the current server nonce is answered 400 use_dpop_nonce with the
// nonce in DPoP-Nonce (RFC 9449 §8).
func (s *server) proofKey(r *http.Request, path string) (string, error) {
	proofs := r.Header.Values("DPoP")
	switch len(proofs) {
	case 0:
		return "", nil
	case 1:
		jkt, err := s.a.CheckProof(proofs[0], path)
		var e *authority.Error
		if errors.As(err, &e) && e.Code == authority.CodeUseDPoPNonce {
			return "", &apiError{Status: http.StatusBadRequest, Code: e.Code, Description: e.Description, Cause: err,
				Header: [2]string{"DPoP-Nonce", s.a.DPoPNonce()}}
		}
		return jkt, err
	}
	return "", &authority.Error{Code: authority.CodeInvalidDPoPProof, Description: "more than one DPoP header"}
}

// setDPoPNonce gives a sign-in or refresh answer the current DPoP nonce,
// when the authority asks for nonces, so that the client's next proof
// carries it without a refused round trip (RFC 9449 §8).
func (s *server) setDPoPNonce(w http.ResponseWriter) {
	if n := s.a.DPoPNonce(); n != "" {
		w.Header().Set("DPoP-Nonce", n)
	}
}
