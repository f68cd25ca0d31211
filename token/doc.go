// Package token mints and strictly verifies tegata access tokens: JWTs per
// RFC 9068 (typ "at+jwt") in JWS compact serialization, signed with EdDSA
// (Ed25519) or ES256. It also holds the verifier's key set and its JWKS form.
//
// Verification is deliberately narrow. The caller names the algorithms it
// accepts (EdDSA alone by default); "none", HMAC and RSA are never accepted; the
// key is chosen only by "kid" from the caller's key set, never from key material
// or URLs inside the token; "crit" is refused because no extension is
// understood; base64url must be canonical and the JSON strict (no duplicate
// member names, bounded nesting), so one set of claims has exactly one
// accepted encoding.
//
// Time is passed in by the caller; nothing here reads the clock.
//
// Concurrency: every function is safe for concurrent use. A KeySet is
// immutable once built; Claims values are owned by the caller.
package token
