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
}

// ClaimReader reads a proof's payload one member at a time, as Parse
// meets them: it must consume the member's value with d (d.StringValue,
// d.NumberValue, d.Value, ...) and return only d's errors, keeping what it
// needs; what the claims mean is the caller's to judge once Parse has
// returned. Parse refuses a member twice before calling it. Names and
// strings read are valid only until Parse returns.
type ClaimReader func(d *strictjson.Decoder, name []byte) error

// Parse verifies raw, a JWS in compact serialization, as e says, and
// returns what it proves; claims reads the payload (nil: it is checked
// and dropped). The checks run cheapest first; the signature is checked
// before the payload is read, and the payload is read strictly (one JSON
// object, valid UTF-8, no member twice at any depth).
func Parse(raw string, e Expect, claims ClaimReader) (Proof, error) {
	if limit := cmpOr(e.MaxSize, DefaultMaxSize); len(raw) > limit {
		return Proof{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), limit)
	}
	h64, p64, s64, err := split(raw)
	if err != nil {
		return Proof{}, err
	}
	// One buffer for everything decoded: the signing input, as the
	// signature functions want bytes, then the three segments.
	signed := len(h64) + 1 + len(p64)
	buf := make([]byte, signed, signed+b64.DecodedLen(len(h64))+b64.DecodedLen(len(p64))+b64.DecodedLen(len(s64)))
	copy(buf, raw)
	input := buf
	hdr, rest, err := decodeSegment(buf, h64, "header")
	if err != nil {
		return Proof{}, err
	}
	h, err := readHeader(hdr)
	if err != nil {
		return Proof{}, err
	}
	alg, key, err := h.check(e)
	if err != nil {
		return Proof{}, err
	}
	sig, rest, err := decodeSegment(rest, s64, "signature")
	if err != nil || len(sig) == 0 {
		return Proof{}, fmt.Errorf("%w: signature segment is not canonical base64url", ErrMalformed)
	}
	if err := verify(alg, key, input, sig); err != nil {
		return Proof{}, err
	}
	payload, _, err := decodeSegment(rest, p64, "payload")
	if err != nil {
		return Proof{}, err
	}
	if err := readClaims(payload, claims); err != nil {
		return Proof{}, err
	}
	return Proof{Algorithm: alg, Key: key}, nil
}

func cmpOr(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// split cuts raw into its three segments, refusing a JWE (five) and empty
// header or payload segments.
func split(raw string) (h, p, s string, err error) {
	// encoding/base64 skips '\r' and '\n': refuse them before decoding,
	// so a proof has one spelling (strict decoding refuses any other byte
	// outside the alphabet).
	if i := strings.IndexByte(raw, '\n'); i >= 0 {
		return "", "", "", fmt.Errorf("%w: newline at offset %d", ErrMalformed, i)
	}
	if i := strings.IndexByte(raw, '\r'); i >= 0 {
		return "", "", "", fmt.Errorf("%w: carriage return at offset %d", ErrMalformed, i)
	}
	dots := strings.Count(raw, ".")
	switch {
	case dots == 4:
		return "", "", "", fmt.Errorf("%w: 5 segments: JWE is not accepted", ErrMalformed)
	case dots != 2:
		return "", "", "", fmt.Errorf("%w: want 3 segments, got %d", ErrMalformed, dots+1)
	}
	h, rest, _ := strings.Cut(raw, ".")
	p, s, _ = strings.Cut(rest, ".")
	if h == "" || p == "" {
		return "", "", "", fmt.Errorf("%w: empty header or payload segment", ErrMalformed)
	}
	return h, p, s, nil
}

// decodeSegment decodes seg into the room after buf's length, and returns
// it and what is left of that room.
func decodeSegment(buf []byte, seg, part string) (decoded, rest []byte, err error) {
	room := buf[len(buf):cap(buf)]
	n, err := b64.Decode(room, []byte(seg))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s segment is not canonical base64url", ErrMalformed, part)
	}
	return room[:n:n], room[n:n], nil
}

// readClaims reads the payload JSON, handing each member to claims once.
func readClaims(payload []byte, claims ClaimReader) error {
	var seen memberNames
	return strictjson.DecodeObject(payload, "payload", ErrMalformed, func(d *strictjson.Decoder, name []byte) error {
		if !seen.add(name) {
			return d.Errorf("duplicate member %q", name)
		}
		if claims == nil {
			_, err := d.Value()
			return err
		}
		return claims(d, name)
	})
}

// verify checks sig over input. ECDSA signatures are accepted in high-S
// form too: WebCrypto, which signs most browser and Node proofs, emits
// either, and a proof's uniqueness rests on its jti, not its bytes.
func verify(alg string, key Key, input, sig []byte) error {
	switch pub := key.Public.(type) {
	case ed25519.PublicKey:
		if len(sig) == ed25519.SignatureSize && ed25519.Verify(pub, input, sig) {
			return nil
		}
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(input)
		if len(sig) == 64 && ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
			return nil
		}
	case *rsa.PublicKey:
		digest := sha256.Sum256(input)
		if rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig) == nil {
			return nil
		}
	}
	return fmt.Errorf("%w: %s signature does not verify", ErrSignature, alg)
}
