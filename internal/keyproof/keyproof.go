package keyproof

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"

	"github.com/tegata-dev/tegata/internal/strictjson"
)

// Algorithms a proof may be signed with. Ed25519 is the fully specified
// name of EdDSA over Ed25519 (RFC 9864); both are accepted when EdDSA is.
const (
	EdDSA   = "EdDSA"
	Ed25519 = "Ed25519"
	ES256   = "ES256"
	RS256   = "RS256"
)

// DefaultAlgorithms are accepted when Expect.Algorithms is nil. RS256 is
// for callers that must accept it (a browser's DBSC key may be RSA).
var DefaultAlgorithms = []string{ES256, EdDSA}

// DefaultMaxSize bounds a proof when Expect.MaxSize is zero: an RSA-4096
// key in the header and a signature of the same size fit well within it.
const DefaultMaxSize = 8192

// Expect is what a proof must be.
type Expect struct {
	// Type is the typ the header must carry (e.g. "dpop+jwt"), compared as
	// media types are: case-insensitively, with or without "application/".
	Type string
	// Algorithms allowed; nil means DefaultAlgorithms. EdDSA also allows
	// its fully specified name Ed25519.
	Algorithms []string
	// Key, when set, is the key the proof must be signed with (a DBSC
	// refresh proof, signed by the key registered before): a jwk header
	// is then optional and must be this key if present. Without Key, the
	// jwk header is required and is the key.
	Key *Key
	// MaxSize in bytes; zero means DefaultMaxSize.
	MaxSize int
}

// Proof is a verified proof.
type Proof struct {
	Algorithm string
	Key       Key
	// Header and Claims are the header and payload, strictly decoded (no
	// member twice, valid UTF-8), as encoding/json decodes into an any.
	Header map[string]any
	Claims map[string]any
}

// refusedParams are header parameters a proof must not carry: other ways
// of naming a key (URLs and certificates, never fetched or trusted), or
// parameters changing what is signed and how.
var refusedParams = map[string]string{
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

// Parse verifies raw, a JWS in compact serialization, as e says, and
// returns what it proves. The checks run cheapest first; the signature is
// checked before the payload is read.
func Parse(raw string, e Expect) (*Proof, error) {
	if limit := cmpOr(e.MaxSize, DefaultMaxSize); len(raw) > limit {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	h64, p64, s64, err := split(raw)
	if err != nil {
		return nil, err
	}
	header, err := decodeJSON(h64, "header")
	if err != nil {
		return nil, err
	}
	alg, key, err := checkHeader(header, e)
	if err != nil {
		return nil, err
	}
	sig, err := b64.DecodeString(s64)
	if err != nil || len(sig) == 0 {
		return nil, fmt.Errorf("%w: signature segment is not canonical base64url", ErrMalformed)
	}
	if err := verify(alg, key, raw[:len(h64)+1+len(p64)], sig); err != nil {
		return nil, err
	}
	claims, err := decodeJSON(p64, "payload")
	if err != nil {
		return nil, err
	}
	return &Proof{Algorithm: alg, Key: key, Header: header, Claims: claims}, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// base64url marks the bytes of the unpadded base64url alphabet.
var base64url = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") {
		t[c] = true
	}
	return t
}()

// split cuts raw into its three segments, refusing a JWE (five) and empty
// header or payload segments.
func split(raw string) (h, p, s string, err error) {
	// encoding/base64 skips '\r' and '\n': refuse them, and anything else
	// outside the alphabet, before decoding, so a proof has one spelling.
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; c != '.' && !base64url[c] {
			return "", "", "", fmt.Errorf("%w: byte %#02x at offset %d is not base64url", ErrMalformed, c, i)
		}
	}
	parts := strings.Split(raw, ".")
	switch {
	case len(parts) == 5:
		return "", "", "", fmt.Errorf("%w: 5 segments: JWE is not accepted", ErrMalformed)
	case len(parts) != 3:
		return "", "", "", fmt.Errorf("%w: want 3 segments, got %d", ErrMalformed, len(parts))
	case parts[0] == "" || parts[1] == "":
		return "", "", "", fmt.Errorf("%w: empty header or payload segment", ErrMalformed)
	}
	return parts[0], parts[1], parts[2], nil
}

