package verifier

import (
	"context"
	"net/http"
)

// MiddlewareOption changes what Middleware does; see TokenCookie,
// AllowAnonymous and OnError.
type MiddlewareOption func(*middlewareOptions)

type middlewareOptions struct {
	cookie    string
	anonymous bool
	onError   func(http.ResponseWriter, *http.Request, error)
}

// TokenCookie makes Middleware also read the token from the cookie name
// (the gate's web sessions keep it in "__Host-tegata-at"), under the rules
// of TokenFromRequestOrCookie: the Authorization header, when present, is
// used and must be well formed; two cookies of that name, or a header and
// a cookie with different tokens, are refused.
func TokenCookie(name string) MiddlewareOption {
	return func(o *middlewareOptions) { o.cookie = name }
}

// AllowAnonymous lets a request that carries no token at all reach the
// handler, with no claims in its context (FromContext reports false), for
// pages that serve everyone but show more to a signed-in user. A request
// whose token fails verification is still refused: its client should learn
// that its token expired or was revoked.
func AllowAnonymous() MiddlewareOption {
	return func(o *middlewareOptions) { o.anonymous = true }
}

// OnError makes Middleware, and the Require helpers behind it, answer
// refused requests with h instead of WriteError: to redirect a browser to
// a login page, or to write the app's own error format. err wraps one of
// the package's sentinels (ErrNoToken, ErrExpired, ErrRevoked,
// ErrForbidden, ...); Reason(err) is safe to show the client.
func OnError(h func(w http.ResponseWriter, r *http.Request, err error)) MiddlewareOption {
	return func(o *middlewareOptions) { o.onError = h }
}

// withHandler returns ctx carrying the custom error handler, if any, for
// Require to answer with.
func (o *middlewareOptions) withHandler(ctx context.Context) context.Context {
	if o.onError == nil {
		return ctx
	}
	return context.WithValue(ctx, onErrorKey{}, o.onError)
}

// errorHandler returns the handler a Middleware stored in ctx, or
// WriteError.
func errorHandler(ctx context.Context) func(http.ResponseWriter, *http.Request, error) {
	if h, ok := ctx.Value(onErrorKey{}).(func(http.ResponseWriter, *http.Request, error)); ok {
		return h
	}
	return WriteError
}
