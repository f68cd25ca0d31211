package keyproof

import (
	"crypto"
	"errors"
	"strings"
	"testing"
)

const testPayload = `{"jti":"j1","htm":"GET","htu":"https://api.example/r","iat":1700000000}`

// parseCase is one proof and what Parse must say of it.
type parseCase struct {
	name  string
	proof string
	e     Expect
	want  error
}

// parseCases pins each rule with a proof that breaks it alone.
func parseCases(t testing.TB) []parseCase {
	s := newSigners(t)
	edJWK, ecJWK, rsaJWK := jwkOf(t, s.ed), jwkOf(t, s.ec), jwkOf(t, s.rsa)
	hdr := func(alg, jwk string) string { return `{"typ":"dpop+jwt","alg":"` + alg + `","jwk":` + jwk + `}` }
	dpop := Expect{Type: "dpop+jwt"}
	withRSA := Expect{Type: "dpop+jwt", Algorithms: []string{ES256, EdDSA, RS256}}
	return []parseCase{
		{"EdDSA", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), testPayload), dpop, nil},
		{"Ed25519 name", signRaw(t, s.ed, EdDSA, hdr(Ed25519, edJWK), testPayload), dpop, nil},
		{"ES256", signRaw(t, s.ec, ES256, hdr(ES256, ecJWK), testPayload), dpop, nil},
		{"RS256 opted in", signRaw(t, s.rsa, RS256, hdr(RS256, rsaJWK), testPayload), withRSA, nil},
		{"RS256 by default", signRaw(t, s.rsa, RS256, hdr(RS256, rsaJWK), testPayload), dpop, ErrAlgorithm},
		{"typ with application/", signRaw(t, s.ed, EdDSA, `{"typ":"application/DPoP+JWT","alg":"EdDSA","jwk":`+edJWK+`}`, testPayload), dpop, nil},
		{"alg none", signRaw(t, s.ed, EdDSA, hdr("none", edJWK), testPayload), dpop, ErrAlgorithm},
		{"alg HS256", signRaw(t, s.ed, EdDSA, hdr("HS256", `{"kty":"oct","k":"c2VjcmV0"}`), testPayload), dpop, ErrAlgorithm},
		{"alg lower case", signRaw(t, s.ed, EdDSA, hdr("eddsa", edJWK), testPayload), dpop, ErrAlgorithm},
		{"alg not a string", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":1,"jwk":`+edJWK+`}`, testPayload), dpop, ErrAlgorithm},
		{"alg does not suit key", signRaw(t, s.ed, EdDSA, hdr(ES256, edJWK), testPayload), dpop, ErrAlgorithm},
		{"no typ", signRaw(t, s.ed, EdDSA, `{"alg":"EdDSA","jwk":`+edJWK+`}`, testPayload), dpop, ErrType},
		{"other typ", signRaw(t, s.ed, EdDSA, `{"typ":"at+jwt","alg":"EdDSA","jwk":`+edJWK+`}`, testPayload), dpop, ErrType},
		{"no jwk", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA"}`, testPayload), dpop, ErrKey},
		{"jwk not an object", signRaw(t, s.ed, EdDSA, hdr(EdDSA, `"x"`), testPayload), dpop, ErrKey},
		{"private jwk", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK[:len(edJWK)-1]+`,"d":"`+b64.EncodeToString(s.ed.Seed())+`"}`), testPayload), dpop, ErrKey},
		{"symmetric jwk", signRaw(t, s.ed, EdDSA, hdr(EdDSA, `{"kty":"oct","k":"c2VjcmV0"}`), testPayload), dpop, ErrKey},
		{"jwk of another key", signRaw(t, s.ed2, EdDSA, hdr(EdDSA, edJWK), testPayload), dpop, ErrSignature},
		{"EC point off the curve", signRaw(t, s.ec, ES256, hdr(ES256, `{"kty":"EC","crv":"P-256","x":"`+strings.Repeat("A", 42)+`E","y":"`+strings.Repeat("A", 42)+`E"}`), testPayload), dpop, ErrKey},
		{"EC P-384", signRaw(t, s.ec, ES256, hdr(ES256, strings.Replace(ecJWK, "P-256", "P-384", 1)), testPayload), dpop, ErrKey},
		{"x non-canonical base64url", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK[:len(edJWK)-3]+`B"}`), testPayload), dpop, ErrKey},
		{"jku", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA","jku":"https://evil/","jwk":`+edJWK+`}`, testPayload), dpop, ErrHeader},
		{"x5c", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA","x5c":["AA=="],"jwk":`+edJWK+`}`, testPayload), dpop, ErrHeader},
		{"crit", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA","crit":["exp"],"jwk":`+edJWK+`}`, testPayload), dpop, ErrHeader},
		{"duplicate alg", signRaw(t, s.ed, EdDSA, `{"typ":"dpop+jwt","alg":"EdDSA","alg":"EdDSA","jwk":`+edJWK+`}`, testPayload), dpop, ErrMalformed},
		{"duplicate claim", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), `{"jti":"a","jti":"b"}`), dpop, ErrMalformed},
		{"payload not an object", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), `[1]`), dpop, ErrMalformed},
		{"JWE", "a.b.c.d.e", dpop, ErrMalformed},
		{"two segments", "a.b", dpop, ErrMalformed},
		{"newline", strings.Replace(signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), testPayload), ".", "\n.", 1), dpop, ErrMalformed},
		{"empty signature", strings.Join(strings.Split(signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), testPayload), ".")[:2], ".") + ".", dpop, ErrMalformed},
		{"RSA-1024", signRaw(t, s.rsa1024, RS256, hdr(RS256, jwkOf(t, s.rsa1024)), testPayload), withRSA, ErrKey},
		{"too large", signRaw(t, s.ed, EdDSA, hdr(EdDSA, edJWK), `{"pad":"`+strings.Repeat("x", DefaultMaxSize)+`"}`), dpop, ErrTooLarge},
	}
}

