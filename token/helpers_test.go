package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test-only keys live in testdata so the hostile corpus can be checked
// against them. They are public: never use them for anything real.
const (
	testEdKID = "test-ed25519"
	testECKID = "test-p256"

	testIssuer   = "https://auth.test.example"
	testAudience = "api.test.example"
)

// testNow is the fixed instant the corpus and most tests verify at.
var testNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// testExpect is what the corpus is verified against, before a case's own
// algorithms and size limit are applied.
func testExpect() Expect {
	return Expect{
		Issuer:      testIssuer,
		Audience:    testAudience,
		Leeway:      30 * time.Second,
		MaxLifetime: time.Hour,
	}
}

// deriveTestKeys derives the test-only keys from fixed seeds, so that
// regenerating the corpus reproduces the committed files byte for byte.
func deriveTestKeys() (ed25519.PrivateKey, *ecdsa.PrivateKey) {
	seed := sha256.Sum256([]byte("tegata TEST-ONLY ed25519 key"))
	d := sha256.Sum256([]byte("tegata TEST-ONLY p256 key"))
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		panic(err)
	}
	return ed25519.NewKeyFromSeed(seed[:]), ec
}

type testKeyPair struct {
	ed ed25519.PrivateKey
	ec *ecdsa.PrivateKey
}

// testKeys returns the test-only keys. They are derived from public seeds
// rather than stored, so the repository holds no key files.
func testKeys(tb testing.TB) testKeyPair {
	tb.Helper()
	ed, ec := deriveTestKeys()
	return testKeyPair{ed: ed, ec: ec}
}

func (k testKeyPair) edSigner() SigningKey {
	return SigningKey{ID: testEdKID, Algorithm: EdDSA, Private: k.ed}
}

func (k testKeyPair) ecSigner() SigningKey {
	return SigningKey{ID: testECKID, Algorithm: ES256, Private: k.ec}
}

func (k testKeyPair) keySet(tb testing.TB) *KeySet {
	tb.Helper()
	ks, err := NewKeySet(
		PublicKey{ID: testEdKID, Algorithm: EdDSA, Key: k.ed.Public()},
		PublicKey{ID: testECKID, Algorithm: ES256, Key: k.ec.Public()},
	)
	if err != nil {
		tb.Fatalf("NewKeySet: %v", err)
	}
	return ks
}

// members is a JSON object under construction whose member order, spelling
// and duplicates the test controls, which encoding/json would not allow.
type members [][2]string

func (m members) json() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, kv := range m {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + kv[0] + `":` + kv[1])
	}
	b.WriteByte('}')
	return b.String()
}

// set replaces the value of name, or appends it.
func (m members) set(name, raw string) members {
	out := append(members(nil), m...)
	for i := range out {
		if out[i][0] == name {
			out[i][1] = raw
			return out
		}
	}
	return append(out, [2]string{name, raw})
}

// add appends name even if it is already present.
func (m members) add(name, raw string) members {
	return append(append(members(nil), m...), [2]string{name, raw})
}

func (m members) del(name string) members {
	var out members
	for _, kv := range m {
		if kv[0] != name {
			out = append(out, kv)
		}
	}
	return out
}

func headerFor(alg, kid string) members {
	return members{{"alg", quote(alg)}, {"typ", `"at+jwt"`}, {"kid", quote(kid)}}
}

// basePayload is a valid payload at testNow, issued ten minutes earlier and
// valid for five more.
func basePayload() members {
	return members{
		{"iss", quote(testIssuer)},
		{"sub", `"user-42"`},
		{"aud", quote(testAudience)},
		{"exp", unix(testNow.Add(5 * time.Minute))},
		{"iat", unix(testNow.Add(-10 * time.Minute))},
		{"jti", `"tok-1"`},
		{"sid", `"sess-1"`},
		{"sgen", `3`},
		{"roles", `["admin","editor"]`},
	}
}

func quote(s string) string { return string(appendJSONString(nil, s)) }

func unix(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// signRaw signs header and payload JSON as given. ES256 signatures are the
// deterministic RFC 6979 ones, so the corpus regenerates identically.
func signRaw(tb testing.TB, k SigningKey, header, payload string) string {
	tb.Helper()
	tok, err := signParts(k, []byte(header), []byte(payload), nil)
	if err != nil {
		tb.Fatalf("signParts: %v", err)
	}
	return tok
}
