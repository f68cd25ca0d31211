package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleClaims() Claims {
	return Claims{
		Issuer:     testIssuer,
		Subject:    "user-42",
		Audience:   []string{testAudience},
		IssuedAt:   testNow.Add(-time.Minute),
		Expiry:     testNow.Add(4 * time.Minute),
		ID:         "tok-1",
		SessionID:  "sess-1",
		Generation: 7,
		Extra: map[string]any{
			"roles":  []any{"admin", "editor"},
			"scope":  "read write",
			"quota":  float64(12.5),
			"admin":  true,
			"org":    map[string]any{"id": "org-1", "tier": float64(2)},
			"nick":   "\"quoted\" \\ \u00e9\u2028 <tag> \x01",
			"absent": nil,
		},
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	keys := testKeys(t)
	ks := keys.keySet(t)
	multiAud := sampleClaims()
	multiAud.Audience = []string{"a.example", testAudience}
	multiAud.NotBefore = testNow.Add(-time.Second)
	noExtra := sampleClaims()
	noExtra.Extra = nil
	noExtra.Generation = 0
	tests := []struct {
		name   string
		key    SigningKey
		claims Claims
	}{
		{"eddsa", keys.edSigner(), sampleClaims()},
		{"es256", keys.ecSigner(), sampleClaims()},
		{"eddsa multiple audiences and nbf", keys.edSigner(), multiAud},
		{"es256 no extra claims", keys.ecSigner(), noExtra},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Sign(tt.key, tt.claims)
			if err != nil {
				t.Fatalf("Sign() = %v", err)
			}
			e := testExpect()
			e.Algorithms = bothAlgs
			got, err := Verify(raw, ks, e, testNow)
			if err != nil {
				t.Fatalf("Verify(%q) = %v, want nil", raw, err)
			}
			if want := tt.claims; !reflect.DeepEqual(*got, want) {
				t.Errorf("Verify(%q) = %+v, want %+v", raw, *got, want)
			}
		})
	}
}

func TestSignHeaderIsExact(t *testing.T) {
	keys := testKeys(t)
	for _, k := range []SigningKey{keys.edSigner(), keys.ecSigner()} {
		raw, err := Sign(k, sampleClaims())
		if err != nil {
			t.Fatalf("Sign() = %v", err)
		}
		h, _, err := Inspect(raw)
		if err != nil {
			t.Fatalf("Inspect(%q) = %v", raw, err)
		}
		want := map[string]any{"alg": k.Algorithm, "typ": "at+jwt", "kid": k.ID}
		if !reflect.DeepEqual(h, want) {
			t.Errorf("Inspect(%q) header = %v, want %v", raw, h, want)
		}
	}
}

// TestSignLowS signs many times so that about half the raw ECDSA signatures
// come out high-S and must be normalised for Verify to accept them.
func TestSignLowS(t *testing.T) {
	keys := testKeys(t)
	ks := keys.keySet(t)
	e := testExpect()
	e.Algorithms = []string{ES256}
	for i := range 32 {
		raw, err := Sign(keys.ecSigner(), sampleClaims())
		if err != nil {
			t.Fatalf("Sign() = %v", err)
		}
		if _, err := Verify(raw, ks, e, testNow); err != nil {
			t.Fatalf("round %d: Verify(%q) = %v, want nil", i, raw, err)
		}
	}
}

