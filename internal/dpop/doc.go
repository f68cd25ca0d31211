// Package dpop checks and makes DPoP proofs (RFC 9449): the JWTs of type
// dpop+jwt a client signs per request with the key its tokens are bound
// to. A Checker verifies a proof against the request it came with (htm,
// htu normalised per RFC 9449 §4.3, iat within a window, ath for the
// access token, an optional server nonce) and remembers each proof's jti
// for as long as the proof could be accepted, in a cache whose size is
// bounded: a proof is good once, at one verifier.
//
// The verifier, its middleware and the gate check proofs at resource
// servers; the authority checks them at sign-in and refresh; package
// client signs them. A Checker is safe for concurrent use.
package dpop
