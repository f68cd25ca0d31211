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

// jwkFields are the members of a JWK a key is built from, as read: each
// nil unless present as a string. private is the first member of a
// private or symmetric key (RFC 7518 §6) present: a device sends only its
// public key, and a key that comes with its private half was not kept
// private.
type jwkFields struct {
	kty, crv, x, y, n, e []byte
	private              string
}

// ParseJWK reads a public JWK (a JSON object) of type OKP (Ed25519), EC
// (P-256) or RSA. Members other than the key's own are ignored; private
// members are refused. Errors wrap ErrKey or ErrMalformed.
func ParseJWK(data []byte) (Key, error) {
	var f jwkFields
	var seen memberNames
	err := strictjson.DecodeObject(data, "jwk", ErrMalformed, func(d *strictjson.Decoder, name []byte) error {
		return f.member(d, name, &seen)
	})
	if err != nil {
		return Key{}, err
	}
	return f.key()
}

// readObject reads the JWK object at d (a proof's jwk header).
func (f *jwkFields) readObject(d *strictjson.Decoder) error {
	var seen memberNames
	return d.Object(func(name []byte) error { return f.member(d, name, &seen) })
}

func (f *jwkFields) member(d *strictjson.Decoder, name []byte, seen *memberNames) error {
	if !seen.add(name) {
		return d.Errorf("duplicate member %q", name)
	}
	var dst *[]byte
	switch string(name) {
	case "kty":
		dst = &f.kty
	case "crv":
		dst = &f.crv
	case "x":
		dst = &f.x
	case "y":
		dst = &f.y
	case "n":
		dst = &f.n
	case "e":
		dst = &f.e
	default:
		if p := privateMember(name); p != "" && f.private == "" {
			f.private = p
		}
		_, err := d.Value()
		return err
	}
	s, ok, err := d.StringValue()
	if ok {
		*dst = s
	}
	return err
}

// privateMember returns name if it is a member of private or symmetric
// key material.
func privateMember(name []byte) string {
	switch string(name) {
	case "d", "p", "q", "dp", "dq", "qi", "oth", "k":
		return string(name)
	}
	return ""
}

// key builds the key the fields describe.
func (f *jwkFields) key() (Key, error) {
	if f.private != "" {
		return Key{}, fmt.Errorf("%w: jwk member %q is private key material", ErrKey, f.private)
	}
	switch string(f.kty) {
	case "OKP":
		return f.okpKey()
	case "EC":
		return f.ecKey()
	case "RSA":
		return f.rsaKey()
	case "":
		return Key{}, fmt.Errorf("%w: jwk has no kty string", ErrKey)
	}
	return Key{}, fmt.Errorf("%w: jwk kty %q is not supported", ErrKey, f.kty)
}

func (f *jwkFields) okpKey() (Key, error) {
	if string(f.crv) != "Ed25519" {
		return Key{}, fmt.Errorf("%w: OKP crv %q, want Ed25519", ErrKey, f.crv)
	}
	x, err := member(f.x, "x", ed25519.PublicKeySize)
	if err != nil {
		return Key{}, err
	}
	return newKey(ed25519.PublicKey(x), canonicalJWK(`{"crv":"Ed25519","kty":"OKP","x":"`, f.x, `"}`, nil, "")), nil
}

func (f *jwkFields) ecKey() (Key, error) {
	if string(f.crv) != "P-256" {
		return Key{}, fmt.Errorf("%w: EC crv %q, want P-256", ErrKey, f.crv)
	}
	x, err := member(f.x, "x", 32)
	if err != nil {
		return Key{}, err
	}
	y, err := member(f.y, "y", 32)
	if err != nil {
		return Key{}, err
	}
	var point [65]byte
	point[0] = 4
	copy(point[1:], x)
	copy(point[33:], y)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point[:])
	if err != nil {
		return Key{}, fmt.Errorf("%w: EC point is not on P-256", ErrKey)
	}
	return newKey(pub, canonicalJWK(`{"crv":"P-256","kty":"EC","x":"`, f.x, `","y":"`, f.y, `"}`)), nil
}

func (f *jwkFields) rsaKey() (Key, error) {
	n, err := member(f.n, "n", 0)
	if err != nil {
		return Key{}, err
	}
	e, err := member(f.e, "e", 0)
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
	return newKey(pub, canonicalJWK(`{"e":"`, f.e, `","kty":"RSA","n":"`, f.n, `"}`)), nil
}

// member decodes a base64url member; size, when not zero, is the exact
// length the decoded bytes must have.
func member(s []byte, name string, size int) ([]byte, error) {
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: jwk has no %q string", ErrKey, name)
	}
	b := make([]byte, b64.DecodedLen(len(s)))
	n, err := b64.Decode(b, s)
	if err != nil {
		return nil, fmt.Errorf("%w: jwk %q is not canonical base64url", ErrKey, name)
	}
	if size != 0 && n != size {
		return nil, fmt.Errorf("%w: jwk %q is %d bytes, want %d", ErrKey, name, n, size)
	}
	return b[:n], nil
}

// newKey makes the Key of pub whose canonical JWK is canonical.
func newKey(pub crypto.PublicKey, canonical []byte) Key {
	sum := sha256.Sum256(canonical)
	return Key{Public: pub, JSON: canonical, Thumbprint: b64.EncodeToString(sum[:])}
}

// canonicalJWK is a+x+b+y+c: a JWK's canonical JSON around its members as
// read (strict base64url decoding has shown them canonical), in one
// allocation.
func canonicalJWK(a string, x []byte, b string, y []byte, c string) []byte {
	out := make([]byte, 0, len(a)+len(x)+len(b)+len(y)+len(c))
	out = append(append(append(append(append(out, a...), x...), b...), y...), c...)
	return out
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
