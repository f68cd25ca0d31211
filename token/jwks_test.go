package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

func TestNewKeySet(t *testing.T) {
	keys := testKeys(t)
	ed, ec := keys.ed.Public(), keys.ec.Public()
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	offCurve := *ec.(*ecdsa.PublicKey)
	offCurve.Y = offCurve.X
	tests := []struct {
		name    string
		keys    []PublicKey
		wantErr bool
	}{
		{"empty", nil, false},
		{"both algorithms", []PublicKey{{"a", EdDSA, ed}, {"b", ES256, ec}}, false},
		{"duplicate kid", []PublicKey{{"a", EdDSA, ed}, {"a", ES256, ec}}, true},
		{"missing kid", []PublicKey{{"", EdDSA, ed}}, true},
		{"EdDSA with P-256 key", []PublicKey{{"a", EdDSA, ec}}, true},
		{"ES256 with Ed25519 key", []PublicKey{{"a", ES256, ed}}, true},
		{"ES256 with P-384 key", []PublicKey{{"a", ES256, p384.Public()}}, true},
		{"ES256 point off the curve", []PublicKey{{"a", ES256, &offCurve}}, true},
		{"short Ed25519 key", []PublicKey{{"a", EdDSA, ed.(ed25519.PublicKey)[:31]}}, true},
		{"private key as public", []PublicKey{{"a", EdDSA, keys.ed}}, true},
		{"HS256", []PublicKey{{"a", "HS256", []byte("secret")}}, true},
		{"empty alg", []PublicKey{{"a", "", ed}}, true},
		{"nil key", []PublicKey{{"a", ES256, (*ecdsa.PublicKey)(nil)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := NewKeySet(tt.keys...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NewKeySet(%s) = %v, want error %v", tt.name, err, tt.wantErr)
			}
			if err == nil && len(ks.Keys()) != len(tt.keys) {
				t.Errorf("NewKeySet(%s).Keys() has %d keys, want %d", tt.name, len(ks.Keys()), len(tt.keys))
			}
		})
	}
}

func TestKeySetCopiesKeys(t *testing.T) {
	pub := append(ed25519.PublicKey(nil), testKeys(t).ed.Public().(ed25519.PublicKey)...)
	ks, err := NewKeySet(PublicKey{ID: "a", Algorithm: EdDSA, Key: pub})
	if err != nil {
		t.Fatal(err)
	}
	pub[0] ^= 0xff
	got, ok := ks.Lookup("a")
	if !ok || got.Key.(ed25519.PublicKey)[0] == pub[0] {
		t.Errorf("Lookup(a) = %v, %v: the set shares the caller's key bytes", got, ok)
	}
	var nilSet *KeySet
	if _, ok := nilSet.Lookup("a"); ok || nilSet.Keys() != nil {
		t.Errorf("nil KeySet is not empty")
	}
}

func TestJWKSRoundTrip(t *testing.T) {
	ks := testKeys(t).keySet(t)
	data, err := ks.MarshalJWKS()
	if err != nil {
		t.Fatalf("MarshalJWKS() = %v", err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("MarshalJWKS() = %s: %v", data, err)
	}
	for _, k := range doc.Keys {
		if k["use"] != "sig" || k["kid"] == nil || k["alg"] == nil || k["d"] != nil {
			t.Errorf("MarshalJWKS() key %v, want kid, alg, use sig and no private part", k)
		}
	}
	got, err := ParseJWKS(data)
	if err != nil {
		t.Fatalf("ParseJWKS(%s) = %v", data, err)
	}
	assertSameKeys(t, got, ks)
	empty, err := NewKeySet()
	if err != nil {
		t.Fatal(err)
	}
	if data, err := empty.MarshalJWKS(); err != nil || string(data) != `{"keys":[]}` {
		t.Errorf("empty MarshalJWKS() = %s, %v, want {\"keys\":[]}", data, err)
	}
}

func assertSameKeys(t *testing.T, got, want *KeySet) {
	t.Helper()
	g, w := got.Keys(), want.Keys()
	if len(g) != len(w) {
		t.Fatalf("key set has %d keys, want %d", len(g), len(w))
	}
	for i := range w {
		eq, ok := g[i].Key.(interface{ Equal(crypto.PublicKey) bool })
		if g[i].ID != w[i].ID || g[i].Algorithm != w[i].Algorithm || !ok || !eq.Equal(w[i].Key) {
			t.Errorf("key %d = %+v, want %+v", i, g[i], w[i])
		}
	}
}

func TestParseJWKS(t *testing.T) {
	keys := testKeys(t)
	data, err := keys.keySet(t).MarshalJWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	edJWK, ecJWK := doc.Keys[0], doc.Keys[1]
	with := func(base map[string]any, kv ...any) string {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaJWK := jwkJSON(t, rsaKey.Public(), "r1", "RS256")
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }
	privEd := jwkJSON(t, keys.ed, testEdKID, EdDSA)
	tests := []struct {
		name    string
		data    string
		kids    []string // usable keys expected, in order
		wantErr bool
	}{
		{"both", set(with(edJWK), with(ecJWK)), []string{testEdKID, testECKID}, false},
		{"alg omitted is inferred", set(with(edJWK, "alg", nil), with(ecJWK, "alg", nil, "use", nil)), []string{testEdKID, testECKID}, false},
		{"symmetric oct skipped", set(`{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0"}`, with(edJWK)), []string{testEdKID}, false},
		{"oct claiming EdDSA skipped", set(`{"kty":"oct","kid":"h","alg":"EdDSA","k":"c2VjcmV0"}`), nil, false},
		{"RSA skipped", set(rsaJWK, with(ecJWK)), []string{testECKID}, false},
		{"X25519 skipped", set(with(edJWK, "crv", "X25519", "kid", "x")), nil, false},
		{"P-384 skipped", set(`{"kty":"EC","crv":"P-384","kid":"p","x":"AA","y":"AA"}`), nil, false},
		{"unknown kty skipped", set(`{"kty":"AKP","kid":"m","alg":"ML-DSA-44","pub":"AA"}`), nil, false},
		{"use enc skipped", set(with(edJWK, "use", "enc")), nil, false},
		{"key_ops without verify skipped", set(with(edJWK, "key_ops", []string{"sign"})), nil, false},
		{"key_ops with verify kept", set(with(edJWK, "key_ops", []string{"verify"}, "use", nil)), []string{testEdKID}, false},
		{"alg mismatch skipped", set(with(edJWK, "alg", "ES256")), nil, false},
		{"no kid skipped", set(with(edJWK, "kid", nil)), nil, false},
		{"private part dropped", set(privEd), []string{testEdKID}, false},
		{"empty set", `{"keys":[]}`, nil, false},
		{"not JSON", `{"keys":[`, nil, true},
		{"not an object", `[]`, nil, true},
		{"no keys member", `{}`, nil, true},
		{"keys null", `{"keys":null}`, nil, true},
		{"duplicate member", `{"keys":[],"keys":[]}`, nil, true},
		{"duplicate kid", set(with(edJWK), with(edJWK)), nil, true},
		{"bad x", set(with(edJWK, "x", "AAAA")), nil, true},
		{"EC point off curve", set(with(ecJWK, "y", ecJWK["x"])), nil, true},
		{"kid not a string", set(with(edJWK, "kid", 5)), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseJWKS([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseJWKS(%s) = %v, want error %v", tt.data, err, tt.wantErr)
			}
			var kids []string
			for _, k := range ks.Keys() {
				kids = append(kids, k.ID)
				if _, private := k.Key.(ed25519.PrivateKey); private {
					t.Errorf("ParseJWKS(%s) kept a private key", tt.data)
				}
			}
			if strings.Join(kids, ",") != strings.Join(tt.kids, ",") {
				t.Errorf("ParseJWKS(%s) kids = %v, want %v", tt.data, kids, tt.kids)
			}
		})
	}
}

// jwkJSON marshals a key of any kind as a JWK with go-jose, the way another
// issuer might publish it.
func jwkJSON(t *testing.T, key any, kid, alg string) string {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatalf("marshal %T as JWK: %v", key, err)
	}
	return string(b)
}
