// Package verifier checks tegata access tokens in a Go service, locally:
// the signature and claims against the authority's published key set, then
// an in-memory revocation set that a push feed from the authority keeps
// current. A revoked token is refused within milliseconds of its
// revocation, with no network call per request, and the verifier never
// trusts stale state: when it has not heard from the authority for too
// long it fails closed or, if configured, asks the authority.
//
// # Setting up
//
// New fetches the authority's discovery document and key set, then follows
// the revocation feed in the background; WaitReady blocks until the
// revocation set has caught up, after which Verify answers from local
// state alone:
//
//	v, err := verifier.New(ctx, verifier.Config{
//		Authorities: []string{"https://auth-1.internal", "https://auth-2.internal"},
//		APIKey:      os.Getenv("TEGATA_FEED_KEY"), // an API key with the feed role
//	})
//	if err != nil { ... }
//	defer v.Close()
//	if err := v.WaitReady(ctx); err != nil { ... }
//
// Config's zero values are the defaults; issuer, audience and the longest
// token lifetime come from the authority. State reports how current the
// verifier is, for health checks.
//
// # Protecting handlers
//
// Middleware verifies each request's token and puts its claims in the
// request context (FromContext). Options read the token from a cookie as
// well (TokenCookie), let anonymous requests through (AllowAnonymous) and
// answer refusals the app's way (OnError); RequireClaim, RequireScope and
// Require protect routes that need a role or a scope:
//
//	mux.Handle("/orders", v.Middleware(orders))
//	mux.Handle("/admin/", v.Middleware(verifier.RequireClaim("roles", "admin")(admin)))
//
// A DPoP-bound token (RFC 9449) comes as "Authorization: DPoP <token>"
// with a proof of the client's key in a DPoP header, for the URL the client
// addressed: Config.PublicURL and the request's path. Without PublicURL
// the middleware refuses such requests rather than take the URL from the
// request's Host, which the client writes (a proof made for another
// service would then pass here); VerifyDPoP takes the URL from the caller.
//
// A refused request gets WriteError's answer by default: 401 with an RFC
// 6750 challenge (WWW-Authenticate: Bearer realm="tegata", error=...,
// error_description=...) or 403 insufficient_scope, and the JSON body
// {"error", "error_description"}, the same as the gate and the authority
// send.
//
// # Claims
//
// Claims are immutable: the registered claims are methods (Subject,
// SessionID, Expiry, ...), the application's are read with Claim, Has,
// HasScope, ClaimJSON or Decode (into a struct of the app's own), and
// whatever a method returns is the caller's. So Verify hands every request
// for a token the claims it cached, without a copy or an allocation, and no
// handler can change what another request sees. Copy returns a
// token.Claims to change.
//
// # Errors
//
// Verify's errors wrap one sentinel each (ErrExpired, ErrRevoked, ErrStale,
// ErrSignature, ...), to test with errors.Is. Reason turns any of them into
// a short phrase that is safe to show a client; the cause is for logs.
//
// # Testing
//
// Package verifiertest is an in-process authority for an app's unit tests:
// it signs users in, refreshes and revokes sessions and hands out a
// Verifier that trusts it, with no network and no database. The examples
// below use it.
//
// # Concurrency
//
// A Verifier is safe for concurrent use by any number of goroutines. New
// starts background goroutines (the feed, periodic key set fetches,
// pruning) that run until Close. A local verifier (the authority's own,
// and verifiertest's, built over internal/localverifier) runs none: its
// owner keeps the key set and revocation set current.
package verifier
