// Package dbsc holds the parts of Device Bound Session Credentials
// (W3C webappsec-dbsc) that the web gate and the authority must agree on:
// the challenges a browser signs and the check of its proofs, plus the
// wire forms of the headers (RFC 9651 strings).
//
// A challenge is derived from the refresh token the browser holds when it
// is issued: a timestamp in milliseconds and an HMAC keyed by that token
// over the timestamp. So a challenge is
//
//   - unguessable without the refresh token (256 random bits);
//   - single use: the authority keeps, with the refresh token, the time of
//     the newest challenge it accepted a proof over, in the transaction
//     that rotates the token (or answers a grace replay of it), and
//     accepts with that token only proofs over later challenges. A proof
//     captured in flight, presented again with the spent token inside the
//     authority's grace window, is refused; past the window the spent
//     token is taken for theft;
//   - short lived: a proof is accepted only over a challenge at most
//     ChallengeMaxAge old;
//   - issued statelessly: any gate can issue one and any authority node can
//     check it, with nothing shared but the refresh token and the one time
//     stored with it.
//
// A thief who copied the cookies can compute a challenge as well as the
// browser; what it cannot do is sign it with the browser's key, which is
// what the proof checks. Stateless, safe for concurrent use.
package dbsc
