package gate

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/dbsc"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/secret"
)

// Device Bound Session Credentials (W3C webappsec-dbsc): a browser that
// supports it answers the registration offered at sign-in with a public
// key whose private half it cannot export, and from then on gets a new
// access cookie only by signing a challenge with that key. The refresh
// cookie alone no longer refreshes the session, at this gate or any other:
// the authority refuses it (see authority.RefreshDBSC).
//
// What is bound is the access cookie, the DBSC "credential": it expires a
// little before its token (boundMargin), so the browser refreshes through
// DBSC before the gate would refresh with the cookie, which it cannot for
// a bound session.

// The gate's DBSC endpoints, under SelfServicePrefix.
const (
	pathDBSCRegister = "dbsc/register"
	pathDBSCRefresh  = "dbsc/refresh"
)

// DBSC headers (the names of the specification as Chromium 156 sends
// them).
const (
	headerRegistration = "Secure-Session-Registration"
	headerChallenge    = "Secure-Session-Challenge"
	headerResponse     = "Secure-Session-Response"
	headerSessionID    = "Sec-Secure-Session-Id"
	headerSkipped      = "Secure-Session-Skipped"
)

const (
	// dbscRegistrationWindow: a session may be bound this long after it
	// was created. Registration is offered on the sign-in answer and the
	// browser registers at once; later, whoever holds the cookies could
	// bind someone else's session to a key of their own.
	dbscRegistrationWindow = 5 * time.Minute
	// boundMargin: a bound access cookie expires this long before its
	// token, twice RefreshBefore, so the browser's DBSC refresh comes
	// before the gate would want to refresh with the refresh cookie.
	boundMargin = 2 * RefreshBefore
)

// Events counted by tegata_gate_dbsc_total.
const (
	dbscRegistered          = "registered"
	dbscRegistrationRefused = "registration_refused"
	dbscChallenged          = "challenged"
	dbscRefreshed           = "refreshed"
	dbscRefreshRefused      = "refresh_refused"
	dbscCookieRefused       = "cookie_refresh_refused"
)

var dbscEvents = []string{dbscRegistered, dbscRegistrationRefused, dbscChallenged, dbscRefreshed, dbscRefreshRefused, dbscCookieRefused}

// isDBSCPath reports whether p is one of the gate's DBSC endpoints; they
// are answered before the request's cookies are used (a refresh arrives
// exactly when the access cookie is gone).
func isDBSCPath(p string) bool {
	rest, ok := strings.CutPrefix(p, SelfServicePrefix)
	return ok && (rest == pathDBSCRegister || rest == pathDBSCRefresh)
}

func (w *Web) dbsc(h *handoff, r *http.Request) {
	if !allow(h, r, http.MethodPost) {
		return
	}
	h.Header().Set("Cache-Control", "no-store")
	if strings.TrimPrefix(r.URL.Path, SelfServicePrefix) == pathDBSCRegister {
		w.dbscRegister(h, r)
		return
	}
	w.dbscRefresh(h, r)
}

// offerRegistration asks the browser signed in with tok to bind the
// session to a key of its own (a browser without DBSC ignores it).
func (w *Web) offerRegistration(hdr http.Header, tok client.Tokens) {
	if w.noDBSC {
		return
	}
	c := dbsc.Challenge(tok.RefreshToken, w.now())
	hdr.Set(headerRegistration, "(ES256 RS256);path="+dbsc.Quote(SelfServicePrefix+pathDBSCRegister)+";challenge="+dbsc.Quote(c))
}

// dbscRegister answers POST /.tegata/dbsc/register: the browser's proof
// of its key over the challenge of its sign-in. The session is bound at
// the authority (audit session.bind) and the browser gets its session
// instructions: the access cookie is the bound credential, refreshed at
// /.tegata/dbsc/refresh.
func (w *Web) dbscRegister(h *handoff, r *http.Request) {
	status, desc, err := w.register(h, r)
	if err != nil {
		w.dbscCount(dbscRegistrationRefused)
		w.log.InfoContext(r.Context(), "gate: DBSC registration refused", "why", err, "status", status)
		httperr.Write(h, status, codeOf(status), desc)
		return
	}
	w.dbscCount(dbscRegistered)
	writeJSON(h, http.StatusOK, w.instructions(dbscSessionID(w.jar.bindOf(r))))
}

