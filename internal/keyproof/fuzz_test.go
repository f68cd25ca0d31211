package keyproof

import (
	"errors"
	"testing"
)

// FuzzParse must never panic, must fail only with the package's sentinels,
// and must accept nothing but proofs that were signed: a proof it accepts
// must verify under the key it reports, and its thumbprint must be that of
// the canonical JWK it reports.
func FuzzParse(f *testing.F) {
	cases := loadCorpus(f)
	genuine := map[string]bool{}
	for _, c := range cases {
		f.Add(c.Proof, c.RS256)
		if c.Want == "" {
			genuine[c.Proof] = true
		}
	}
	f.Fuzz(func(t *testing.T, raw string, rs256 bool) {
		e := corpusCase{RS256: rs256}.expect()
		var cl testClaims
		p, err := Parse(raw, e, cl.read)
		if err != nil {
			if sentinelName(err) == "" {
				t.Fatalf("Parse(%q) = %v, which wraps no sentinel", raw, err)
			}
			return
		}
		if !genuine[raw] {
			// ECDSA signatures have a high-S twin and base64url has no
			// other spelling; anything else accepted is a forgery.
			if !isECDSATwin(raw, cases) {
				t.Fatalf("Parse(%q) accepted a proof that was never signed", raw)
			}
		}
		again, err := ParseJWK(p.Key.JSON)
		if err != nil || again.Thumbprint != p.Key.Thumbprint || thumbprint(string(p.Key.JSON)) != p.Key.Thumbprint {
			t.Fatalf("Parse(%q).Key = %s %s, which does not round trip: %v", raw, p.Key.JSON, p.Key.Thumbprint, errors.Unwrap(err))
		}
	})
}

// isECDSATwin reports whether raw is a genuine ES256 proof with another
// valid signature over the same input (its high-S twin).
func isECDSATwin(raw string, cases []corpusCase) bool {
	for _, c := range cases {
		if c.Want != "" || len(c.Proof) != len(raw) {
			continue
		}
		i := len(raw) - 86 // 64 signature bytes as unpadded base64url
		if i > 0 && c.Proof[:i] == raw[:i] {
			return true
		}
	}
	return false
}
