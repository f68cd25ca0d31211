package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tegata-dev/tegata/internal/jws"
)

func TestStatusClaimRoundTrip(t *testing.T) {
	k := testKeys(t)
	c := sampleClaims()
	c.Status = &StatusRef{Index: 1993, URI: "https://auth.test.example/v1/statuslists/1"}
	raw, err := Sign(k.edSigner(), c)
	if err != nil {
		t.Fatalf("Sign() = %v", err)
	}
	_, payload, err := Inspect(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"status_list": map[string]any{"idx": 1993.0, "uri": c.Status.URI}}
	if got, _ := json.Marshal(payload["status"]); string(got) != mustJSON(t, want) {
		t.Errorf("status claim = %s, want %s (draft §6.2 shape)", got, mustJSON(t, want))
	}
	got, err := Verify(raw, k.keySet(t), testExpect(), testNow)
	if err != nil {
		t.Fatalf("Verify() = %v", err)
	}
	if got.Status == nil || *got.Status != *c.Status {
		t.Errorf("Verify().Status = %+v, want %+v", got.Status, c.Status)
	}
	if _, ok := got.Extra["status"]; ok {
		t.Error("status also appears in Extra")
	}
}

func TestStatusClaimRefused(t *testing.T) {
	k := testKeys(t)
	for _, s := range []*StatusRef{{Index: -1, URI: "u"}, {Index: 1}, {Index: 1 << 53, URI: "u"}} {
		c := sampleClaims()
		c.Status = s
		if _, err := Sign(k.edSigner(), c); !errors.Is(err, ErrClaims) {
			t.Errorf("Sign(status %+v) = %v, want ErrClaims", s, err)
		}
	}
	c := sampleClaims()
	c.Extra = map[string]any{"status": "x"}
	if _, err := Sign(k.edSigner(), c); !errors.Is(err, ErrClaims) {
		t.Errorf("Sign(Extra status) = %v, want ErrClaims: status is reserved", err)
	}
	bad := []string{
		`"x"`, `{"status_list":{"idx":1.5,"uri":"u"}}`, `{"status_list":{"idx":-1,"uri":"u"}}`,
		`{"status_list":{"idx":1}}`, `{"status_list":{"idx":"1","uri":"u"}}`, `{"status_list":[]}`,
	}
	for _, v := range bad {
		raw := signRawPayload(t, k, `{"iss":"`+testIssuer+`","sub":"alice","aud":"`+testAudience+
			`","exp":1767225900,"iat":1767225600,"jti":"j","sid":"s","sgen":0,"status":`+v+`}`)
		if _, err := Verify(raw, k.keySet(t), testExpect(), testNow); !errors.Is(err, ErrClaims) {
			t.Errorf("Verify(status %s) = %v, want ErrClaims", v, err)
		}
	}
}

// signRawPayload signs an arbitrary payload as an access token.
func signRawPayload(t *testing.T, k testKeyPair, payload string) string {
	t.Helper()
	raw, err := signParts(k.edSigner(), []byte(`{"alg":"EdDSA","typ":"at+jwt","kid":"`+testEdKID+`"}`), []byte(payload), nil)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSignJWT: the JWTs an issuer signs with its access token keys besides
// access tokens (Status List Tokens, jws.SignJWT) carry the typ asked for,
// verify with the key set, and are never taken for access tokens.
func TestSignJWT(t *testing.T) {
	k := testKeys(t)
	payload := `{"sub":"https://auth.test.example/v1/statuslists/1","status_list":{"bits":1,"lst":"eNrbuRgAAhcBXQ"}}`
	for _, key := range []SigningKey{k.edSigner(), k.ecSigner()} {
		raw, err := jws.SignJWT(jws.Key{ID: key.ID, Algorithm: key.Algorithm, Private: key.Private}, "statuslist+jwt", []byte(payload))
		if err != nil {
			t.Fatalf("SignJWT(%s) = %v", key.Algorithm, err)
		}
		header, got, err := Inspect(raw)
		if err != nil {
			t.Fatal(err)
		}
		if header["typ"] != "statuslist+jwt" || header["kid"] != key.ID || header["alg"] != key.Algorithm {
			t.Errorf("header = %v, want typ statuslist+jwt, kid and alg of the key", header)
		}
		if mustJSON(t, got) != mustJSON(t, mustDecode(t, payload)) {
			t.Errorf("payload = %v, want %s", got, payload)
		}
		e := testExpect()
		e.Algorithms = []string{EdDSA, ES256}
		if _, err := Verify(raw, k.keySet(t), e, testNow); !errors.Is(err, ErrType) {
			t.Errorf("Verify(a statuslist+jwt) = %v, want ErrType", err)
		}
		sig := raw[strings.LastIndexByte(raw, '.')+1:]
		if _, err := base64.RawURLEncoding.DecodeString(sig); err != nil {
			t.Errorf("signature is not base64url: %v", err)
		}
	}
	tests := []struct {
		name, typ, payload string
	}{
		{"an access token type", "at+jwt", payload},
		{"an access token type, other spelling", "Application/AT+JWT", payload},
		{"no typ", "", payload},
		{"not JSON", "statuslist+jwt", "{"},
		{"not an object", "statuslist+jwt", "[1]"},
	}
	ed := k.edSigner()
	for _, tt := range tests {
		if raw, err := jws.SignJWT(jws.Key{ID: ed.ID, Algorithm: ed.Algorithm, Private: ed.Private}, tt.typ, []byte(tt.payload)); err == nil {
			t.Errorf("SignJWT(%s) = %q, nil, want an error", tt.name, raw)
		}
	}
}

func mustDecode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}
