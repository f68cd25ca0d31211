// Package dbsc holds the parts of Device Bound Session Credentials
// (W3C webappsec-dbsc) that the web gate and the authority must agree on:
// the challenges a browser signs and the check of its proofs, plus the
// wire forms of the headers (RFC 9651 strings).
//
// A challenge is derived from the refresh token the browser holds when it
// is issued: a timestamp and an HMAC keyed by that token over the
// timestamp. So a challenge is
//
//   - unguessable without the refresh token (256 random bits);
//   - single use in effect: the refresh it is signed for rotates the token,
//     and a proof over a challenge of a spent token is worth nothing, since
//     the spent token is refused (or, past the grace window, taken for
//     theft);
//   - short lived: a proof is accepted only over a challenge at most
//     ChallengeMaxAge old;
//   - stateless: any gate can issue one and any authority node can check
//     it, with nothing shared or stored but the refresh token itself.
//
// A thief who copied the cookies can compute a challenge as well as the
// browser; what it cannot do is sign it with the browser's key, which is
// what the proof checks. Stateless, safe for concurrent use.
package dbsc
