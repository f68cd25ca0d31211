// Package jws signs JWS compact serializations with the keys of tegata's
// access tokens: the one signing path of package token's Sign, and SignJWT
// for the other JWTs the authority signs with those keys (Status List
// Tokens), which no app has to mint; and the header parameters both of
// tegata's JWS verifiers refuse (RefusedParams). Stateless, safe for
// concurrent use.
package jws

import (
	"crypto"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"unicode/utf8"
)

// Key is a private key with the kid and alg ("EdDSA" or "ES256") it signs
// under, as token.SigningKey holds them; the caller has checked that the
// key's type suits alg.
type Key struct {
	ID, Algorithm string
	Private       crypto.Signer
}

var b64 = base64.RawURLEncoding

// The order N of P-256 and N/2, to put ES256 signatures in low-S form.
var (
	p256N     = elliptic.P256().Params().N
	p256HalfN = new(big.Int).Rsh(p256N, 1)
)

// Sign signs already-encoded header and payload JSON with k and returns
// the compact serialization. rnd is the randomness for ECDSA; nil selects
// deterministic RFC 6979 signatures, which only test corpora use. ES256
// signatures are emitted in low-S form, the only form tegata verifies.
func Sign(k Key, header, payload []byte, rnd io.Reader) (string, error) {
	input := b64.AppendEncode(nil, header)
	input = append(input, '.')
	input = b64.AppendEncode(input, payload)
	sig, err := sign(k, input, rnd)
	if err != nil {
		return "", err
	}
	input = append(input, '.')
	return string(b64.AppendEncode(input, sig)), nil
}

// SignJWT signs payload, one JSON object used as given, under the header
// {"alg":…,"typ":typ,"kid":…}: a JWT other than an access token signed
// with an access token key, so that relying parties verify it with the
// same key set (typ statuslist+jwt). It refuses typ at+jwt: an access
// token is minted by token.Sign alone, which checks its claims, and
// token.Verify never accepts what SignJWT signs.
func SignJWT(k Key, typ string, payload []byte) (string, error) {
	switch {
	case typ == "" || !utf8.ValidString(typ):
		return "", errors.New("jws: SignJWT needs a typ")
	case isAccessType(typ):
		return "", errors.New("jws: access tokens are signed by token.Sign, not SignJWT")
	case !json.Valid(payload) || len(payload) == 0 || payload[0] != '{':
		return "", errors.New("jws: the payload must be one JSON object")
	}
	header := AppendString(append(AppendString([]byte(`{"alg":"`+k.Algorithm+`","typ":`), typ), `,"kid":`...), k.ID)
	return Sign(k, append(header, '}'), payload, rand.Reader)
}

// isAccessType reports whether typ names an access token (RFC 9068 §4:
// at+jwt or application/at+jwt, compared case-insensitively).
func isAccessType(typ string) bool {
	return strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")
}

// AppendString appends s, which must be valid UTF-8, as a JSON string.
func AppendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// sign signs input with k.
func sign(k Key, input []byte, rnd io.Reader) ([]byte, error) {
	switch k.Algorithm {
	case "EdDSA":
		sig, err := k.Private.Sign(rnd, input, crypto.Hash(0))
		if err == nil && len(sig) != ed25519.SignatureSize {
			err = fmt.Errorf("signer returned %d bytes", len(sig))
		}
		return sig, err
	case "ES256":
		digest := sha256.Sum256(input)
		der, err := k.Private.Sign(rnd, digest[:], crypto.SHA256)
		if err != nil {
			return nil, err
		}
		return lowSFixed(der)
	}
	return nil, fmt.Errorf("unsupported algorithm %q", k.Algorithm)
}

// lowSFixed turns an ASN.1 ECDSA signature into the JWS form r||s (32 bytes
// each), replacing s with N-s when s is high.
func lowSFixed(der []byte) ([]byte, error) {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return nil, errors.New("signer returned a malformed ECDSA signature")
	}
	if sig.R.Sign() <= 0 || sig.S.Sign() <= 0 || sig.R.Cmp(p256N) >= 0 || sig.S.Cmp(p256N) >= 0 {
		return nil, errors.New("signer returned an out-of-range ECDSA signature")
	}
	if sig.S.Cmp(p256HalfN) > 0 {
		sig.S.Sub(p256N, sig.S)
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}
