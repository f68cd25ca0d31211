package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tegata-dev/tegata/internal/httperr"
)

// claimsKey is the context key of the verified claims; onErrorKey that of
// the ErrorHandler a Middleware was given, for Require to answer with.
type (
	claimsKey  struct{}
	onErrorKey struct{}
)

// Middleware returns a handler that verifies the token of every request
// and calls next with the claims in the request context (see FromContext).
// The token comes from the Authorization header ("Bearer <token>", or
// "DPoP <token>" with a DPoP proof header: VerifyDPoP, the URL
// Config.PublicURL and the request's path, and refused (ErrDPoP) without
// PublicURL, as the request's Host is the client's to write) or, with
// TokenCookie, a cookie. A request without a valid token is answered
// by the error handler (WriteError unless OnError says otherwise: 401 with
// an RFC 6750 challenge and a JSON body) and next is not called; with
// AllowAnonymous a request that carries no token at all reaches next
// without claims.
//
// Routes that need more than a valid token wrap next with RequireClaim,
// RequireScope or Require.
func (v *Verifier) Middleware(next http.Handler, opts ...MiddlewareOption) http.Handler {
	var o middlewareOptions
	for _, opt := range opts {
		opt(&o)
	}
	onError := o.onError
	if onError == nil {
		onError = WriteError
	}
	if v.cfg.PublicURL == "" {
		v.noPublicURLInfo.Do(func() {
			v.log.Info("verifier: Middleware refuses DPoP-bound tokens: set Config.PublicURL to the URL clients address this app at, " +
				"against which their proofs are checked")
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var c *Claims
		raw, proof, isDPoP, err := DPoPTokenFromRequest(r)
		switch {
		case isDPoP && err == nil:
			c, err = v.verifyDPoPRequest(r, raw, proof)
		case isDPoP:
			v.logRejection(ctx, nil, err)
		default:
			raw, err = TokenFromRequestOrCookie(r, o.cookie)
			if errors.Is(err, ErrNoToken) && o.anonymous {
				next.ServeHTTP(w, r.WithContext(o.withHandler(ctx)))
				return
			}
			if err == nil {
				c, err = v.Verify(ctx, raw)
			} else {
				v.logRejection(ctx, nil, err)
			}
		}
		if err != nil {
			onError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(o.withHandler(context.WithValue(ctx, claimsKey{}, c))))
	})
}

// FromContext returns the claims Middleware stored in ctx; false when
// there are none (no Middleware ran, or it let an anonymous request
// through).
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// NewContext returns ctx carrying verified claims, for middleware other
// than Middleware (the gate's web sessions) that verifies a request itself:
// handlers then read them with FromContext whichever middleware ran.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// WriteError answers a request refused because of err, an error from
// Verify, TokenFromRequest or a Require helper. A token that is missing or
// fails verification gets 401 with the challenge
//
//	WWW-Authenticate: Bearer realm="tegata", error="invalid_token", error_description="<Reason(err)>"
//
// (only Bearer realm="tegata" when the request carried no token: RFC 6750
// §3.1 says a challenge then names no error) and the JSON body
// {"error":"invalid_token","error_description":"<Reason(err)>"}. A valid
// token that lacks a claim a route requires (ErrForbidden) gets 403 with
// error="insufficient_scope" in both. A DPoP refusal (ErrDPoP,
// ErrUseDPoPNonce) gets 401 with RFC 9449's challenge, WWW-Authenticate:
// DPoP algs="ES256 EdDSA Ed25519", error="invalid_dpop_proof" (or
// "use_dpop_nonce", with the nonce in a DPoP-Nonce header). Never cached; the cause is never
// sent. The gate answers with the same writer.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if challenge, code, nonce, ok := dpopChallenge(err); ok {
		if nonce != "" {
			w.Header().Set("DPoP-Nonce", nonce)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		httperr.Write(w, http.StatusUnauthorized, code, Reason(err))
		return
	}
	if errors.Is(err, ErrForbidden) {
		httperr.Refuse(w, http.StatusForbidden, httperr.InsufficientScope, Reason(err), false)
		return
	}
	httperr.Refuse(w, http.StatusUnauthorized, httperr.InvalidToken, Reason(err), errors.Is(err, ErrNoToken))
}

// TokenFromRequest returns the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive, one or more spaces before the token). It returns ErrNoToken
// when there is no Authorization header (or one empty header), and an error wrapping ErrMalformed
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
