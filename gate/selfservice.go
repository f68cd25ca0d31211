package gate

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/verifier"
)

// The gate's own endpoints, under SelfServicePrefix, for the signed-in user
// only (by cookie or by bearer token).
const (
	pathSession          = "session"
	pathSessions         = "sessions"
	pathDevices          = "devices"
	pathLogout           = "logout"
	pathLogoutEverywhere = "logout-everywhere"
)

// sessionEntry is one session in GET /.tegata/sessions.
type sessionEntry struct {
	ID        string    `json:"session_id"`
	Device    string    `json:"device"`
	CreatedAt time.Time `json:"created_at"`
	// LastRefreshedAt: the session is used within one access token
	// lifetime of it. Named as the authority's API names it.
	LastRefreshedAt time.Time `json:"last_refreshed_at"`
	Current         bool      `json:"current"`
	// Binding is the kind of device key the session is bound to ("dbsc",
	// "dpop"); empty: unbound, its cookies or tokens work anywhere.
	Binding string `json:"binding,omitempty"`
}

// selfService answers the paths under /.tegata/.
func (w *Web) selfService(h *handoff, r *http.Request) {
	if h.claims == nil {
		w.anonymous(h, r)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, SelfServicePrefix)
	if sid, ok := revokePath(p); ok {
		if allow(h, r, http.MethodPost) {
			w.revokeOwn(h, r, sid)
		}
		return
	}
	handlers := map[string]struct {
		method string
		serve  func(*handoff, *http.Request)
	}{
		pathSession:          {http.MethodGet, w.sessionInfo},
		pathSessions:         {http.MethodGet, w.sessionList},
		pathDevices:          {http.MethodGet, w.devicesPage},
		pathLogout:           {http.MethodPost, func(h *handoff, r *http.Request) { w.signOut(h, r, false) }},
		pathLogoutEverywhere: {http.MethodPost, func(h *handoff, r *http.Request) { w.signOut(h, r, true) }},
	}
	e, ok := handlers[p]
	if !ok {
		httperr.Write(h, http.StatusNotFound, "not_found", "no such self-service endpoint")
		return
	}
	if allow(h, r, e.method) {
		e.serve(h, r)
	}
}

// revokePath matches "sessions/{sid}/revoke".
func revokePath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, pathSessions+"/")
	if !ok {
		return "", false
	}
	sid, ok := strings.CutSuffix(rest, "/revoke")
	return sid, ok && sid != "" && !strings.Contains(sid, "/")
}

// allow answers 405 unless r uses method (GET also admits HEAD).
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method || (method == http.MethodGet && r.Method == http.MethodHead) {
		return true
	}
	allowed := method
	if method == http.MethodGet {
		allowed = "GET, HEAD"
	}
	w.Header().Set("Allow", allowed)
	httperr.Write(w, http.StatusMethodNotAllowed, "method_not_allowed", "use "+allowed)
	return false
}

// sessionInfo answers GET /.tegata/session: who is signed in.
func (w *Web) sessionInfo(h *handoff, r *http.Request) {
	c := h.claims
	claims := c.Copy().Extra
	if claims == nil {
		claims = map[string]any{}
	}
	writeJSON(h, http.StatusOK, struct {
		Subject         string         `json:"subject"`
		SessionID       string         `json:"session_id"`
		Claims          map[string]any `json:"claims"`
		AccessExpiresAt time.Time      `json:"access_expires_at"`
	}{c.Subject(), c.SessionID(), claims, c.Expiry().UTC()})
}

// sessionList answers GET /.tegata/sessions: the user's live sessions.
func (w *Web) sessionList(h *handoff, r *http.Request) {
	list, err := w.sessions(r.Context(), h.claims)
	if err != nil {
		w.unavailable(h, r, "list sessions", err)
		return
	}
	writeJSON(h, http.StatusOK, map[string]any{"sessions": list})
}

// sessions lists the subject's live sessions, marking the one c belongs
// to: that one first, then the others newest first.
func (w *Web) sessions(ctx context.Context, c *verifier.Claims) ([]sessionEntry, error) {
	ctx, cancel := context.WithTimeout(ctx, authorityTimeout)
	defer cancel()
	list, err := w.auth.Sessions(ctx, c.Subject())
	if err != nil {
		return nil, err
	}
	out := make([]sessionEntry, 0, len(list))
	for _, s := range list {
		e := sessionEntry{ID: s.ID, Device: s.Device, CreatedAt: s.CreatedAt.UTC(),
			LastRefreshedAt: s.LastRefreshedAt.UTC(), Current: s.ID == c.SessionID()}
		if s.Binding != nil {
			e.Binding = s.Binding.Kind
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b sessionEntry) int {
		switch {
		case a.Current == b.Current:
			return 0
		case a.Current:
			return -1
		}
		return 1
	})
	return out, nil
}

