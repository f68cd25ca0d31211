package console

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/internal/store"
	"github.com/tegata-dev/tegata/verifier"
)

// Cookies of a console session. The __Host- prefix makes browsers keep them
// only when Secure, on Path=/ and without Domain: no other host, subdomain
// or plain-http page can set or overwrite them.
const (
	accessCookie  = "__Host-tegata-console"
	refreshCookie = "__Host-tegata-console-refresh"
	csrfCookie    = "__Host-tegata-console-csrf"
	csrfField     = "csrf"
)

// SubjectPrefix begins the subject of every console session, followed by
// the API key's id: revoking the subject ends the key's console sessions.
const SubjectPrefix = authority.ConsoleSubjectPrefix

// Claims of a console session's tokens.
const (
	claimKey   = "console_key"      // the API key's id
	claimName  = "console_key_name" // its name, for the audit trail
	claimSince = "console_since"    // sign-in, Unix seconds
)

// Session rules.
const (
	// refreshEvery: a session in use is refreshed at most this often, so
	// its access token's iat tells when it was last used, to this much.
	refreshEvery = time.Minute
	// maxSession ends a session this long after sign-in however busy.
	maxSession = 12 * time.Hour
)

// operator is the signed-in operator of a request.
type operator struct {
	keyID, keyName string
	sessionID      string
	csrf           string
}

// actor is the operator in the audit trail: the API key's name, as the API
// records it.
func (op *operator) actor(reason string) store.Actor {
	if reason == "" {
		reason = "console"
	}
	return store.Actor{By: "api-key:" + op.keyName, Reason: reason, Entity: "admin"}
}

// refreshed is a refresh done lately, kept so that concurrent requests
// presenting the same refresh token share its result.
type refreshed struct {
	tok authority.Tokens
	at  time.Time
}

// signedIn returns the request's operator, refreshing the session when it
// is due. Without a live session it answers (a redirect to sign in, or 401
// for api routes) and returns false.
func (c *Console) signedIn(w http.ResponseWriter, r *http.Request, api bool) (*operator, bool) {
	op, why := c.session(w, r)
	if op != nil {
		return op, true
	}
	if why == whyUnavailable || why == whyNoStore {
		w.Header().Set("Retry-After", "5")
		c.fail(w, r, nil, &pageError{status: http.StatusServiceUnavailable, msg: why})
		return nil, false
	}
	if api || unsafe(r) {
		c.fail(w, r, nil, &pageError{status: http.StatusUnauthorized, msg: "Sign in again: " + why})
		return nil, false
	}
	next := r.URL.Path
	if r.URL.RawQuery != "" {
		next += "?" + r.URL.RawQuery
	}
	q := url.Values{"next": {next}}
	if hasCookie(r, accessCookie) {
		q.Set("ended", "1")
	}
	http.Redirect(w, r, Prefix+"login?"+q.Encode(), http.StatusSeeOther)
	return nil, false
}

func hasCookie(r *http.Request, name string) bool {
	_, err := r.Cookie(name)
	return err == nil
}

// session verifies the access token cookie with the authority's own
// verifier of console tokens (so a revoked session or key ends at once,
// and an app's token, of another audience, is refused) and keeps the
// session (keep). An expired access token is no end in itself: the
// session it belongs to is found by the refresh cookie (resume), so that
// an idle session is revoked whichever of the idle timeout and the access
// token's lifetime runs out first. why says why there is no operator.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (*operator, string) {
	at, err := r.Cookie(accessCookie)
	if err != nil {
		return nil, "not signed in"
	}
	cl, err := c.a.ConsoleVerifier().Verify(r.Context(), at.Value)
	switch {
	case errors.Is(err, verifier.ErrStale) || errors.Is(err, verifier.ErrUnavailable):
		// This node cannot tell revoked sessions now: no answer, but the
		// session stays (a transient fault must not sign operators out).
		return nil, whyUnavailable
	case errors.Is(err, verifier.ErrExpired):
		return c.resume(w, r)
	case err != nil:
		c.clearCookies(w)
		return nil, whyEnded
	}
	op, since, ok := operatorOf(cl.Subject(), cl.SessionID(), cl.Claim)
	if !ok {
		c.clearCookies(w)
		return nil, "not a console session"
	}
	return c.keep(w, r, op, cl.IssuedAt(), since, false)
}

