package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tegata-dev/tegata/internal/authority"
)

type loginData struct {
	Next, Why, Error string
}

// loginPage is GET /console/login.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request, _ *operator) error {
	d := loginData{Next: safeNext(r.FormValue("next"))}
	if r.FormValue("ended") != "" {
		// A fixed message: the query string is anyone's to write.
		d.Why = "Your console session has ended (idle too long, signed out or revoked): sign in again."
	}
	return c.render(w, nil, "login", "Sign in", d)
}

// login is POST /console/login: an admin API key opens a console session.
func (c *Console) login(w http.ResponseWriter, r *http.Request, _ *operator) error {
	next := safeNext(r.PostFormValue("next"))
	if d := c.loginWait(r, false); d > 0 {
		w.Header().Set("Retry-After", retryAfter(d))
		return c.renderStatus(w, http.StatusTooManyRequests, nil, "login", "Sign in",
			loginData{Next: next, Error: "Too many failed sign-ins from this address: wait a little."})
	}
	tok, key, err := c.signIn(r.Context(), strings.TrimSpace(r.PostFormValue("key")))
	switch {
	case errors.Is(err, authority.ErrUnauthorized):
		c.loginWait(r, true)
		return c.renderStatus(w, http.StatusUnauthorized, nil, "login", "Sign in", loginData{Next: next, Error: "That API key is not valid."})
	case errors.Is(err, errNotAdmin):
		c.loginWait(r, true)
		c.log.Warn("console: sign-in with a non-admin API key refused", "key", key.Name, "role", key.Role)
		return c.renderStatus(w, http.StatusForbidden, nil, "login", "Sign in",
			loginData{Next: next, Error: "Only an admin API key may use the console; this one has the role " + key.Role + "."})
	case err != nil:
		return err
	}
	c.log.Info("console: operator signed in", "key", key.Name, "sid", tok.SessionID)
	c.setCookies(w, tok, newCSRF())
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// logout is POST /console/logout: the console session is revoked.
func (c *Console) logout(w http.ResponseWriter, r *http.Request, op *operator) error {
	c.end(r.Context(), op, w, endSignOut)
	http.Redirect(w, r, Prefix+"login", http.StatusSeeOther)
	return nil
}

// safeNext keeps a post-sign-in destination inside the console: a path
// under Prefix, never another host ("//evil", "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n") || strings.Contains(next, "//") {
		return Prefix
	}
	return next
}

// retryAfter is d in whole seconds, rounded up, for Retry-After.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