// revokeOwn answers POST /.tegata/sessions/{sid}/revoke: one of the user's
// own sessions, never anyone else's (404, as for a session that does not
// exist, so session ids of others cannot be probed).
func (w *Web) revokeOwn(h *handoff, r *http.Request, sid string) {
	list, err := w.sessions(r.Context(), h.claims)
	if err != nil {
		w.unavailable(h, r, "list sessions", err)
		return
	}
	own := false
	for _, s := range list {
		own = own || s.ID == sid
	}
	if !own {
		httperr.Write(h, http.StatusNotFound, "not_found", "no such session")
		return
	}
	if sid == h.claims.SessionID() {
		w.signOut(h, r, false)
		return
	}
	if err := w.revokeSession(r.Context(), sid, "signed out from another device"); err != nil {
		w.unavailable(h, r, "revoke session", err)
		return
	}
	w.done(h, r, SelfServicePrefix+pathDevices)
}

// signOut answers POST /.tegata/logout and /.tegata/logout-everywhere.
func (w *Web) signOut(h *handoff, r *http.Request, everywhere bool) {
	if err := w.endSessions(r.Context(), h.claims, everywhere); err != nil {
		w.unavailable(h, r, "sign out", err)
		return
	}
	h.clearSession()
	h.Header().Set("Clear-Site-Data", `"cookies"`)
	w.done(h, r, w.loginPath)
}

// done answers a successful self-service POST: a form from a page (Accept:
// text/html) is sent on to next with 303, a script gets JSON.
func (w *Web) done(h *handoff, r *http.Request, next string) {
	if acceptsHTML(r) {
		h.Header().Set("Location", next)
		h.Header().Set("Cache-Control", "no-store")
		h.WriteHeader(http.StatusSeeOther)
		return
	}
	writeJSON(h, http.StatusOK, map[string]bool{"revoked": true})
}

// unavailable answers 502 when the authority could not do what was asked.
func (w *Web) unavailable(h *handoff, r *http.Request, call string, err error) {
	w.logAuthorityError(r.Context(), call, err)
	httperr.Write(h, http.StatusBadGateway, "bad_gateway", "the authority could not be reached; try again")
}

// endSessions revokes c's session, or every session of its subject, and
// waits (briefly) until this gate's verifier has applied the revocation,
// so the next request through this gate already sees it.
func (w *Web) endSessions(ctx context.Context, c *verifier.Claims, everywhere bool) error {
	if !everywhere {
		return w.revokeSession(ctx, c.SessionID(), "signed out")
	}
	ctx, cancel := context.WithTimeout(ctx, authorityTimeout)
	defer cancel()
	rev, err := w.auth.RevokeSubject(ctx, client.SubjectRevocation{Subject: c.Subject(), Scope: client.ScopeSessions,
		Reason: "signed out everywhere (web)"})
	if err != nil {
		return err
	}
	w.awaitApplied(ctx, rev)
	return nil
}

func (w *Web) revokeSession(ctx context.Context, sid, reason string) error {
	ctx, cancel := context.WithTimeout(ctx, authorityTimeout)
	defer cancel()
	rev, err := w.auth.RevokeSession(ctx, client.SessionRevocation{SessionID: sid, Reason: reason + " (web)"})
	if err != nil {
		return err
	}
	w.awaitApplied(ctx, rev)
	return nil
}

// revokeQuietly revokes a session nobody will use, logging a failure.
func (w *Web) revokeQuietly(ctx context.Context, sid, reason string) {
	if err := w.revokeSession(ctx, sid, reason); err != nil {
		w.log.WarnContext(ctx, "gate: could not revoke an unused session", "sid", sid, "err", err)
	}
}

// appliedWait bounds how long a sign-out waits for this gate's verifier to
// apply its revocation; the feed normally brings it in milliseconds. Past
// it the answer goes out anyway: the revocation is recorded, and reaches
// every verifier as soon as the feed delivers it.
const appliedWait = 2 * time.Second

func (w *Web) awaitApplied(ctx context.Context, rev client.Revocation) {
	if rev.Entry == nil || rev.Entry.Seq == 0 {
		return // nothing new was recorded: it was in force already
	}
	ctx, cancel := context.WithTimeout(ctx, appliedWait)
	defer cancel()
	if err := w.v.WaitApplied(ctx, rev.Entry.Seq); err != nil {
		w.log.InfoContext(ctx, "gate: revocation not applied locally yet; answering anyway", "seq", rev.Entry.Seq, "err", err)
	}
}
