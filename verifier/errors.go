package verifier

import (
	"errors"

	"github.com/tegata-dev/tegata/token"
)

// Errors Verify returns, wrapped with %w and context; test them with
// errors.Is. The token sentinels are re-exported so that callers need not
// import package token.
var (
	// ErrNoToken: the request carries no token where the middleware looks:
	// no Authorization header (or an empty one) and, when a cookie is
	// read (TokenCookie, TokenFromRequestOrCookie), no such cookie (or an
	// empty one).
	ErrNoToken = errors.New("verifier: no token")
	// ErrRevoked: the token is well signed and unexpired but its session or
	// its subject (before the token's generation) was revoked.
	ErrRevoked = errors.New("verifier: token revoked")
	// ErrStale: the verifier has not heard from the authority for longer than
	// Config.StaleAfter (or has never caught up, or its revocation set is
	// full), so it cannot vouch that the token was not revoked, and
	// Config.Introspect is off.
	ErrStale = errors.New("verifier: revocation state is stale")
	// ErrUnavailable: the state was stale and the fallback introspection
	// request failed on every authority.
	ErrUnavailable = errors.New("verifier: authority unavailable")
	// ErrInactive: the state was stale and the authority answered the
	// introspection request with active:false.
	ErrInactive = errors.New("verifier: authority says token is not active")
	// ErrForbidden: the token is valid but lacks a claim the route requires
	// (Require, RequireClaim, RequireScope).
	ErrForbidden = errors.New("verifier: token lacks a required claim")
	// ErrKeyRefused is returned by New when every authority answered the
	// feed request with 401 or 403: Config.APIKey is wrong, revoked, or
	// lacks the feed role. Waiting does not fix it.
	ErrKeyRefused = errors.New("verifier: the authority refused the API key")
	// ErrDPoP: the token is bound to a DPoP key (RFC 9449) and came
	// without a valid proof of that key: as a Bearer token, with a proof
	// that fails a check (htm, htu, iat, ath, replayed jti, signature), or
	// signed by another key; or a token that is not DPoP-bound came with
	// the DPoP scheme. Answered with invalid_dpop_proof.
	ErrDPoP = errors.New("verifier: DPoP proof missing or invalid")
	// ErrUseDPoPNonce: Config.DPoPNonce requires a server nonce and the
	// proof lacks the current one; WriteError sends it in DPoP-Nonce for
	// the client to sign a new proof with (use_dpop_nonce).
	ErrUseDPoPNonce = errors.New("verifier: DPoP proof needs the server's nonce")

	ErrTooLarge    = token.ErrTooLarge
	ErrMalformed   = token.ErrMalformed
	ErrHeader      = token.ErrHeader
	ErrAlgorithm   = token.ErrAlgorithm
	ErrUnknownKey  = token.ErrUnknownKey
	ErrSignature   = token.ErrSignature
	ErrType        = token.ErrType
	ErrExpired     = token.ErrExpired
	ErrNotYetValid = token.ErrNotYetValid
	ErrIssuer      = token.ErrIssuer
	ErrAudience    = token.ErrAudience
	ErrClaims      = token.ErrClaims
)

// Reasons Reason returns. They are meant for clients (WWW-Authenticate
// error_description): short, stable, and free of anything an attacker could
// learn from (which check failed beyond expired/revoked, key ids, causes).
const (
	reasonNoToken = "no token"
	reasonExpired = "token expired"
	reasonRevoked = "token revoked"
	reasonInvalid = "token invalid"
	reasonStale   = "verifier not in sync with authority"
	reasonDenied  = "insufficient claims"
	reasonDPoP    = "DPoP proof missing or invalid"
	reasonNonce   = "DPoP nonce required"
)

// Reason maps an error from Verify, TokenFromRequest or a Require helper
// to a short reason that is safe to show a client: "no token", "token
// expired", "token revoked", "verifier not in sync with authority",
// "insufficient claims" (ErrForbidden), "DPoP proof missing or invalid"
// (ErrDPoP), "DPoP nonce required" (ErrUseDPoPNonce) or, for anything else, "token
// invalid". It returns "" for a nil error.
func Reason(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNoToken):
		return reasonNoToken
	case errors.Is(err, ErrExpired):
		return reasonExpired
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrInactive):
		// Inactive means the authority, asked directly, refused a token that
		// is locally valid and unexpired: in practice a revocation.
		return reasonRevoked
	case errors.Is(err, ErrStale), errors.Is(err, ErrUnavailable):
		return reasonStale
	case errors.Is(err, ErrForbidden):
		return reasonDenied
	case errors.Is(err, ErrDPoP):
		return reasonDPoP
	case errors.Is(err, ErrUseDPoPNonce):
		return reasonNonce
	default:
		return reasonInvalid
	}
}

// codes maps sentinels to Code's identifiers, most specific first.
var codes = []struct {
	err  error
	code string
}{
	{ErrNoToken, "no_token"},
	{ErrRevoked, "revoked"},
	{ErrInactive, "inactive"},
	{ErrStale, "stale"},
	{ErrUnavailable, "unavailable"},
	{ErrTooLarge, "too_large"},
	{ErrMalformed, "malformed"},
	{ErrHeader, "header"},
	{ErrAlgorithm, "algorithm"},
	{ErrUnknownKey, "unknown_key"},
	{ErrSignature, "signature"},
	{ErrType, "type"},
	{ErrExpired, "expired"},
	{ErrNotYetValid, "not_yet_valid"},
	{ErrIssuer, "issuer"},
	{ErrAudience, "audience"},
	{ErrClaims, "claims"},
	{ErrForbidden, "forbidden"},
	{ErrDPoP, "dpop"},
	{ErrUseDPoPNonce, "use_dpop_nonce"},
}

// Code maps an error from Verify, TokenFromRequest or a Require helper to
// a short, stable identifier of the check that failed, for metrics labels
// and operator logs: "no_token", "revoked", "inactive", "stale",
// "unavailable", "too_large", "malformed", "header", "algorithm",
// "unknown_key", "signature", "type", "expired", "not_yet_valid",
// "issuer", "audience", "claims", "forbidden", "dpop", "use_dpop_nonce",
// else "other"; "" for nil.
// Unlike Reason it says which check failed, so do not send it to clients.
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "other"
}
