package token

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzVerify must never panic, must fail only with the package's sentinels,
// and must accept nothing but the genuine seeds: signatures cannot be forged
// and each signed token has exactly one accepted spelling (canonical
// base64url, strict JSON, low-S ECDSA), so any other accepted string is a bug.
func FuzzVerify(f *testing.F) {
	keys := testKeys(f)
	ks := keys.keySet(f)
	e := testExpect()
	e.Algorithms = bothAlgs
	seeds := []string{typicalToken(f, keys.edSigner()), typicalToken(f, keys.ecSigner())}
	for _, c := range loadCorpus(f) {
		seeds = append(seeds, c.Token)
	}
	genuine := map[string]*Claims{}
	for _, raw := range seeds {
		f.Add(raw)
		if c, err := Verify(raw, ks, e, testNow); err == nil {
			genuine[raw] = c
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		_, _, _ = Inspect(raw)
		c, err := Verify(raw, ks, e, testNow)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("Verify(%q) = %v, which wraps no sentinel", raw, err)
			}
			return
		}
		want, ok := genuine[raw]
		if !ok {
			t.Fatalf("Verify(%q) accepted a token that was never signed: %+v", raw, c)
		}
		if !reflect.DeepEqual(c, want) {
			t.Fatalf("Verify(%q) = %+v, want %+v", raw, c, want)
		}
	})
}

func isSentinel(err error) bool {
	for name, s := range sentinels {
		if name != "" && errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzParseJWKS must never panic; a set it accepts must hold only public
// EdDSA and ES256 keys and survive a marshal and parse round trip.
func FuzzParseJWKS(f *testing.F) {
	keys := testKeys(f)
	data, err := keys.keySet(f).MarshalJWKS()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	for _, s := range []string{
		`{"keys":[]}`,
		`{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		`{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","kid":"e","x":"AA","y":"AA","x5c":["AA=="]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ks, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range ks.Keys() {
			if _, err := publicKeyFor(k.Algorithm, k.Key); err != nil {
				t.Fatalf("ParseJWKS(%q) kept unusable key %+v: %v", data, k, err)
			}
		}
		again, err := ks.MarshalJWKS()
		if err != nil {
			t.Fatalf("MarshalJWKS() of parsed %q = %v", data, err)
		}
		back, err := ParseJWKS(again)
		if err != nil {
			t.Fatalf("ParseJWKS(%q) = %v after round trip", again, err)
		}
		assertSameKeys(t, back, ks)
	})
}