// dbscSessionID is the identifier of the browser's DBSC session: derived
// from its binding cookie, which a sign-in sets anew and refreshes keep.
// So a refresh for a DBSC session of an earlier sign-in in this browser
// (the browser keeps it until told otherwise) is recognised and ended,
// not relayed with the new session's refresh cookie, where its key would
// look like a thief's.
func dbscSessionID(bind string) string {
	sum := sha256.Sum256([]byte("tegata dbsc session\x00" + bind))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// register checks a registration and binds the session. On failure it
// returns the status and description for the browser and the cause.
func (w *Web) register(h *handoff, r *http.Request) (int, string, error) {
	if w.noDBSC {
		return http.StatusNotFound, "device binding is not offered here", errors.New("DBSC is turned off (WebConfig.NoDBSC)")
	}
	ctx := r.Context()
	proof, err := dbsc.Unquote(r.Header.Get(headerResponse))
	if err != nil {
		return http.StatusBadRequest, "Secure-Session-Response must carry the proof as a string", err
	}
	at, atErr := w.jarToken(r, w.jar.access)
	rt, rtErr := w.jarToken(r, w.jar.refresh)
	if atErr != nil || rtErr != nil || w.jar.bindOf(r) == "" {
		return http.StatusUnauthorized, "not signed in", errors.Join(atErr, rtErr, errors.New("gate: no binding cookie"))
	}
	claims, err := w.v.Verify(ctx, at)
	if err != nil {
		return http.StatusUnauthorized, "not signed in", err
	}
	h.claims = claims
	sid := claims.SessionID()
	key, err := dbsc.CheckRegistration(proof, rt, w.now())
	if err != nil {
		return http.StatusBadRequest, "the registration proof is not valid", err
	}
	actx, cancel := context.WithTimeout(ctx, authorityTimeout)
	defer cancel()
	s, err := w.auth.Session(actx, sid)
	if err != nil {
		return http.StatusServiceUnavailable, "the session could not be bound; try again", err
	}
	if age := w.now().Sub(s.CreatedAt); age > dbscRegistrationWindow {
		return http.StatusForbidden, "a session is bound only right after sign-in", errors.New("session signed in " + age.Round(time.Second).String() + " ago")
	}
	_, err = w.auth.BindSession(actx, client.BindRequest{SessionID: sid, Kind: client.BindingDBSC, JWK: key.JSON, RefreshToken: rt,
		Reason: "DBSC registration at the web gate"})
	if errors.Is(err, client.ErrConflict) {
		return http.StatusForbidden, "the session is bound to another key", err
	}
	if errors.Is(err, client.ErrInvalidGrant) {
		return http.StatusForbidden, "the refresh cookie belongs to another session", err
	}
	if err != nil {
		return http.StatusServiceUnavailable, "the session could not be bound; try again", err
	}
	// The access cookie becomes the bound credential: short of its token.
	h.cookies = []*http.Cookie{w.jar.cookie(w.jar.access, at, boundAge(claims.Expiry().Sub(w.now())))}
	return 0, "", nil
}

// jarToken returns the one cookie named name, shaped as the verifier's
// cookie extractor requires.
func (w *Web) jarToken(r *http.Request, name string) (string, error) {
	var found string
	for _, c := range r.CookiesNamed(name) {
		if found != "" {
			return "", errors.New("gate: cookie " + name + " sent twice")
		}
		found = c.Value
	}
	if found == "" {
		return "", errors.New("gate: no cookie " + name)
	}
	return found, nil
}

// boundAge is the Max-Age of a bound access cookie whose token has left
// to live: boundMargin less, at least a second.
func boundAge(left time.Duration) time.Duration {
	return max(left-boundMargin, time.Second)
}

// sessionInstructions is the JSON a registration is answered with
// (specification §"JSON Session Instruction Format").
type sessionInstructions struct {
	SessionIdentifier string           `json:"session_identifier"`
	RefreshURL        string           `json:"refresh_url"`
	Scope             dbscScope        `json:"scope"`
	Credentials       []dbscCredential `json:"credentials"`
	AllowedInitiators []string         `json:"allowed_refresh_initiators"`
}

type dbscScope struct {
	IncludeSite bool       `json:"include_site"`
	Rules       []struct{} `json:"scope_specification"`
}

type dbscCredential struct {
	Type       string `json:"type"`
	Name       string `json:"name"`
	Attributes string `json:"attributes"`
}

// instructions: the session, id as dbscSessionID says, is scoped to this
// origin, refreshed here, with the access cookie as its one credential.
func (w *Web) instructions(sid string) sessionInstructions {
	attrs := "Path=/; HttpOnly; SameSite=" + sameSiteName(w.jar.sameSite)
	if w.jar.secure {
		attrs = "Path=/; Secure; HttpOnly; SameSite=" + sameSiteName(w.jar.sameSite)
	}
	return sessionInstructions{
		SessionIdentifier: sid,
		RefreshURL:        SelfServicePrefix + pathDBSCRefresh,
		Scope:             dbscScope{Rules: []struct{}{}},
		Credentials:       []dbscCredential{{Type: "cookie", Name: w.jar.access, Attributes: attrs}},
		AllowedInitiators: []string{},
	}
}

func sameSiteName(s http.SameSite) string {
	if s == http.SameSiteStrictMode {
		return "Strict"
	}
	return "Lax"
}

// dbscRefresh answers POST /.tegata/dbsc/refresh, which a bound browser
// calls when its access cookie is missing: first without a proof (403 and
// a challenge for the refresh token it holds), then with its signature
// over that challenge, which the authority checks before it rotates the
// refresh token. The answer sets the new cookies. Per the specification
// a 403 asks for a proof, any other 4xx ends the browser's DBSC session,
// and a 5xx or 429 leaves it for later.
func (w *Web) dbscRefresh(h *handoff, r *http.Request) {
	ctx := r.Context()
	sid, err := dbsc.Unquote(r.Header.Get(headerSessionID))
	if err != nil || sid == "" {
		httperr.Write(h, http.StatusBadRequest, "invalid_request", "Sec-Secure-Session-Id must name the session")
		return
	}
	rt, err := w.jarToken(r, w.jar.refresh)
	if err != nil || !secret.IsRefreshToken(rt) {
		w.dbscEnd(h, r, "no refresh cookie")
		return
	}
	if bind := w.jar.bindOf(r); bind == "" || subtle.ConstantTimeCompare([]byte(dbscSessionID(bind)), []byte(sid)) != 1 {
		// A DBSC session of an earlier sign-in (or none of this browser's):
		// ended, and the cookies, which belong to the current one, kept.
		w.dbscCount(dbscRefreshRefused)
		w.log.InfoContext(ctx, "gate: DBSC refresh for a session this browser no longer holds; ended")
		httperr.Write(h, http.StatusUnauthorized, "invalid_request", "not the browser's current session")
		return
	}
	raw := r.Header.Get(headerResponse)
	if raw == "" {
		w.challenge(h, rt, sid)
		return
	}
	proof, err := dbsc.Unquote(raw)
	if err != nil {
		httperr.Write(h, http.StatusBadRequest, "invalid_request", "Secure-Session-Response must carry the proof as a string")
		return
	}
	addr := w.clientKey(r)
	if d := w.refresher.limit.Wait(addr, 1, w.now()); d > 0 {
		w.logLimited(r)
		h.Header().Set("Retry-After", retryAfter(d))
		httperr.Write(h, http.StatusTooManyRequests, "rate_limited", "too many session refreshes from this address")
		return
	}
	actx, cancel := context.WithTimeout(ctx, authorityTimeout)
	defer cancel()
	tok, err := w.auth.RefreshDBSC(actx, rt, proof)
	switch {
	case err == nil:
	case errors.Is(err, client.ErrUseDBSCChallenge):
		w.challenge(h, rt, sid)
		return
	case isRefused(err):
		w.refresher.limit.Charge(addr, refreshFailureCost-1, w.now())
		w.dbscEnd(h, r, err.Error())
		return
	default:
		w.logAuthorityError(ctx, "DBSC refresh", err)
		h.Header().Set("Retry-After", "1")
		httperr.Write(h, http.StatusServiceUnavailable, "temporarily_unavailable", "the session cannot be refreshed right now")
		return
	}
	bind := w.jar.bindOf(r)
	if bind == "" {
		bind = newBind()
	}
	if err := h.setBoundSession(tok, bind); err != nil {
		httperr.Write(h, http.StatusBadGateway, "bad_gateway", "session could not be stored in a cookie")
		return
	}
	w.dbscCount(dbscRefreshed)
	h.WriteHeader(http.StatusOK) // an empty body: the session's instructions stand
}

// challenge answers 403 with a challenge for the refresh token the
// browser holds, which it signs and sends back.
func (w *Web) challenge(h *handoff, rt, sid string) {
	w.dbscCount(dbscChallenged)
	h.Header().Set(headerChallenge, dbsc.Quote(dbsc.Challenge(rt, w.now()))+";id="+dbsc.Quote(sid))
	httperr.Write(h, http.StatusForbidden, "use_dbsc_challenge", "sign the challenge with the session's key")
}

// dbscEnd answers a refresh of a session that is over (revoked, expired,
// or revoked just now because the proof was signed by another key): 401,
// which ends the browser's DBSC session, and the cookies cleared.
func (w *Web) dbscEnd(h *handoff, r *http.Request, why string) {
	w.dbscCount(dbscRefreshRefused)
	w.log.InfoContext(r.Context(), "gate: DBSC refresh refused; session over", "why", why)
	h.clearSession()
	httperr.Write(h, http.StatusUnauthorized, "invalid_grant", errSessionEnded.Error())
}

// cookieRefreshRefused handles a refresh by cookie that the authority
// refused because the session is bound (ErrUseDBSCChallenge): the request
// came from a browser without the session's key (a thief's, with copied
// cookies), or from the bound browser itself when it did not refresh
// through DBSC first: it skipped (and says so in Secure-Session-Skipped),
// or the request was one a browser does not hold back (one started from
// elsewhere than the app's own pages). The first two are answered as
// anonymous, the skipped one is told to try again; nothing is revoked and
// no cookie is cleared, so the bound browser refreshes through DBSC at its
// next request from the app's pages. A thief keeps cookies it cannot use.
func (w *Web) cookieRefreshRefused(r *http.Request, err error) error {
	w.dbscCount(dbscCookieRefused)
	if r.Header.Get(headerSkipped) != "" {
		w.log.InfoContext(r.Context(), "gate: the browser skipped its DBSC refresh", "skipped", r.Header.Get(headerSkipped))
		return errAuthority
	}
	w.log.InfoContext(r.Context(), "gate: refresh by cookie refused: the session is bound to a browser's key", "err", err,
		"remote", r.RemoteAddr, "path", r.URL.Path)
	return nil
}

// setBoundSession is setSession for a bound session: the access cookie
// expires boundMargin before its token.
func (h *handoff) setBoundSession(tok client.Tokens, bind string) error {
	if err := h.setSession(tok, bind); err != nil {
		return err
	}
	for _, c := range h.cookies {
		if c.Name == h.web.jar.access {
			c.MaxAge = int(boundAge(time.Duration(tok.ExpiresIn)*time.Second) / time.Second)
		}
	}
	return nil
}

func (w *Web) dbscCount(event string) {
	if m := w.metrics.Load(); m != nil {
		m.dbsc.WithLabelValues(event).Inc()
	}
}

func codeOf(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid_request"
	case http.StatusUnauthorized:
		return "invalid_token"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not_found"
	}
	return "temporarily_unavailable"
}

// retryAfter is a Retry-After value: whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(int(math.Ceil(d.Seconds())), 1))
}
