package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// typicalClaims is a realistic access token: the registered claims plus
// eight application claims, roles among them.
func typicalClaims() Claims {
	return Claims{
		Issuer:     testIssuer,
		Subject:    "user_2b7f4c19e8a0",
		Audience:   []string{testAudience},
		IssuedAt:   testNow.Add(-time.Minute),
		Expiry:     testNow.Add(4 * time.Minute),
		ID:         "01JH8Q5ZK3T7W9XG2M4N6P8R0S",
		SessionID:  "sess_5d1e9a7b3c2f",
		Generation: 3,
		Extra: map[string]any{
			"roles":          []string{"admin", "editor", "billing"},
			"scope":          "orders:read orders:write profile",
			"email":          "ada@example.com",
			"email_verified": true,
			"name":           "Ada Lovelace",
			"tenant":         "acme",
			"plan":           "enterprise",
			"locale":         "en-GB",
		},
	}
}

// typicalToken signs typicalClaims deterministically (RFC 6979 for ES256),
// so that fuzz worker processes agree on the seed tokens.
func typicalToken(tb testing.TB, k SigningKey) string {
	tb.Helper()
	raw, err := signWith(k, typicalClaims(), nil)
	if err != nil {
		tb.Fatalf("Sign() = %v", err)
	}
	return raw
}

// BenchmarkEd25519Verify is the floor: bare ed25519.Verify over the signing
// input of the typical token.
func BenchmarkEd25519Verify(b *testing.B) {
	keys := testKeys(b)
	raw := typicalToken(b, keys.edSigner())
	dot := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:dot])
	sig, err := b64.DecodeString(raw[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := keys.ed.Public().(ed25519.PublicKey)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("ed25519.Verify = false")
		}
	}
}

// BenchmarkES256Verify is the ES256 floor: bare ecdsa.Verify over the
// signing input of the typical token (SHA-256 included).
func BenchmarkES256Verify(b *testing.B) {
	keys := testKeys(b)
	raw := typicalToken(b, keys.ecSigner())
	dot := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:dot])
	sig, err := b64.DecodeString(raw[dot+1:])
	if err != nil {
		b.Fatal(err)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	b.ReportAllocs()
	for b.Loop() {
		digest := sha256.Sum256(input)
		if !ecdsa.Verify(&keys.ec.PublicKey, digest[:], r, s) {
			b.Fatal("ecdsa.Verify = false")
		}
	}
}

// BenchmarkTokenVerify is the full check of a new typical EdDSA token.
func BenchmarkTokenVerify(b *testing.B) {
	keys := testKeys(b)
	ks := keys.keySet(b)
	raw := typicalToken(b, keys.edSigner())
	e := testExpect()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, ks, e, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenVerifyES256(b *testing.B) {
	keys := testKeys(b)
	ks := keys.keySet(b)
	raw := typicalToken(b, keys.ecSigner())
	e := testExpect()
	e.Algorithms = []string{ES256}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(raw, ks, e, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGoJoseVerify does what a typical go-jose user would for the same
// token: parse with EdDSA allowed, verify and decode the claims, validate.
func BenchmarkGoJoseVerify(b *testing.B) {
	keys := testKeys(b)
	raw := typicalToken(b, keys.edSigner())
	pub := keys.ed.Public()
	expected := jwt.Expected{Issuer: testIssuer, AnyAudience: jwt.Audience{testAudience}, Time: testNow}
	b.ReportAllocs()
	for b.Loop() {
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA})
		if err != nil {
			b.Fatal(err)
		}
		var std jwt.Claims
		var extra map[string]any
		if err := tok.Claims(pub, &std, &extra); err != nil {
			b.Fatal(err)
		}
		if err := std.ValidateWithLeeway(expected, 30*time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	k := testKeys(b).edSigner()
	c := typicalClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(k, c); err != nil {
			b.Fatal(err)
		}
	}
}
