package verifier

import (
	"fmt"
	"net/http"
	"strings"
)

// Require returns middleware for a route behind Middleware that lets a
// request through only when allow accepts its claims. Otherwise the
// request is answered by the Middleware's error handler (WriteError: 403
// insufficient_scope) with an error wrapping ErrForbidden; a request with
// no claims (AllowAnonymous let it through, or no Middleware ran) gets
// ErrNoToken (WriteError: 401).
func Require(allow func(*Claims) bool) func(http.Handler) http.Handler {
	return requireWith("", allow)
}

// RequireClaim is Require for a claim that must hold at least one of
// values (Claims.Has): RequireClaim("roles", "admin", "owner").
func RequireClaim(name string, anyOf ...string) func(http.Handler) http.Handler {
	return requireWith(fmt.Sprintf("%s in %s", name, strings.Join(anyOf, "|")), func(c *Claims) bool {
		for _, v := range anyOf {
			if c.Has(name, v) {
				return true
			}
		}
		return false
	})
}

// RequireScope is Require for a scope claim that must include every one of
// scopes (Claims.HasScope): RequireScope("orders:read").
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	return requireWith("scope "+strings.Join(scopes, " "), func(c *Claims) bool { return c.HasScope(scopes...) })
}

// requireWith builds the middleware; what names the requirement in the
// error (for logs; the client sees Reason only).
func requireWith(what string, allow func(*Claims) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, ok := FromContext(r.Context())
			switch {
			case !ok:
				errorHandler(r.Context())(w, r, ErrNoToken)
			case !allow(c):
				err := ErrForbidden
				if what != "" {
					err = fmt.Errorf("%w: want %s", ErrForbidden, what)
				}
				errorHandler(r.Context())(w, r, err)
			default:
				next.ServeHTTP(w, r)
			}
		})
	}
}
