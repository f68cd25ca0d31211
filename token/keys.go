package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math/big"
)

// Algorithms this package signs and verifies with.
const (
	EdDSA = "EdDSA" // Ed25519 (RFC 8037); the default
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
)

// SigningKey is a private key with the kid and alg it signs under.
// Private is an ed25519.PrivateKey for EdDSA or an *ecdsa.PrivateKey on
// P-256 for ES256, or any crypto.Signer (an HSM or KMS) with such a public key.
type SigningKey struct {
	ID        string
	Algorithm string
	Private   crypto.Signer
}

// PublicKey is a verification key with its kid and alg. Key is an
// ed25519.PublicKey for EdDSA or an *ecdsa.PublicKey on P-256 for ES256.
type PublicKey struct {
	ID        string
	Algorithm string
	Key       crypto.PublicKey
}

// GenerateKey returns a new private key for alg: an ed25519.PrivateKey for
// EdDSA, an *ecdsa.PrivateKey on P-256 for ES256.
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return nil, fmt.Errorf("%w: cannot generate a key for %q", ErrAlgorithm, alg)
}

// publicKeyFor checks that pub is a valid key of the type alg needs and
// returns a private copy of it, so later changes by the caller cannot reach it.
func publicKeyFor(alg string, pub crypto.PublicKey) (crypto.PublicKey, error) {
	switch alg {
	case EdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: EdDSA needs an ed25519.PublicKey, got %T", ErrAlgorithm, pub)
		}
		return append(ed25519.PublicKey(nil), k...), nil
	case ES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve != elliptic.P256() || k.X == nil || k.Y == nil {
			return nil, fmt.Errorf("%w: ES256 needs a P-256 *ecdsa.PublicKey, got %T", ErrAlgorithm, pub)
		}
		if _, err := k.ECDH(); err != nil {
			return nil, fmt.Errorf("%w: ES256 key is not a valid P-256 point", ErrAlgorithm)
		}
		return &ecdsa.PublicKey{Curve: k.Curve, X: new(big.Int).Set(k.X), Y: new(big.Int).Set(k.Y)}, nil
	}
	return nil, fmt.Errorf("%w: unsupported algorithm %q", ErrAlgorithm, alg)
}
