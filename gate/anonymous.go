package gate

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/verifier"
)

// isPublic reports whether an anonymous request may reach p. Both p and its
// cleaned form must match a public prefix, so "/assets/../admin" is not
// public even though it begins with "/assets/": the app may resolve the dot
// segments.
func (w *Web) isPublic(p string) bool { return underAny(p, w.public) }

// mayLogin reports whether the answer to a request for path p may sign a
// browser in (WebConfig.LoginHandoffPaths), with isPublic's matching.
func (w *Web) mayLogin(p string) bool { return w.handoff == nil || underAny(p, w.handoff) }

// underAny reports whether p and its cleaned form are each under one of
// prefixes.
func underAny(p string, prefixes []string) bool {
	return matchesAny(p, prefixes) && matchesAny(cleanPath(p), prefixes)
}

func matchesAny(p string, prefixes []string) bool {
	for _, prefix := range prefixes {
		if underPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// underPrefix: a prefix ending in "/" covers everything below it; any other
// covers itself and what is below it ("/login", "/login/x", not "/login2").
func underPrefix(p, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(p, prefix)
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// anonymous answers a request that is not signed in and may not reach the
// app: a browser navigation goes to the login page, with the way back in
// ?next=; anything else (a script's fetch, an API call) gets 401, saying
// "the session has ended" when the browser sent a session that did.
func (w *Web) anonymous(h *handoff, r *http.Request) {
	if (r.Method == http.MethodGet || r.Method == http.MethodHead) && acceptsHTML(r) {
		h.Header().Set("Location", w.loginPath+"?next="+url.QueryEscape(r.URL.RequestURI()))
		h.Header().Set("Cache-Control", "no-store")
		h.WriteHeader(http.StatusSeeOther)
		return
	}
	if h.clear {
		// The browser sent session cookies the gate could not use (the
		// session was signed out, revoked or has expired): say so, rather
		// than "no token", which reads like a bug in the page.
		logRefusal(w.log, r, errSessionEnded, "session ended")
		h.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="session ended"`)
		httperr.Write(h, http.StatusUnauthorized, "invalid_token", errSessionEnded.Error())
		return
	}
	w.refuse(h, r, verifier.ErrNoToken)
}

// errSessionEnded answers a request whose session cookies were refused.
var errSessionEnded = errors.New("the session has ended (signed out, revoked or expired): sign in again")

// acceptsHTML reports whether the request's Accept header names text/html,
// as a browser's navigations and form submissions do and its scripts'
// fetches (Accept: */*) do not.
func acceptsHTML(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept") {
		for part := range strings.SplitSeq(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/html") {
				return true
			}
		}
	}
	return false
}
