package token

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// lookupFunc is a KeyLookup backed by a function, for lookups that return
// something a KeySet never would.
type lookupFunc func(kid string) (PublicKey, bool)

func (f lookupFunc) Lookup(kid string) (PublicKey, bool) { return f(kid) }

func TestVerifyExpect(t *testing.T) {
	keys := testKeys(t)
	ks := keys.keySet(t)
	raw, err := Sign(keys.edSigner(), sampleClaims()) // exp testNow+4m, iat testNow-1m
	if err != nil {
		t.Fatal(err)
	}
	exp := testNow.Add(4 * time.Minute)
	with := func(f func(*Expect)) Expect {
		e := testExpect()
		f(&e)
		return e
	}
	tests := []struct {
		name string
		keys KeyLookup
		e    Expect
		now  time.Time
		want error
	}{
		{"valid", ks, testExpect(), testNow, nil},
		{"exactly at exp", ks, with(func(e *Expect) { e.Leeway = 0 }), exp, nil},
		{"one second after exp", ks, with(func(e *Expect) { e.Leeway = 0 }), exp.Add(time.Second), ErrExpired},
		{"after exp within leeway", ks, testExpect(), exp.Add(30 * time.Second), nil},
		{"iat just ahead within leeway", ks, testExpect(), testNow.Add(-90 * time.Second), nil},
		{"iat ahead without leeway", ks, with(func(e *Expect) { e.Leeway = 0 }), testNow.Add(-90 * time.Second), ErrNotYetValid},
		{"max lifetime shorter than the token", ks, with(func(e *Expect) { e.MaxLifetime, e.Leeway = 3*time.Minute, 0 }), testNow, ErrClaims},
		{"max lifetime zero disables the check", ks, with(func(e *Expect) { e.MaxLifetime = 0 }), testNow, nil},
		{"empty Issuer rejects everything", ks, with(func(e *Expect) { e.Issuer = "" }), testNow, ErrIssuer},
		{"empty Audience skips the aud check", ks, with(func(e *Expect) { e.Audience = "" }), testNow, nil},
		{"other audience", ks, with(func(e *Expect) { e.Audience = "other.example" }), testNow, ErrAudience},
		{"empty Algorithms means EdDSA", ks, with(func(e *Expect) { e.Algorithms = []string{} }), testNow, nil},
		{"only ES256 allowed", ks, with(func(e *Expect) { e.Algorithms = []string{ES256} }), testNow, ErrAlgorithm},
		{"HS256 in Algorithms changes nothing", ks, with(func(e *Expect) { e.Algorithms = []string{"HS256"} }), testNow, ErrAlgorithm},
		{"MaxSize below the token", ks, with(func(e *Expect) { e.MaxSize = len(raw) - 1 }), testNow, ErrTooLarge},
		{"MaxSize equal to the token", ks, with(func(e *Expect) { e.MaxSize = len(raw) }), testNow, nil},
		{"nil key lookup", nil, testExpect(), testNow, ErrUnknownKey},
		{"nil key set", (*KeySet)(nil), testExpect(), testNow, ErrUnknownKey},
		{"lookup returns a P-256 key labelled EdDSA", lookupFunc(func(string) (PublicKey, bool) {
			return PublicKey{ID: testEdKID, Algorithm: EdDSA, Key: keys.ec.Public()}, true
		}), testExpect(), testNow, ErrAlgorithm},
		{"lookup returns a short Ed25519 key", lookupFunc(func(string) (PublicKey, bool) {
			return PublicKey{ID: testEdKID, Algorithm: EdDSA, Key: keys.ed.Public().(ed25519.PublicKey)[:8]}, true
		}), testExpect(), testNow, ErrAlgorithm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(raw, tt.keys, tt.e, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Verify(%.40q) = %v, want %v", raw, err, tt.want)
			}
		})
	}
}

func TestVerifyErrorsArePrefixed(t *testing.T) {
	keys := testKeys(t).keySet(t)
	for _, c := range loadCorpus(t) {
		_, err := Verify(c.Token, keys, c.expect(), testNow)
		if err != nil && !strings.HasPrefix(err.Error(), "token: ") {
			t.Errorf("Verify(%s) = %q, want a \"token: \" prefix", c.Name, err)
		}
	}
}

func TestInspect(t *testing.T) {
	keys := testKeys(t)
	raw, err := Sign(keys.edSigner(), sampleClaims())
	if err != nil {
		t.Fatal(err)
	}
	h, p, err := Inspect(raw)
	if err != nil {
		t.Fatalf("Inspect(%q) = %v", raw, err)
	}
	if h["kid"] != testEdKID || p["sub"] != "user-42" || p["sgen"] != float64(7) {
		t.Errorf("Inspect(%q) = %v, %v, want the signed header and claims", raw, h, p)
	}
	cases := map[string]corpusCase{}
	for _, c := range loadCorpus(t) {
		cases[c.Name] = c
	}
	tests := []struct {
		name string
		want error
	}{
		{"alg_none", nil}, // not verified: Inspect shows what any token says
		{"exp_expired", nil},
		{"sig_moved_to_changed_payload", nil},
		{"too_large", ErrTooLarge},
		{"sig_padding", ErrMalformed},
		{"sig_trailing_bits", ErrMalformed},
		{"segments_5_jwe", ErrMalformed},
		{"payload_duplicate_sub", ErrMalformed},
		{"header_duplicate_alg", ErrMalformed},
		{"payload_array", ErrMalformed},
		{"payload_nesting_33", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := cases[tt.name]
			if !ok {
				t.Fatalf("no corpus case %q", tt.name)
			}
			_, _, err := Inspect(c.Token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Inspect(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}
