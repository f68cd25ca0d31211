package gate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/internal/httpguard"
	"github.com/tegata-dev/tegata/verifier"
)

// errAuthority: a refresh was needed and the authority could not be asked
// (down, rate limited, the gate's key refused). The session may be fine, so
// its cookies are kept and the request is answered 503.
var errAuthority = errors.New("gate: authority unavailable for refresh")

// bearerError marks a refused Authorization header: such a request is
// answered 401 like by the plain gate, whatever its path.
type bearerError struct{ err error }

func (e bearerError) Error() string { return e.err.Error() }
func (e bearerError) Unwrap() error { return e.err }

// identify returns the request's verified claims, nil for an anonymous
// request, or an error when it can be neither (refused bearer token, stale
// verifier, authority unavailable for a needed refresh).
//
// A present Authorization header (bt) is used alone, as by the plain gate.
// Otherwise the access token cookie is used while it is valid for more than
// RefreshBefore; else the refresh cookie is exchanged at the authority (one
// exchange per refresh token at a time, see refresher) and h sets the new
// cookies on the response. A refresh the authority refuses (session
// revoked, token reused, expired) makes the request anonymous and h clears
// the cookies.
func (w *Web) identify(h *handoff, r *http.Request, bt bearer) (*verifier.Claims, error) {
	ctx := r.Context()
	if bt.present {
		err := bt.err
		if err == nil {
			var c *verifier.Claims
			if c, err = w.v.Verify(ctx, bt.raw); err == nil {
				h.raw = bt.raw
				return c, nil
			}
		}
		return nil, bearerError{err}
	}
	// No token in an Authorization header: these read the cookies, with the
	// one extractor every tegata component shares (duplicates refused).
	at, atErr := verifier.TokenFromRequestOrCookie(r, w.jar.access)
	rt, rtErr := verifier.TokenFromRequestOrCookie(r, w.jar.refresh)
	var claims *verifier.Claims
	err := atErr
	if err == nil {
		claims, err = w.v.Verify(ctx, at)
		h.raw = at
	}
	if err == nil && claims.Expiry().Sub(w.now()) > RefreshBefore {
		return claims, nil
	}
	if isStale(err) {
		return nil, err // refreshing would not help: the new token is as unverifiable
	}
	if rtErr != nil {
		if err == nil {
			return claims, nil // near expiry, nothing to refresh with: use it while it lasts
		}
		if hasCookie(r, w.jar.access) || hasCookie(r, w.jar.refresh) {
			h.clearSession()
		}
		return nil, nil
	}
	if !h.proxied && isUpgrade(r) {
		// An in-process WebSocket library may write its 101 on the raw
		// connection (gorilla/websocket does), where the new cookies would
		// be lost and the browser left with a spent refresh token: the page
		// refreshes with a normal request first.
		if err == nil {
			return claims, nil // near expiry: use it while it lasts
		}
		return nil, errUpgradeRefresh
	}
	return w.refresh(h, r, rt, claims)
}

// errUpgradeRefresh: an upgrade request to an in-process app needs a
// refresh, which only a normal request can deliver. It is answered 401.
var errUpgradeRefresh = fmt.Errorf("gate: a protocol switch (WebSocket) needs a session refresh; "+
	"the page must make a normal request first: %w", verifier.ErrExpired)