func TestSignRejects(t *testing.T) {
	keys := testKeys(t)
	with := func(f func(*Claims)) Claims {
		c := sampleClaims()
		f(&c)
		return c
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    SigningKey
		claims Claims
		want   error
	}{
		{"reserved sub in Extra", keys.edSigner(), with(func(c *Claims) { c.Extra["sub"] = "root" }), ErrClaims},
		{"reserved sgen in Extra", keys.edSigner(), with(func(c *Claims) { c.Extra["sgen"] = 0 }), ErrClaims},
		{"reserved cnf in Extra", keys.edSigner(), with(func(c *Claims) { c.Extra["cnf"] = map[string]any{} }), ErrClaims},
		{"missing issuer", keys.edSigner(), with(func(c *Claims) { c.Issuer = "" }), ErrClaims},
		{"missing subject", keys.edSigner(), with(func(c *Claims) { c.Subject = "" }), ErrClaims},
		{"missing session", keys.edSigner(), with(func(c *Claims) { c.SessionID = "" }), ErrClaims},
		{"missing jti", keys.edSigner(), with(func(c *Claims) { c.ID = "" }), ErrClaims},
		{"missing exp", keys.edSigner(), with(func(c *Claims) { c.Expiry = time.Time{} }), ErrClaims},
		{"missing iat", keys.edSigner(), with(func(c *Claims) { c.IssuedAt = time.Time{} }), ErrClaims},
		{"negative generation", keys.edSigner(), with(func(c *Claims) { c.Generation = -1 }), ErrClaims},
		{"invalid UTF-8 subject", keys.edSigner(), with(func(c *Claims) { c.Subject = "\xff" }), ErrClaims},
		{"unencodable extra", keys.edSigner(), with(func(c *Claims) { c.Extra["f"] = math.Inf(1) }), ErrClaims},
		{"extra too deep", keys.edSigner(), with(func(c *Claims) { c.Extra["d"] = deepValue(40) }), ErrClaims},
		{"unsupported alg", SigningKey{ID: "k", Algorithm: "HS256", Private: keys.ed}, sampleClaims(), ErrAlgorithm},
		{"ed25519 key for ES256", SigningKey{ID: "k", Algorithm: ES256, Private: keys.ed}, sampleClaims(), ErrAlgorithm},
		{"P-384 key for ES256", SigningKey{ID: "k", Algorithm: ES256, Private: p384}, sampleClaims(), ErrAlgorithm},
		{"P-256 key for EdDSA", SigningKey{ID: "k", Algorithm: EdDSA, Private: keys.ec}, sampleClaims(), ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Sign(tt.key, tt.claims)
			if !errors.Is(err, tt.want) {
				t.Errorf("Sign() = %q, %v, want %v", raw, err, tt.want)
			}
		})
	}
	for _, k := range []SigningKey{{Algorithm: EdDSA, Private: keys.ed}, {ID: "k", Algorithm: EdDSA}} {
		if raw, err := Sign(k, sampleClaims()); err == nil {
			t.Errorf("Sign(%+v) = %q, nil, want an error", k, raw)
		}
	}
}

func deepValue(depth int) any {
	var v any = "leaf"
	for range depth {
		v = []any{v}
	}
	return v
}

func TestGenerateKey(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		priv, err := GenerateKey(alg)
		if err != nil {
			t.Fatalf("GenerateKey(%q) = %v", alg, err)
		}
		ks, err := NewKeySet(PublicKey{ID: "k", Algorithm: alg, Key: priv.Public()})
		if err != nil {
			t.Fatalf("NewKeySet(%s key) = %v", alg, err)
		}
		raw, err := Sign(SigningKey{ID: "k", Algorithm: alg, Private: priv}, sampleClaims())
		if err != nil {
			t.Fatalf("Sign(%s) = %v", alg, err)
		}
		e := testExpect()
		e.Algorithms = []string{alg}
		if _, err := Verify(raw, ks, e, testNow); err != nil {
			t.Errorf("Verify(%q) = %v, want nil", raw, err)
		}
	}
	if _, err := GenerateKey("RS256"); !errors.Is(err, ErrAlgorithm) {
		t.Errorf("GenerateKey(RS256) = %v, want %v", err, ErrAlgorithm)
	}
}

// signerFunc is a crypto.Signer standing in for an HSM or KMS.
type signerFunc struct {
	pub  crypto.PublicKey
	sign func(digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

func (s signerFunc) Public() crypto.PublicKey { return s.pub }

func (s signerFunc) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.sign(digest, opts)
}

func TestSignWithOpaqueSigner(t *testing.T) {
	keys := testKeys(t)
	opaque := signerFunc{pub: keys.ed.Public(), sign: func(msg []byte, _ crypto.SignerOpts) ([]byte, error) {
		return ed25519.Sign(keys.ed, msg), nil
	}}
	raw, err := Sign(SigningKey{ID: testEdKID, Algorithm: EdDSA, Private: opaque}, sampleClaims())
	if err != nil {
		t.Fatalf("Sign() = %v", err)
	}
	if _, err := Verify(raw, keys.keySet(t), testExpect(), testNow); err != nil {
		t.Errorf("Verify(%q) = %v, want nil", raw, err)
	}
	broken := signerFunc{pub: keys.ec.Public(), sign: func([]byte, crypto.SignerOpts) ([]byte, error) {
		return []byte("not DER"), nil
	}}
	if raw, err := Sign(SigningKey{ID: testECKID, Algorithm: ES256, Private: broken}, sampleClaims()); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("Sign(broken signer) = %q, %v, want a malformed-signature error", raw, err)
	}
}
