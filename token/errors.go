package token

import "errors"

// Sentinel errors. Verify and Inspect return them wrapped with a precise
// reason, for example "token: malformed: payload is not a JSON object"; test
// with errors.Is. Callers act on them: ErrUnknownKey may mean the key set is
// stale and worth refetching, ErrExpired means the client should refresh, and
// every other error means the token is bad and will stay bad.
var (
	ErrTooLarge    = errors.New("token: too large")
	ErrMalformed   = errors.New("token: malformed")
	ErrHeader      = errors.New("token: header")
	ErrAlgorithm   = errors.New("token: algorithm")
	ErrUnknownKey  = errors.New("token: unknown key")
	ErrSignature   = errors.New("token: signature")
	ErrType        = errors.New("token: type")
	ErrExpired     = errors.New("token: expired")
	ErrNotYetValid = errors.New("token: not yet valid")
	ErrIssuer      = errors.New("token: issuer")
	ErrAudience    = errors.New("token: audience")
	ErrClaims      = errors.New("token: claims")
)
