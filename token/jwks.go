package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	josejson "github.com/go-jose/go-jose/v4/json"
)

// MarshalJWKS returns the set as a JWK Set (RFC 7517): {"keys":[…]}, each key
// with kid, alg and use "sig", public parts only.
func (ks *KeySet) MarshalJWKS() ([]byte, error) {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, k := range ks.Keys() {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Key, KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"})
	}
	b, err := josejson.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	return b, nil
}

// jwkHead holds the JWK members that decide whether a key is usable here.
type jwkHead struct {
	Kty    string   `json:"kty"`
	Crv    string   `json:"crv"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	Kid    string   `json:"kid"`
	KeyOps []string `json:"key_ops"`
}

// ParseJWKS reads a JWK Set into a KeySet. As RFC 7517 5 advises, keys this
// package cannot use are skipped: other key types and curves (symmetric "oct"
// keys above all, so an HMAC secret can never become a verification key),
// other algs, use other than "sig", key_ops without "verify", and keys
// without kid. A key without alg gets the only alg its type allows. Private
// members, if present, are dropped. Malformed JSON, duplicate member names,
// a malformed usable key, or a kid used twice is an error.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set struct {
		Keys *[]josejson.RawMessage `json:"keys"`
	}
	if err := josejson.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("token: jwks: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New("token: jwks: no \"keys\" array")
	}
	var keys []PublicKey
	for i, raw := range *set.Keys {
		k, ok, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("token: jwks: key %d: %w", i, err)
		}
		if ok {
			keys = append(keys, k)
		}
	}
	return NewKeySet(keys...)
}

// parseJWK decodes one key, reporting false for a key to skip.
func parseJWK(raw []byte) (PublicKey, bool, error) {
	var head jwkHead
	if err := josejson.Unmarshal(raw, &head); err != nil {
		return PublicKey{}, false, err
	}
	alg := usableAlg(head)
	if alg == "" {
		return PublicKey{}, false, nil
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return PublicKey{}, false, err
	}
	pub := jwk.Public().Key
	if jwk.KeyID != head.Kid || !keyMatchesAlg(pub, alg) {
		return PublicKey{}, false, errors.New("key does not match its kty, crv or kid")
	}
	return PublicKey{ID: head.Kid, Algorithm: alg, Key: pub}, true, nil
}

// usableAlg returns the alg a key will verify under, or "" to skip it.
func usableAlg(h jwkHead) string {
	if h.Kid == "" || (h.Use != "" && h.Use != "sig") ||
		(h.KeyOps != nil && !slices.Contains(h.KeyOps, "verify")) {
		return ""
	}
	var alg string
	switch {
	case h.Kty == "OKP" && h.Crv == "Ed25519":
		alg = EdDSA
	case h.Kty == "EC" && h.Crv == "P-256":
		alg = ES256
	default:
		return ""
	}
	if h.Alg != "" && h.Alg != alg {
		return ""
	}
	return alg
}

func keyMatchesAlg(pub any, alg string) bool {
	switch k := pub.(type) {
	case ed25519.PublicKey:
		return alg == EdDSA
	case *ecdsa.PublicKey:
		return alg == ES256 && k.Curve.Params().Name == "P-256"
	}
	return false
}