// resume finds the session of an expired access token by the refresh
// cookie, the session's secret (looked up by its hash, nothing spent),
// and keeps it. A session no longer live just ends.
func (c *Console) resume(w http.ResponseWriter, r *http.Request) (*operator, string) {
	rt, err := r.Cookie(refreshCookie)
	if err != nil {
		c.clearCookies(w)
		return nil, whyEnded
	}
	s, err := c.a.SessionByRefresh(r.Context(), rt.Value)
	var refused *authority.Error
	switch {
	case errors.As(err, &refused):
		c.clearCookies(w)
		return nil, whyEnded
	case err != nil:
		c.log.Warn("console: reading a session failed", "err", err)
		return nil, whyNoStore
	}
	op, since, ok := sessionOperator(s)
	if !ok {
		c.clearCookies(w)
		return nil, "not a console session"
	}
	return c.keep(w, r, op, s.RefreshedAt, since, true)
}

// keep ends a session idle too long (last is when it was last refreshed)
// or past maxSession, and refreshes one last refreshed refreshEvery ago or
// more, or whose access token has expired (expired).
func (c *Console) keep(w http.ResponseWriter, r *http.Request, op *operator, last, since time.Time, expired bool) (*operator, string) {
	if c.idle(last, since) {
		c.end(r.Context(), op, w, endIdle)
		return nil, "the session has ended (idle too long)"
	}
	if csrf, err := r.Cookie(csrfCookie); err == nil {
		op.csrf = csrf.Value
	}
	if expired || c.now().Sub(last) >= refreshEvery {
		if err := c.refresh(w, r, op); err != nil {
			c.log.Info("console: session refresh refused", "key", op.keyName, "err", err)
			c.clearCookies(w)
			return nil, "the session has ended"
		}
	}
	return op, ""
}

// idle reports whether a session last refreshed at last, signed in at
// since, is over: idle longer than the idle timeout or older than
// maxSession.
func (c *Console) idle(last, since time.Time) bool {
	now := c.now()
	return now.Sub(last) > c.cfg.IdleTimeout || now.Sub(since) > maxSession
}

// whyEnded: the session's tokens are refused or its session is over.
const whyEnded = "the session has ended (idle too long, signed out or revoked)"

// whyNoStore: the session of an expired access token could not be read.
const whyNoStore = "This node cannot read sessions right now; try again in a moment."

// whyUnavailable: the node's verifier is stale or cannot reach the
// authority's state, so no session can be checked.
const whyUnavailable = "This node cannot check sessions right now (its revocation state is stale); try again in a moment."

// operatorOf reads a console session's subject, id and claims (claim
// looks one up by name).
func operatorOf(subject, sid string, claim func(string) (any, bool)) (*operator, time.Time, bool) {
	if !strings.HasPrefix(subject, SubjectPrefix) {
		return nil, time.Time{}, false
	}
	key, _ := claim(claimKey)
	name, _ := claim(claimName)
	since, _ := claim(claimSince)
	k, ok1 := key.(string)
	n, ok2 := name.(string)
	s, ok3 := since.(float64)
	if !ok1 || !ok2 || !ok3 || subject != SubjectPrefix+k {
		return nil, time.Time{}, false
	}
	return &operator{keyID: k, keyName: n, sessionID: sid}, time.Unix(int64(s), 0), true
}

// refresh exchanges the refresh cookie, after checking that the API key is
// still a live admin key, and sets the new cookies.
func (c *Console) refresh(w http.ResponseWriter, r *http.Request, op *operator) error {
	if err := c.keyLive(r.Context(), op.keyID); err != nil {
		c.end(r.Context(), op, w, endKey)
		return err
	}
	rt, err := r.Cookie(refreshCookie)
	if err != nil {
		return errors.New("no refresh cookie")
	}
	tok, err := c.exchange(r.Context(), rt.Value)
	if err != nil {
		return err
	}
	c.setCookies(w, tok, op.csrf)
	return nil
}