// decodeJSON decodes a segment holding one strict JSON object.
func decodeJSON(seg, part string) (map[string]any, error) {
	data, err := b64.DecodeString(seg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s segment is not canonical base64url", ErrMalformed, part)
	}
	return strictjson.DecodeObjectValue(data, part, ErrMalformed)
}

// checkHeader applies the algorithm allow-list, the refused parameters and
// typ, and finds the key, which must suit the algorithm.
func checkHeader(h map[string]any, e Expect) (string, Key, error) {
	alg, err := algorithm(h, e.Algorithms)
	if err != nil {
		return "", Key{}, err
	}
	for name, why := range refusedParams {
		if _, ok := h[name]; ok {
			return "", Key{}, fmt.Errorf("%w: parameter %q %s", ErrHeader, name, why)
		}
	}
	if err := checkType(h, e.Type); err != nil {
		return "", Key{}, err
	}
	key, err := headerKey(h, e.Key)
	if err != nil {
		return "", Key{}, err
	}
	if !key.suits(alg) {
		return "", Key{}, fmt.Errorf("%w: alg %s does not suit the key", ErrAlgorithm, alg)
	}
	return alg, key, nil
}

func algorithm(h map[string]any, allowed []string) (string, error) {
	alg, ok := h["alg"].(string)
	switch {
	case !ok:
		return "", fmt.Errorf("%w: header has no alg string", ErrAlgorithm)
	case strings.EqualFold(alg, "none"):
		return "", fmt.Errorf("%w: alg %q: unsigned proofs are never accepted", ErrAlgorithm, alg)
	}
	if allowed == nil {
		allowed = DefaultAlgorithms
	}
	for _, a := range allowed {
		if a == alg || (a == EdDSA && alg == Ed25519) {
			switch alg {
			case EdDSA, Ed25519, ES256, RS256:
				return alg, nil
			}
		}
	}
	return "", fmt.Errorf("%w: alg %q is not allowed", ErrAlgorithm, alg)
}

func checkType(h map[string]any, want string) error {
	typ, ok := h["typ"].(string)
	if !ok {
		return fmt.Errorf("%w: header has no typ string, want %q", ErrType, want)
	}
	if want == "" || !(strings.EqualFold(typ, want) || strings.EqualFold(typ, "application/"+want)) {
		return fmt.Errorf("%w: typ %q, want %q", ErrType, typ, want)
	}
	return nil
}

// headerKey returns the key the proof is to be verified with: the jwk
// header's, or the caller's (which a jwk header present must match).
func headerKey(h map[string]any, known *Key) (Key, error) {
	raw, present := h["jwk"]
	if !present {
		if known == nil {
			return Key{}, fmt.Errorf("%w: header has no jwk", ErrKey)
		}
		return *known, nil
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return Key{}, fmt.Errorf("%w: header jwk is not an object", ErrKey)
	}
	key, err := keyFromMap(m)
	if err != nil {
		return Key{}, err
	}
	if known != nil && key.Thumbprint != known.Thumbprint {
		return Key{}, fmt.Errorf("%w: header jwk is not the key expected", ErrKey)
	}
	return key, nil
}

// verify checks sig over input. ECDSA signatures are accepted in high-S
// form too: WebCrypto, which signs most browser and Node proofs, emits
// either, and a proof's uniqueness rests on its jti, not its bytes.
func verify(alg string, key Key, input string, sig []byte) error {
	switch pub := key.Public.(type) {
	case ed25519.PublicKey:
		if len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, []byte(input), sig) {
			return nil
		}
	case *ecdsa.PublicKey:
		digest := sha256.Sum256([]byte(input))
		if len(sig) == 64 && ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil
		}
	case *rsa.PublicKey:
		digest := sha256.Sum256([]byte(input))
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %s signature does not verify", ErrSignature, alg)
}
