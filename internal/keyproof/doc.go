// Package keyproof reads the proofs of possession that device binding
// rests on: a JWS in compact serialization signed by a key the signer
// holds, whose public half travels in the JWS's own "jwk" header (DPoP
// proofs, RFC 9449; DBSC registrations, typ dbsc+jwt) or was learnt
// earlier and is named by the caller (DBSC refresh proofs). It is the one
// place where a key named inside a token is trusted, because proving
// possession of that key is the point: the caller names the algorithms it
// accepts and the typ it expects, private key material is refused, and a
// key is identified only by its RFC 7638 SHA-256 thumbprint.
//
// What the payload claims mean (htm, htu, jti, challenges) is the caller's
// business: Parse hands each member, strictly decoded, to the caller's
// ClaimReader, so that a verifier reads a proof in one pass without
// building maps. Stateless, safe for concurrent use.
package keyproof