// exchange refreshes once per refresh token: a page and its polls arriving
// together get the same new tokens, never a reuse that would look like
// theft.
func (c *Console) exchange(ctx context.Context, rt string) (authority.Tokens, error) {
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	now := c.now()
	for k, v := range c.refreshes {
		if now.Sub(v.at) > refreshEvery {
			delete(c.refreshes, k)
		}
	}
	if v, ok := c.refreshes[rt]; ok {
		return v.tok, nil
	}
	tok, err := c.a.RefreshWith(ctx, authority.RefreshRequest{RefreshToken: rt, Console: true})
	if err != nil {
		return tok, err
	}
	c.refreshes[rt] = refreshed{tok: tok, at: now}
	return tok, nil
}

// keyLive reports whether the API key is still live with the admin role.
func (c *Console) keyLive(ctx context.Context, id string) error {
	keys, err := c.a.APIKeys(ctx)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.ID == id && k.Role == authority.RoleAdmin {
			return nil
		}
	}
	return errors.New("the API key was revoked")
}

// Why a console session ends, for the audit trail's session.revoke record.
const (
	endSignOut = "console sign-out"
	endIdle    = "console session timed out"
	endKey     = "console session of an API key no longer a live admin key"
)

// end revokes the operator's session, recording why and the API key's id,
// and clears its cookies.
func (c *Console) end(ctx context.Context, op *operator, w http.ResponseWriter, why string) {
	c.revokeOwn(ctx, op, why)
	c.clearCookies(w)
}

// revokeOwn revokes the operator's session, recording why and the API key's
// id.
func (c *Console) revokeOwn(ctx context.Context, op *operator, why string) {
	if _, err := c.a.RevokeSession(ctx, op.sessionID, op.actor(why+", key "+op.keyID)); err != nil {
		c.log.Warn("console: ending a session failed", "sid", op.sessionID, "err", err)
	}
}

// signIn checks an API key and opens a console session for it. Only an
// admin key may; feed and gate keys are refused by name.
func (c *Console) signIn(ctx context.Context, secret string) (authority.Tokens, store.APIKey, error) {
	key, err := c.a.Authenticate(ctx, secret)
	if err != nil {
		return authority.Tokens{}, key, err
	}
	if key.Role != authority.RoleAdmin {
		return authority.Tokens{}, key, errNotAdmin
	}
	tok, err := c.a.CreateSession(ctx, authority.SessionRequest{
		Subject: SubjectPrefix + key.ID,
		Device:  "operator console",
		Console: true,
		By:      "api-key:" + key.Name,
		Claims:  map[string]any{claimKey: key.ID, claimName: key.Name, claimSince: c.now().Unix()},
	})
	return tok, key, err
}

var errNotAdmin = errors.New("console: only an admin API key may sign in")

// loginFailed counts a failed sign-in against the client's address and
// reports how long it must wait before the next try.
func (c *Console) loginWait(r *http.Request, charge bool) time.Duration {
	addr := httpguard.AddrKey(httpguard.ClientAddr(r, c.cfg.TrustedProxies))
	if charge {
		c.failures.Charge(addr, 1, c.now())
		return 0
	}
	return c.failures.Wait(addr, 0, c.now())
}

func (c *Console) setCookies(w http.ResponseWriter, tok authority.Tokens, csrf string) {
	http.SetCookie(w, cookie(accessCookie, tok.AccessToken))
	http.SetCookie(w, cookie(refreshCookie, tok.RefreshToken))
	http.SetCookie(w, cookie(csrfCookie, csrf))
}

func (c *Console) clearCookies(w http.ResponseWriter) {
	for _, n := range []string{accessCookie, refreshCookie, csrfCookie} {
		k := cookie(n, "")
		k.MaxAge = -1
		http.SetCookie(w, k)
	}
}

// cookie is a session cookie of the console: for this host only, never
// sent cross-site, never read by script.
func cookie(name, value string) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode}
}

// newCSRF is a fresh double-submit token.
func newCSRF() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
