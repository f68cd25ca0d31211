package token

import (
	"errors"
	"testing"
	"time"
)

// TestBoundTokens pins cnf.jkt: Sign mints it, Verify returns it only to
// a caller that says it checks proofs (Expect.Bound), and every other
// shape of cnf is refused.
func TestBoundTokens(t *testing.T) {
	keys := testKeys(t)
	ks := keys.keySet(t)
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiGuA4I"
	c := Claims{Issuer: testIssuer, Subject: "alice", Audience: []string{testAudience},
		IssuedAt: testNow, Expiry: testNow.Add(time.Minute), ID: "j", SessionID: "s", JKT: jkt}
	raw, err := Sign(keys.edSigner(), c)
	if err != nil {
		t.Fatalf("Sign(JKT) = %v", err)
	}
	bound := testExpect()
	bound.Bound = true
	got, err := Verify(raw, ks, bound, testNow)
	if err != nil || got.JKT != jkt {
		t.Fatalf("Verify(bound token, Bound) = %+v, %v; want JKT %s", got, err, jkt)
	}
	if _, err := Verify(raw, ks, testExpect(), testNow); !errors.Is(err, ErrClaims) {
		t.Errorf("Verify(bound token, not Bound) = %v, want ErrClaims", err)
	}
	c.JKT = "short"
	if _, err := Sign(keys.edSigner(), c); !errors.Is(err, ErrClaims) {
		t.Errorf("Sign(JKT %q) = %v, want ErrClaims", c.JKT, err)
	}
	p := basePayload()
	for name, cnf := range map[string]string{
		"jwk member":     `{"jwk":{"kty":"OKP"}}`,
		"jkt and jwk":    `{"jkt":"` + jkt + `","jwk":{}}`,
		"jkt too short":  `{"jkt":"abc"}`,
		"jkt padded":     `{"jkt":"` + jkt[:42] + `="}`,
		"jkt not string": `{"jkt":1}`,
		"not an object":  `"` + jkt + `"`,
		"empty":          `{}`,
	} {
		raw := signRaw(t, keys.edSigner(), headerFor(EdDSA, testEdKID).json(), p.set("cnf", cnf).json())
		if _, err := Verify(raw, ks, bound, testNow); !errors.Is(err, ErrClaims) {
			t.Errorf("Verify(cnf %s) = %v, want ErrClaims", name, err)
		}
	}
}
