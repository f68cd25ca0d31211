package token

import (
	"fmt"
	"time"
)

// Claims of an access token. Times are whole seconds in JSON (NumericDate);
// Verify returns them in UTC.
type Claims struct {
	Issuer   string   // iss
	Subject  string   // sub
	Audience []string // aud: a string or an array of strings in JSON

	IssuedAt  time.Time // iat
	NotBefore time.Time // nbf; zero if absent
	Expiry    time.Time // exp

	ID         string // jti
	SessionID  string // sid
	Generation int64  // sgen: the subject generation that subject cutoffs compare

	// Extra holds every other (application) claim, such as roles or scope,
	// with the types encoding/json gives an any. It is nil if there are none.
	Extra map[string]any
}

// IsReserved reports whether name is a claim this package sets or reads
// itself, which Extra must not carry: iss sub aud exp nbf iat jti sid sgen,
// and cnf. cnf binds a token to a proof-of-possession key (RFC 7800, DPoP);
// this package does not check such proofs, so Sign refuses to mint cnf and
// Verify rejects a token carrying it rather than silently treating a
// sender-constrained token as a bearer token. The other claims RFC 9068
// describes (scope, client_id, roles, groups, entitlements, auth_time, acr,
// amr) belong to the application and travel in Extra.
func IsReserved(name string) bool {
	switch name {
	case "iss", "sub", "aud", "exp", "nbf", "iat", "jti", "sid", "sgen", "cnf":
		return true
	}
	return false
}

// CheckExtra reports whether data, a JSON object of application claims, can
// travel as Claims.Extra in a token that Sign mints and Verify accepts: the
// strict JSON Verify reads (valid UTF-8, no name twice at any depth, nesting
// within the parser's limit as counted inside the payload) and no reserved
// name. An issuer checks claims with it when they come in, so that claims it
// stores can always be signed later. Errors wrap ErrClaims.
func CheckExtra(data []byte) error {
	m, err := decodeObjectValue(data, "claims")
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClaims, err)
	}
	for name := range m {
		if IsReserved(name) {
			return fmt.Errorf("%w: claim %q is reserved", ErrClaims, name)
		}
	}
	return nil
}