func TestParse(t *testing.T) {
	for _, tt := range parseCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			var cl testClaims
			_, err := Parse(tt.proof, tt.e, cl.read)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Parse(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if err == nil && (cl.jti != "j1" || cl.members != 4) {
				t.Errorf("Parse(%s) read jti %q and %d members, want j1 and 4", tt.name, cl.jti, cl.members)
			}
		})
	}
}

// TestThumbprintRFC7638 checks the thumbprint against the example of RFC
// 7638 §3.1 and against RFC 8037 §A.3's Ed25519 example.
func TestThumbprintRFC7638(t *testing.T) {
	tests := []struct{ name, jwk, want string }{
		{"RFC 7638 RSA", `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"},
		{"RFC 8037 Ed25519", `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"},
	}
	for _, tt := range tests {
		k, err := ParseJWK([]byte(tt.jwk))
		if err != nil {
			t.Fatalf("ParseJWK(%s) = %v", tt.name, err)
		}
		if k.Thumbprint != tt.want || thumbprint(string(k.JSON)) != tt.want {
			t.Errorf("ParseJWK(%s).Thumbprint = %s, want %s", tt.name, k.Thumbprint, tt.want)
		}
	}
}

// TestKnownKey checks Expect.Key: a proof without jwk verifies with the
// key named by the caller, and one whose jwk is another key does not.
func TestKnownKey(t *testing.T) {
	s := newSigners(t)
	known, err := PublicKey(s.ec.Public())
	if err != nil {
		t.Fatal(err)
	}
	e := Expect{Type: "dbsc+jwt", Key: &known}
	bare := signRaw(t, s.ec, ES256, `{"typ":"dbsc+jwt","alg":"ES256"}`, `{"jti":"j1"}`)
	if _, err := Parse(bare, e, nil); err != nil {
		t.Errorf("Parse(no jwk, known key) = %v, want nil", err)
	}
	other := signRaw(t, s.ed, EdDSA, `{"typ":"dbsc+jwt","alg":"EdDSA","jwk":`+jwkOf(t, s.ed)+`}`, `{"jti":"j1"}`)
	if _, err := Parse(other, e, nil); !errors.Is(err, ErrKey) {
		t.Errorf("Parse(jwk of another key, known key) = %v, want ErrKey", err)
	}
	forged := signRaw(t, s.ed, EdDSA, `{"typ":"dbsc+jwt","alg":"ES256"}`, `{"jti":"j1"}`)
	if _, err := Parse(forged, e, nil); !errors.Is(err, ErrSignature) {
		t.Errorf("Parse(signed by another key, known key) = %v, want ErrSignature", err)
	}
}

// TestSignRoundTrip: what Sign makes, Parse accepts with the same
// thumbprint, for every key type.
func TestSignRoundTrip(t *testing.T) {
	s := newSigners(t)
	e := Expect{Type: "dpop+jwt", Algorithms: []string{ES256, EdDSA, RS256}}
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
	}{{"Ed25519", s.ed}, {"P-256", s.ec}, {"RSA", s.rsa}} {
		raw, err := Sign(tc.signer, "dpop+jwt", []byte(testPayload))
		if err != nil {
			t.Fatalf("Sign(%s) = %v", tc.name, err)
		}
		p, err := Parse(raw, e, nil)
		if err != nil {
			t.Fatalf("Parse(Sign(%s)) = %v", tc.name, err)
		}
		if want := thumbprint(jwkOf(t, tc.signer)); p.Key.Thumbprint != want {
			t.Errorf("Parse(Sign(%s)).Key.Thumbprint = %s, want %s", tc.name, p.Key.Thumbprint, want)
		}
	}
}
