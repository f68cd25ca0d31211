package jws

// RefusedParams are the header parameters no JWS tegata verifies may carry,
// each with why: other ways of naming a key (URLs and certificates, never
// fetched or trusted), critical extensions (none is understood, so RFC 7515
// requires rejecting the JWS), and parameters that change what is signed
// and how or belong to JWE.
//
// KeyParam is not among them, and is the one difference between the two
// verifiers: a proof of possession (internal/keyproof) must carry the key it
// proves there, while an access token (package token) must not, since its
// key comes from the verifier's key set by kid alone.
var RefusedParams = map[string]string{
	"jku":      "names a key URL",
	"x5u":      "names a certificate URL",
	"x5c":      "embeds a certificate chain",
	"x5t":      "names a certificate",
	"x5t#S256": "names a certificate",
	"crit":     "lists critical extensions, and none is understood",
	"b64":      "changes the payload encoding",
	"enc":      "belongs to JWE",
	"zip":      "belongs to JWE",
}

// KeyParam is the header parameter embedding the signer's public key (a
// JWK), and KeyRefused why an access token carrying it is refused.
const (
	KeyParam   = "jwk"
	KeyRefused = "embeds key material"
)
