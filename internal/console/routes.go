package console

import (
	"crypto/subtle"
	"net/http"
)

// This file is the console's policy in one place: every route and whether
// it needs a signed-in operator. Every route but the sign-in page does;
// only an admin API key signs in (session.go). Unsafe methods are checked
// for cross-origin requests and for the session's CSRF token before any
// handler runs.

// route is one page or endpoint of the console.
type route struct {
	pattern string
	serve   func(w http.ResponseWriter, r *http.Request, op *operator) error
	// public routes are served without a session (the sign-in page).
	public bool
	// api routes answer JSON: a missing session is 401, not a redirect.
	api bool
}

func (c *Console) routes() []route {
	return []route{
		{pattern: "GET " + Prefix + "login", serve: c.loginPage, public: true},
		{pattern: "POST " + Prefix + "login", serve: c.login, public: true},
		{pattern: "POST " + Prefix + "logout", serve: c.logout},
		{pattern: "GET " + Prefix + "{$}", serve: c.overview},
		{pattern: "GET " + Prefix + "users", serve: c.users},
		{pattern: "GET " + Prefix + "user", serve: c.user},
		{pattern: "POST " + Prefix + "user/revoke", serve: c.revoke},
		{pattern: "GET " + Prefix + "confirm", serve: c.confirmPage},
		{pattern: "GET " + Prefix + "api/confirm", serve: c.confirmJSON, api: true},
		{pattern: "GET " + Prefix + "verifiers", serve: c.verifiers},
		{pattern: "GET " + Prefix + "api/verifiers", serve: c.verifiersJSON, api: true},
		{pattern: "GET " + Prefix + "audit", serve: c.audit},
		{pattern: "GET " + Prefix + "audit/export", serve: c.auditExport},
		{pattern: "GET " + Prefix + "alerts", serve: c.alerts},
		{pattern: "GET " + Prefix + "keys", serve: c.keys},
		{pattern: "POST " + Prefix + "keys/rotate", serve: c.rotateKey},
		{pattern: "POST " + Prefix + "apikeys", serve: c.createAPIKey},
		{pattern: "POST " + Prefix + "apikeys/revoke", serve: c.revokeAPIKey},
	}
}

// guard runs a route's checks: cross-origin and CSRF for unsafe methods,
// the operator's session unless the route is public.
func (c *Console) guard(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := c.cop.Check(r); err != nil {
			c.fail(w, r, nil, &pageError{status: http.StatusForbidden, msg: "Cross-origin request refused."})
			return
		}
		var op *operator
		if !rt.public {
			var ok bool
			if op, ok = c.signedIn(w, r, rt.api); !ok {
				return
			}
		}
		if unsafe(r) && !rt.public && !csrfOK(r, op) {
			c.fail(w, r, op, &pageError{status: http.StatusForbidden, msg: "The form has expired: reload the page and try again."})
			return
		}
		if err := rt.serve(w, r, op); err != nil {
			c.fail(w, r, op, err)
		}
	})
}

func unsafe(r *http.Request) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

// csrfOK checks the form's token against the session's (double submit:
// the token is a __Host- cookie no other site can set or read).
func csrfOK(r *http.Request, op *operator) bool {
	got := r.PostFormValue(csrfField)
	return op != nil && op.csrf != "" && subtle.ConstantTimeCompare([]byte(got), []byte(op.csrf)) == 1
}