// isUpgrade reports whether r asks to switch protocols (HTTP/1.1 Upgrade,
// a WebSocket handshake): its answer may be a 101 written on the raw
// connection.
func isUpgrade(r *http.Request) bool {
	if r.Header.Get("Upgrade") == "" {
		return false
	}
	for _, v := range r.Header.Values("Connection") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// refresh exchanges rt for r and verifies the new access token. current is
// the still-valid access token's claims (near expiry), or nil.
func (w *Web) refresh(h *handoff, r *http.Request, rt string, current *verifier.Claims) (*verifier.Claims, error) {
	ctx := r.Context()
	addr, bind := w.clientKey(r), w.jar.bindOf(r)
	tok, err := w.refresher.refresh(ctx, rt, addr, holderOf(addr, bind))
	var limited *refreshLimited
	switch {
	case err == nil:
	case errors.Is(err, client.ErrUseDBSCChallenge):
		if current != nil {
			return current, nil // still valid: the browser's DBSC refresh comes before it lapses
		}
		return nil, w.cookieRefreshRefused(r, err)
	case isRefused(err):
		w.log.DebugContext(ctx, "gate: refresh refused; session over", "err", err)
		h.clearSession()
		return nil, nil
	case errors.As(err, &limited):
		w.logLimited(r)
		if current != nil {
			return current, nil
		}
		return nil, err
	default:
		w.logAuthorityError(ctx, "refresh", err)
		if current != nil {
			return current, nil
		}
		return nil, errAuthority
	}
	// The old refresh token is spent: the browser must get the new ones
	// whatever happens next, or it loses its session.
	if bind == "" {
		bind = newBind()
	}
	if err := h.setSession(tok, bind); err != nil {
		return nil, err
	}
	c, err := w.v.Verify(ctx, tok.AccessToken)
	h.raw = tok.AccessToken
	if err != nil {
		if !isStale(err) {
			w.log.WarnContext(ctx, "gate: the authority issued an access token this gate refuses (audience or issuer mismatch?)",
				"err", err, "sid", tok.SessionID)
		}
		return nil, err
	}
	w.tunnels.renew(c.SessionID(), tok.AccessToken, c.Expiry())
	return c, nil
}

// isRefused reports whether the authority refused a refresh token for good
// (RFC 6749 invalid_grant), as opposed to failing to answer.
func isRefused(err error) bool {
	return errors.Is(err, client.ErrInvalidGrant) || errors.Is(err, client.ErrUseDBSCChallenge)
}

func isStale(err error) bool {
	return errors.Is(err, verifier.ErrStale) || errors.Is(err, verifier.ErrUnavailable)
}

// clientKey is the key of r's client address (behind the trusted
// proxies) for per-address limits.
func (w *Web) clientKey(r *http.Request) string {
	return httpguard.AddrKey(httpguard.ClientAddr(r, w.trusted))
}

// holderOf is who may be handed a remembered exchange (spentTokens): the
// browser holding binding value bind, at client address key addr. Without
// a binding value nobody is.
func holderOf(addr, bind string) string {
	if bind == "" {
		return ""
	}
	h := sha256.Sum256([]byte(bind))
	return addr + " " + hex.EncodeToString(h[:])
}

// logLimited says, at most once a minute, that refreshes were refused for
// their address: a gate behind a proxy sees every browser at the proxy's.
func (w *Web) logLimited(r *http.Request) {
	level := slog.LevelDebug
	if w.quiet.Wait("refresh", 1, w.now()) == 0 {
		level = slog.LevelWarn
	}
	w.log.Log(r.Context(), level, "gate: refreshes from one address over the limit, answered 429 "+
		"(behind a proxy, list it in --trusted-proxies, WebConfig.TrustedProxies, so that each browser is counted by its own address; or raise --refresh-per-address)",
		"remote", r.RemoteAddr, "path", r.URL.Path)
}

func hasCookie(r *http.Request, name string) bool {
	_, err := r.Cookie(name)
	return err == nil
}

// logAuthorityError logs a failed call to the authority, naming the likely
// misconfiguration when the gate's own API key was refused.
func (w *Web) logAuthorityError(ctx context.Context, call string, err error) {
	var ce *client.Error
	if errors.As(err, &ce) && (ce.Status == http.StatusUnauthorized || ce.Status == http.StatusForbidden) {
		w.log.ErrorContext(ctx, "gate: the authority refused the gate's API key; it needs role gate "+
			"(tegata apikeys create --name web --role gate)", "call", call, "err", err)
		return
	}
	w.log.WarnContext(ctx, "gate: authority call failed", "call", call, "err", err)
}

// refuseIdentity answers a request whose identity could not be settled.
func (w *Web) refuseIdentity(h *handoff, r *http.Request, err error) {
	var be bearerError
	var limited *refreshLimited
	switch {
	case errors.As(err, &be):
		w.refuse(h, r, be.err)
	case isStale(err), errors.Is(err, errAuthority):
		w.log.InfoContext(r.Context(), "gate: session cannot be checked now", "err", err, "path", r.URL.Path)
		h.Header().Set("Retry-After", "1")
		if r.Method == http.MethodGet && acceptsHTML(r) {
			w.unavailablePage(h)
			return
		}
		httperr.Write(h, http.StatusServiceUnavailable, "temporarily_unavailable", "sessions cannot be checked right now; try again")
	case errors.Is(err, errCookieTooLarge):
		httperr.Write(h, http.StatusBadGateway, "bad_gateway", "session could not be stored in a cookie")
	case errors.As(err, &limited):
		secs := strconv.Itoa(int(math.Ceil(limited.wait.Seconds())))
		h.Header().Set("Retry-After", secs)
		httperr.Write(h, http.StatusTooManyRequests, "rate_limited", "too many session refreshes from this address; retry after "+secs+" s")
	default:
		// A freshly issued token the verifier refuses: configuration, not
		// the browser's fault; its new cookies are set, so a retry may pass.
		w.refuse(h, r, err)
	}
}

// unavailablePage answers a browser's page request with the HTML page that
// says sessions cannot be checked now (WebConfig.UnavailablePage).
func (w *Web) unavailablePage(h *handoff) {
	hd := h.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	h.WriteHeader(http.StatusServiceUnavailable)
	_, _ = h.Write(w.down)
}

// refuse answers 401 like the plain gate.
func (w *Web) refuse(rw http.ResponseWriter, r *http.Request, err error) { refuse(w.log, rw, r, err) }
