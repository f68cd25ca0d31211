package keyproof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// Key is a public key proven (or to be proven) by a device.
type Key struct {
	// Public is an ed25519.PublicKey, a P-256 *ecdsa.PublicKey or an
	// *rsa.PublicKey.
	Public crypto.PublicKey
	// JSON is the key as a public JWK holding only the members RFC 7638
	// hashes, in its canonical form: what a store keeps to check later
	// proofs, and what the thumbprint is the SHA-256 of.
	JSON []byte
	// Thumbprint is the RFC 7638 SHA-256 thumbprint, base64url without
	// padding: DPoP's jkt.
	Thumbprint string
}

// Key sizes accepted for RSA: below 2048 bits is breakable, above 8192
// costs a verifier more than a proof is worth.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

var b64 = base64.RawURLEncoding.Strict()

// privateMembers are the JWK members of private and symmetric keys (RFC
// 7518 §6): a device sends only its public key, and a key that comes with
// its private half was not kept private.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// ParseJWK reads a public JWK (a JSON object) of type OKP (Ed25519), EC
// (P-256) or RSA. Members other than the key's own are ignored; private
// members are refused. Errors wrap ErrKey or ErrMalformed.
func ParseJWK(data []byte) (Key, error) {
	m, err := strictjson.DecodeObjectValue(data, "jwk", ErrMalformed)
	if err != nil {
		return Key{}, err
	}
	return keyFromMap(m)
}

// keyFromMap reads a JWK decoded by strictjson.
func keyFromMap(m map[string]any) (Key, error) {
	for _, name := range privateMembers {
		if _, ok := m[name]; ok {
			return Key{}, fmt.Errorf("%w: jwk member %q is private key material", ErrKey, name)
		}
	}
	kty, _ := m["kty"].(string)
	switch kty {
	case "OKP":
		return okpKey(m)
	case "EC":
		return ecKey(m)
	case "RSA":
		return rsaKey(m)
	case "":
		return Key{}, fmt.Errorf("%w: jwk has no kty string", ErrKey)
	}
	return Key{}, fmt.Errorf("%w: jwk kty %q is not supported", ErrKey, kty)
}

func okpKey(m map[string]any) (Key, error) {
	if crv, _ := m["crv"].(string); crv != "Ed25519" {
		return Key{}, fmt.Errorf("%w: OKP crv %q, want Ed25519", ErrKey, crv)
	}
	x, err := member(m, "x", ed25519.PublicKeySize)
	if err != nil {
		return Key{}, err
	}
	return newKey(ed25519.PublicKey(x), `{"crv":"Ed25519","kty":"OKP","x":"`+b64.EncodeToString(x)+`"}`), nil
}

func ecKey(m map[string]any) (Key, error) {
	if crv, _ := m["crv"].(string); crv != "P-256" {
		return Key{}, fmt.Errorf("%w: EC crv %q, want P-256", ErrKey, crv)
	}
	x, err := member(m, "x", 32)
	if err != nil {
		return Key{}, err
	}
	y, err := member(m, "y", 32)
	if err != nil {
		return Key{}, err
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return Key{}, fmt.Errorf("%w: EC point is not on P-256", ErrKey)
	}
	return newKey(pub, `{"crv":"P-256","kty":"EC","x":"`+b64.EncodeToString(x)+`","y":"`+b64.EncodeToString(y)+`"}`), nil
}

func rsaKey(m map[string]any) (Key, error) {
	n, err := member(m, "n", 0)
	if err != nil {
		return Key{}, err
	}
	e, err := member(m, "e", 0)
	if err != nil {
		return Key{}, err
	}
	// Leading zero octets would give one key two spellings (RFC 7518 §6.3.1).
	if n[0] == 0 || e[0] == 0 {
		return Key{}, fmt.Errorf("%w: RSA n or e has a leading zero octet", ErrKey)
	}
	bits := new(big.Int).SetBytes(n).BitLen()
	if bits < minRSABits || bits > maxRSABits {
		return Key{}, fmt.Errorf("%w: RSA modulus of %d bits, want %d to %d", ErrKey, bits, minRSABits, maxRSABits)
	}
	if len(e) > 4 || e[len(e)-1]&1 == 0 {
		return Key{}, fmt.Errorf("%w: RSA exponent must be odd and below 2^31", ErrKey)
	}
	exp := int(new(big.Int).SetBytes(e).Int64())
	if exp < 3 || exp > 1<<31-1 {
		return Key{}, fmt.Errorf("%w: RSA exponent must be odd, from 3 to 2^31-1", ErrKey)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	return newKey(pub, `{"e":"`+b64.EncodeToString(e)+`","kty":"RSA","n":"`+b64.EncodeToString(n)+`"}`), nil
}

// member decodes a base64url member; size, when not zero, is the exact
// length the decoded bytes must have.
func member(m map[string]any, name string, size int) ([]byte, error) {
	s, ok := m[name].(string)
	if !ok || s == "" {
		return nil, fmt.Errorf("%w: jwk has no %q string", ErrKey, name)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: jwk %q is not canonical base64url", ErrKey, name)
	}
	if size != 0 && len(b) != size {
		return nil, fmt.Errorf("%w: jwk %q is %d bytes, want %d", ErrKey, name, len(b), size)
	}
	return b, nil
}

func newKey(pub crypto.PublicKey, canonical string) Key {
	sum := sha256.Sum256([]byte(canonical))
	return Key{Public: pub, JSON: []byte(canonical), Thumbprint: b64.EncodeToString(sum[:])}
}

// suits reports whether k can verify signatures of alg.
func (k Key) suits(alg string) bool {
	switch pub := k.Public.(type) {
	case ed25519.PublicKey:
		return alg == EdDSA || alg == Ed25519
	case *ecdsa.PublicKey:
		return alg == ES256 && pub.Curve == elliptic.P256()
	case *rsa.PublicKey:
		return alg == RS256
	}
	return false
}
