package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
	"github.com/tegata-dev/tegata/token"
)

// claimsKey is the context key of the verified claims.
type claimsKey struct{}

// Middleware returns a handler that verifies the bearer token of every
// request and calls next with the claims in the request context (see
// FromContext). A request without a valid token gets the answer of
// WriteError (401 with an RFC 6750 challenge and a JSON body); next is not
// called.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := TokenFromRequest(r)
		var c *token.Claims
		if err == nil {
			c, err = v.Verify(r.Context(), raw)
		} else {
			v.logRejection(r.Context(), nil, err)
		}
		if err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), claimsKey{}, c)))
	})
}

// FromContext returns the claims Middleware stored in ctx.
func FromContext(ctx context.Context) (*token.Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*token.Claims)
	return c, ok && c != nil
}

// NewContext returns ctx carrying verified claims, for middleware other
// than Middleware (the gate's web sessions) that verifies a request itself:
// handlers then read them with FromContext whichever middleware ran.
func NewContext(ctx context.Context, c *token.Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// WriteError answers a request refused because of err, an error from
// Verify or TokenFromRequest: 401 with the challenge
//
//	WWW-Authenticate: Bearer realm="tegata", error="invalid_token", error_description="<Reason(err)>"
//
// (only Bearer realm="tegata" when the request carried no token: RFC 6750
// §3.1 says a challenge then names no error) and the JSON body
// {"error":"invalid_token","error_description":"<Reason(err)>"}, never
// cached. The cause is never sent. The gate answers with the same writer.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	httperr.Refuse(w, http.StatusUnauthorized, httperr.InvalidToken, Reason(err), errors.Is(err, ErrNoToken))
}

// TokenFromRequest returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive, one or more spaces before the token). It returns ErrNoToken
// when there is no Authorization header, and an error wrapping ErrMalformed
// for any other scheme, several headers, or a token that is not an RFC 6750
// b64token.
func TokenFromRequest(r *http.Request) (string, error) {
	vals := r.Header.Values("Authorization")
	switch {
	case len(vals) == 0 || (len(vals) == 1 && vals[0] == ""):
		return "", ErrNoToken
	case len(vals) > 1:
		return "", fmt.Errorf("%w: several Authorization headers", ErrMalformed)
	}
	const scheme = "bearer "
	h := vals[0]
	if len(h) <= len(scheme) || !asciiEqualFold(h[:len(scheme)], scheme) {
		return "", fmt.Errorf("%w: Authorization header is not \"Bearer <token>\"", ErrMalformed)
	}
	// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token.
	raw := strings.TrimLeft(h[len(scheme):], " ")
	if !isB64Token(raw) {
		return "", fmt.Errorf("%w: bearer token has characters outside b64token", ErrMalformed)
	}
	return raw, nil
}

// asciiEqualFold compares ASCII strings case-insensitively (strings.EqualFold
// would also fold Unicode, which a header scheme must not match).
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// isB64Token reports whether s matches RFC 6750's
// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	i := 0
	for i < len(s) && isB64Char(s[i]) {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i == len(s)
}

func isB64Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '+', '/':
		return true
	}
	return false
}
