package keyproof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
)

// PublicKey returns the Key of a signer's public half.
func PublicKey(pub crypto.PublicKey) (Key, error) {
	switch pub := pub.(type) {
	case ed25519.PublicKey:
		return newKey(pub, []byte(`{"crv":"Ed25519","kty":"OKP","x":"`+b64.EncodeToString(pub)+`"}`)), nil
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return Key{}, fmt.Errorf("%w: only P-256 ECDSA keys sign proofs", ErrKey)
		}
		raw, err := pub.Bytes()
		if err != nil {
			return Key{}, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return newKey(pub, []byte(`{"crv":"P-256","kty":"EC","x":"`+b64.EncodeToString(raw[1:33])+`","y":"`+b64.EncodeToString(raw[33:])+`"}`)), nil
	case *rsa.PublicKey:
		return newKey(pub, []byte(`{"e":"`+b64.EncodeToString(bigEndian(pub.E))+`","kty":"RSA","n":"`+b64.EncodeToString(pub.N.Bytes())+`"}`)), nil
	}
	return Key{}, fmt.Errorf("%w: unsupported key type %T", ErrKey, pub)
}

func bigEndian(e int) []byte {
	var b []byte
	for ; e > 0; e >>= 8 {
		b = append([]byte{byte(e)}, b...)
	}
	return b
}

// Sign signs claims (one JSON object) as a proof of typ by signer, whose
// public key goes into the jwk header: EdDSA for Ed25519, ES256 for P-256,
// RS256 for RSA keys.
func Sign(signer crypto.Signer, typ string, claims []byte) (string, error) {
	key, err := PublicKey(signer.Public())
	if err != nil {
		return "", err
	}
	alg := map[string]string{"OKP": EdDSA, "EC": ES256, "RSA": RS256}[kty(key)]
	header, err := json.Marshal(struct {
		Typ string          `json:"typ"`
		Alg string          `json:"alg"`
		JWK json.RawMessage `json:"jwk"`
	}{typ, alg, key.JSON})
	if err != nil {
		return "", err
	}
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(claims)
	sig, err := signInput(signer, alg, []byte(input))
	if err != nil {
		return "", fmt.Errorf("keyproof: sign: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

func kty(k Key) string {
	switch k.Public.(type) {
	case ed25519.PublicKey:
		return "OKP"
	case *ecdsa.PublicKey:
		return "EC"
	}
	return "RSA"
}

func signInput(signer crypto.Signer, alg string, input []byte) ([]byte, error) {
	if alg == EdDSA {
		return signer.Sign(rand.Reader, input, crypto.Hash(0))
	}
	digest := sha256.Sum256(input)
	sig, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
	if err != nil || alg == RS256 {
		return sig, err
	}
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &rs); err != nil || len(rest) != 0 || rs.R.Sign() <= 0 || rs.S.Sign() <= 0 {
		return nil, errors.New("signer returned a malformed ECDSA signature")
	}
	out := make([]byte, 64)
	rs.R.FillBytes(out[:32])
	rs.S.FillBytes(out[32:])
	return out, nil
}
