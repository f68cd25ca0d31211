package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"flag"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the hostile corpus and the test-only keys in testdata")

const corpusDir = "testdata/hostile"

// corpusCase is one file of testdata/hostile: a token, the Expect deltas it
// is verified with (on top of testExpect, at testNow, against both test-only
// keys), and the sentinel Verify must return.
type corpusCase struct {
	Name        string   `json:"name"`
	Description string   `json:"description,omitempty"`
	Want        string   `json:"want"`             // sentinel name; "" for a control that must verify
	Reason      string   `json:"reason,omitempty"` // text the error message must contain
	Algorithms  []string `json:"algorithms,omitempty"`
	MaxSize     int      `json:"max_size,omitempty"`
	Token       string   `json:"token"`
}

var sentinels = map[string]error{
	"": nil, "ErrTooLarge": ErrTooLarge, "ErrMalformed": ErrMalformed, "ErrHeader": ErrHeader,
	"ErrAlgorithm": ErrAlgorithm, "ErrUnknownKey": ErrUnknownKey, "ErrSignature": ErrSignature,
	"ErrType": ErrType, "ErrExpired": ErrExpired, "ErrNotYetValid": ErrNotYetValid,
	"ErrIssuer": ErrIssuer, "ErrAudience": ErrAudience, "ErrClaims": ErrClaims,
}

func (c corpusCase) expect() Expect {
	e := testExpect()
	e.Algorithms = c.Algorithms
	e.MaxSize = c.MaxSize
	return e
}

var bothAlgs = []string{EdDSA, ES256}

// corpusBuilder holds what the case generators share.
type corpusBuilder struct {
	tb    testing.TB
	keys  testKeyPair
	jwks  []byte
	cases []corpusCase
}

func (b *corpusBuilder) add(c corpusCase) { b.cases = append(b.cases, c) }

func (b *corpusBuilder) ed(h, p members) string {
	return signRaw(b.tb, b.keys.edSigner(), h.json(), p.json())
}

func (b *corpusBuilder) ec(h, p members) string {
	return signRaw(b.tb, b.keys.ecSigner(), h.json(), p.json())
}

// generateCorpus builds every case deterministically from the keys.
func generateCorpus(tb testing.TB, keys testKeyPair) []corpusCase {
	jwks, err := keys.keySet(tb).MarshalJWKS()
	if err != nil {
		tb.Fatalf("MarshalJWKS: %v", err)
	}
	b := &corpusBuilder{tb: tb, keys: keys, jwks: jwks}
	b.controls()
	b.algorithms()
	b.keyIDs()
	b.headerParams()
	b.claims()
	b.json()
	b.encoding()
	b.signatures()
	return b.cases
}

func (b *corpusBuilder) controls() {
	h, p := headerFor(EdDSA, testEdKID), basePayload()
	b.add(corpusCase{Name: "control_valid_eddsa", Description: "a valid EdDSA token", Token: b.ed(h, p)})
	b.add(corpusCase{Name: "control_valid_es256", Description: "a valid ES256 token with ES256 allowed",
		Algorithms: bothAlgs, Token: b.ec(headerFor(ES256, testECKID), p)})
	b.add(corpusCase{Name: "control_typ_application_mixed_case", Description: "typ compares case-insensitively, with or without application/",
		Token: b.ed(h.set("typ", `"application/AT+JWT"`), p)})
	b.add(corpusCase{Name: "control_exp_within_leeway", Description: "exp 30s ago with 30s leeway",
		Token: b.ed(h, p.set("exp", unix(testNow.Add(-30*time.Second))))})
	b.add(corpusCase{Name: "control_aud_array", Description: "aud as an array containing the audience",
		Token: b.ed(h, p.set("aud", `["other.example","`+testAudience+`"]`))})
	b.add(corpusCase{Name: "control_fractional_exp", Description: "NumericDate may have a fraction",
		Token: b.ed(h, p.set("exp", unix(testNow.Add(time.Minute))+".5"))})
	b.add(corpusCase{Name: "control_nesting_32", Description: "app claim nested to the depth limit",
		Token: b.ed(h, p.set("deep", nested(31)))})
}

func (b *corpusBuilder) algorithms() {
	p := basePayload()
	for _, none := range []string{"none", "None", "NONE", "nOnE"} {
		b.add(corpusCase{Name: "alg_" + none, Description: "unsigned token, alg " + none + ", empty signature",
			Want: "ErrAlgorithm", Reason: "never accepted", Token: unsigned(headerFor(none, testEdKID).json(), p.json(), nil)})
	}
	b.add(corpusCase{Name: "alg_eddsa_lowercase", Description: "alg names are case-sensitive",
		Want: "ErrAlgorithm", Reason: "not supported", Token: b.ed(headerFor("eddsa", testEdKID), p)})
	b.add(corpusCase{Name: "alg_missing", Want: "ErrAlgorithm", Reason: "no alg",
		Token: b.ed(headerFor(EdDSA, testEdKID).del("alg"), p)})
	b.add(corpusCase{Name: "alg_not_string", Want: "ErrAlgorithm", Reason: "no alg",
		Token: b.ed(headerFor(EdDSA, testEdKID).set("alg", `["EdDSA"]`), p)})
	pub := b.keys.ed.Public().(ed25519.PublicKey)
	for _, mac := range []struct {
		alg string
		h   func() hash.Hash
	}{{"HS256", sha256.New}, {"HS384", sha512.New384}, {"HS512", sha512.New}} {
		for _, secret := range []struct{ name, desc string }{{"public_key", "the raw Ed25519 public key"}, {"jwks", "the JWKS JSON"}} {
			key := []byte(pub)
			if secret.name == "jwks" {
				key = b.jwks
			}
			b.add(corpusCase{Name: strings.ToLower(mac.alg) + "_" + secret.name + "_secret",
				Description: "key confusion: HMAC keyed with " + secret.desc,
				Want:        "ErrAlgorithm", Reason: "not supported",
				Token: hmacToken(mac.alg, mac.h, key, basePayload())})
		}
	}
	for _, alg := range []struct {
		name string
		size int
	}{{"RS256", 256}, {"PS256", 256}, {"ES384", 96}} {
		b.add(corpusCase{Name: strings.ToLower(alg.name) + "_header", Description: "alg " + alg.name + " is never accepted",
			Want: "ErrAlgorithm", Reason: "not supported",
			Token: unsigned(headerFor(alg.name, testEdKID).json(), p.json(), filler(alg.size))})
	}
	b.add(corpusCase{Name: "es256_not_allowed", Description: "a genuine ES256 token when only EdDSA is allowed",
		Want: "ErrAlgorithm", Reason: "not allowed", Token: b.ec(headerFor(ES256, testECKID), p)})
	b.add(corpusCase{Name: "alg_eddsa_with_p256_key", Description: "header alg differs from the alg of the key named by kid",
		Want: "ErrAlgorithm", Reason: "does not match", Algorithms: bothAlgs, Token: b.ed(headerFor(EdDSA, testECKID), p)})
	b.add(corpusCase{Name: "alg_es256_with_ed25519_key", Description: "header alg differs from the alg of the key named by kid",
		Want: "ErrAlgorithm", Reason: "does not match", Algorithms: bothAlgs, Token: b.ec(headerFor(ES256, testEdKID), p)})
}

func (b *corpusBuilder) keyIDs() {
	p := basePayload()
	for _, kid := range []struct{ name, kid string }{
		{"kid_unknown", "no-such-key"}, {"kid_path_traversal", "../../etc/passwd"}, {"kid_sql_injection", "' OR 1=1 --"},
	} {
		b.add(corpusCase{Name: kid.name, Description: "kid " + kid.kid + " is only ever a map key",
			Want: "ErrUnknownKey", Reason: "kid", Token: b.ed(headerFor(EdDSA, kid.kid), p)})
	}
	h := headerFor(EdDSA, testEdKID)
	b.add(corpusCase{Name: "kid_missing", Want: "ErrHeader", Reason: "no kid", Token: b.ed(h.del("kid"), p)})
	b.add(corpusCase{Name: "kid_empty", Want: "ErrHeader", Reason: "no kid", Token: b.ed(h.set("kid", `""`), p)})
	b.add(corpusCase{Name: "kid_not_string", Want: "ErrHeader", Reason: "no kid", Token: b.ed(h.set("kid", `7`), p)})
}

func (b *corpusBuilder) headerParams() {
	p := basePayload()
	h := headerFor(EdDSA, testEdKID)
	attacker := attackerKey()
	jwk := `{"kty":"OKP","crv":"Ed25519","x":"` + b64.EncodeToString(attacker.Public().(ed25519.PublicKey)) + `"}`
	attackerSigner := SigningKey{ID: testEdKID, Algorithm: EdDSA, Private: attacker}
	b.add(corpusCase{Name: "header_jwk", Description: "the attacker's key embedded in the header, token signed with it",
		Want: "ErrHeader", Reason: `"jwk"`, Token: signRaw(b.tb, attackerSigner, h.set("jwk", jwk).json(), p.json())})
	for _, param := range []struct{ name, value string }{
		{"jku", `"https://attacker.example/jwks.json"`},
		{"x5u", `"https://attacker.example/cert.pem"`},
		{"x5c", `["MIIBszCCAVmgAwIBAgIUQ=="]`},
		{"x5t", `"dGhpcyBpcyBub3QgYSB0aHVtYnByaW50"`},
	} {
		b.add(corpusCase{Name: "header_" + param.name, Description: "header parameter " + param.name + " names key material",
			Want: "ErrHeader", Reason: `"` + param.name + `"`, Token: b.ed(h.set(param.name, param.value), p)})
	}
	b.add(corpusCase{Name: "crit_exp", Description: "crit listing a registered name",
		Want: "ErrHeader", Reason: "crit", Token: b.ed(h.set("crit", `["exp"]`), p)})
	b.add(corpusCase{Name: "crit_unknown", Description: "crit listing an extension we do not understand",
		Want: "ErrHeader", Reason: "crit", Token: b.ed(h.set("crit", `["urn:example:ext"]`).set("urn:example:ext", "true"), p)})
	b.add(corpusCase{Name: "typ_jwt", Want: "ErrType", Reason: `"JWT"`, Token: b.ed(h.set("typ", `"JWT"`), p)})
	b.add(corpusCase{Name: "typ_missing", Want: "ErrType", Reason: "no typ", Token: b.ed(h.del("typ"), p)})
	b.add(corpusCase{Name: "typ_not_string", Want: "ErrType", Reason: "no typ", Token: b.ed(h.set("typ", `{"t":"at+jwt"}`), p)})
}

func (b *corpusBuilder) claims() {
	h, p := headerFor(EdDSA, testEdKID), basePayload()
	at := func(d time.Duration) string { return unix(testNow.Add(d)) }
	for _, c := range []struct {
		name   string
		p      members
		want   string
		reason string
	}{
		{"exp_missing", p.del("exp"), "ErrClaims", "exp is missing"},
		{"exp_string", p.set("exp", `"`+at(time.Minute)+`"`), "ErrClaims", "exp is not a number"},
		{"exp_null", p.set("exp", `null`), "ErrClaims", "exp is not a number"},
		{"exp_huge", p.set("exp", `1e300`), "ErrClaims", "out of range"},
		{"exp_expired", p.set("exp", at(-31*time.Second)), "ErrExpired", "exp"},
		{"exp_beyond_max_lifetime", p.set("exp", at(time.Hour+31*time.Second)), "ErrClaims", "more than 1h0m0s"},
		{"nbf_future", p.set("nbf", at(31*time.Second)), "ErrNotYetValid", "nbf"},
		{"iat_future", p.set("iat", at(31*time.Second)), "ErrNotYetValid", "iat"},
		{"iat_missing", p.del("iat"), "ErrClaims", "iat is missing"},
		{"iss_wrong", p.set("iss", `"https://evil.example"`), "ErrIssuer", "evil"},
		{"iss_missing", p.del("iss"), "ErrIssuer", "iss is missing"},
		{"aud_wrong", p.set("aud", `"other.example"`), "ErrAudience", "other.example"},
		{"aud_missing", p.del("aud"), "ErrAudience", "aud is missing"},
		{"aud_number", p.set("aud", `1`), "ErrClaims", "aud"},
		{"aud_array_with_number", p.set("aud", `["`+testAudience+`",1]`), "ErrClaims", "aud"},
		{"sub_missing", p.del("sub"), "ErrClaims", "sub is missing"},
		{"sub_empty", p.set("sub", `""`), "ErrClaims", "sub is missing"},
		{"sub_number", p.set("sub", `42`), "ErrClaims", "sub is not a string"},
		{"sid_missing", p.del("sid"), "ErrClaims", "sid is missing"},
		{"jti_missing", p.del("jti"), "ErrClaims", "jti is missing"},
		{"sgen_negative", p.set("sgen", `-1`), "ErrClaims", "sgen"},
		{"sgen_fraction", p.set("sgen", `1.5`), "ErrClaims", "sgen"},
		{"sgen_exponent", p.set("sgen", `1e3`), "ErrClaims", "sgen"},
		{"sgen_overflow", p.set("sgen", `9223372036854775808`), "ErrClaims", "sgen"},
		{"cnf_present", p.set("cnf", `{"jkt":"0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiGuA4I"}`), "ErrClaims", "cnf"},
	} {
		b.add(corpusCase{Name: c.name, Want: c.want, Reason: c.reason, Token: b.ed(h, c.p)})
	}
}

func (b *corpusBuilder) json() {
	h, p := headerFor(EdDSA, testEdKID), basePayload()
	raw := func(payload string) string { return signRaw(b.tb, b.keys.edSigner(), h.json(), payload) }
	for _, c := range []struct {
		name, payload, reason string
	}{
		{"payload_duplicate_sub", p.add("sub", `"admin"`).json(), `duplicate member "sub"`},
		{"payload_duplicate_escaped_name", p.add(`s\u0075b`, `"admin"`).json(), `duplicate member "sub"`},
		{"payload_duplicate_app_claim", p.add("roles", `["root"]`).json(), `duplicate member "roles"`},
		{"payload_duplicate_nested", p.set("org", `{"id":1,"id":2}`).json(), `duplicate member "id"`},
		{"payload_array", `[` + p.json() + `]`, "payload is not a JSON object"},
		{"payload_string", `"hello"`, "payload is not a JSON object"},
		{"payload_number", `42`, "payload is not a JSON object"},
		{"payload_null", `null`, "payload is not a JSON object"},
		{"payload_trailing_data", p.json() + `{}`, "data after"},
		{"payload_nesting_33", p.set("deep", nested(32)).json(), "nesting deeper than 32"},
		{"payload_invalid_utf8", p.set("name", "\"\xff\xfe\"").json(), "UTF-8"},
		{"payload_lone_surrogate", p.set("name", `"\ud800"`).json(), "surrogate"},
	} {
		b.add(corpusCase{Name: c.name, Want: "ErrMalformed", Reason: c.reason, Token: raw(c.payload)})
	}
	b.add(corpusCase{Name: "payload_nesting_10000", Description: "deep nesting, with the size limit raised so the depth cap is what stops it",
		Want: "ErrMalformed", Reason: "nesting deeper than 32", MaxSize: 1 << 16, Token: raw(p.set("deep", nested(10000)).json())})
	b.add(corpusCase{Name: "header_duplicate_alg", Description: "a second alg after a valid one",
		Want: "ErrMalformed", Reason: `duplicate member "alg"`, Token: b.ed(h.add("alg", `"none"`), p)})
	b.add(corpusCase{Name: "header_duplicate_unknown", Want: "ErrMalformed", Reason: `duplicate member "x"`,
		Token: b.ed(h.add("x", "1").add("x", "2"), p)})
	b.add(corpusCase{Name: "header_not_object", Want: "ErrMalformed", Reason: "header is not a JSON object",
		Token: signRaw(b.tb, b.keys.edSigner(), `["EdDSA"]`, p.json())})
	b.add(corpusCase{Name: "header_nesting_100", Want: "ErrMalformed", Reason: "nesting deeper than 32",
		Token: b.ed(h.set("x", nested(100)), p)})
}

func (b *corpusBuilder) encoding() {
	h, p := headerFor(EdDSA, testEdKID), basePayload()
	valid := b.ed(h, p)
	dot := strings.LastIndexByte(valid, '.')
	head, sig := valid[:dot+1], valid[dot+1:]
	mid := len(sig) / 2
	for _, c := range []struct{ name, token, reason string }{
		{"sig_padding", valid + "==", "not base64url"},
		{"sig_plus", head + "+" + sig[1:], "not base64url"},
		{"sig_slash", head + "/" + sig[1:], "not base64url"},
		{"sig_newline", head + sig[:mid] + "\n" + sig[mid:], "not base64url"},
		{"sig_crlf", head + sig[:mid] + "\r\n" + sig[mid:], "not base64url"},
		{"sig_space", head + sig[:mid] + " " + sig[mid:], "not base64url"},
		{"sig_tab", head + sig[:mid] + "\t" + sig[mid:], "not base64url"},
		{"sig_trailing_bits", head + withTrailingBits(sig), "signature segment is not canonical"},
		{"segments_1_empty_token", "", "want 3 segments, got 1"},
		{"segments_2", valid[:dot], "want 3 segments, got 2"},
		{"segments_4", valid + ".AAAA", "want 3 segments, got 4"},
		{"segments_5_jwe", jweLike(), "JWE"},
		{"signature_empty", head, "signature segment is empty"},
		{"header_empty", valid[strings.IndexByte(valid, '.'):], "empty header"},
		{"payload_empty", valid[:strings.IndexByte(valid, '.')+1] + "." + sig, "empty header or payload"},
	} {
		b.add(corpusCase{Name: c.name, Want: "ErrMalformed", Reason: c.reason, Token: c.token})
	}
	large := b.ed(h, p.set("pad", `"`+strings.Repeat("x", 6200)+`"`))
	b.add(corpusCase{Name: "too_large", Description: "a genuine token just over 8 KiB",
		Want: "ErrTooLarge", Reason: "limit 8192", Token: large})
}

func (b *corpusBuilder) signatures() {
	h, p := headerFor(EdDSA, testEdKID), basePayload()
	valid := b.ed(h, p)
	sig := valid[strings.LastIndexByte(valid, '.'):]
	forged := b64.EncodeToString([]byte(h.json())) + "." + b64.EncodeToString([]byte(p.set("sub", `"admin"`).json())) + sig
	other := SigningKey{ID: testEdKID, Algorithm: EdDSA, Private: attackerKey()}
	for _, c := range []struct{ name, desc, token, reason string }{
		{"sig_moved_to_changed_payload", "valid signature copied onto a payload with another sub", forged, "does not verify"},
		{"sig_from_other_key", "signed by a key not in the set, under a known kid", signRaw(b.tb, other, h.json(), p.json()), "does not verify"},
		{"sig_truncated", "a 63-byte EdDSA signature", valid[:len(valid)-2], "does not verify"},
	} {
		b.add(corpusCase{Name: c.name, Description: c.desc, Want: "ErrSignature", Reason: c.reason, Token: c.token})
	}
	eh := headerFor(ES256, testECKID)
	es := b.ec(eh, p)
	dot := strings.LastIndexByte(es, '.')
	rs, err := b64.DecodeString(es[dot+1:])
	if err != nil {
		b.tb.Fatal(err)
	}
	for _, c := range []struct {
		name, desc, reason string
		r, s               []byte
	}{
		{"es256_r_zero", "r = 0", "zero", make([]byte, 32), rs[32:]},
		{"es256_s_zero", "s = 0", "zero", rs[:32], make([]byte, 32)},
		{"es256_r_equals_n", "r = N, the P-256 group order", "group order", nBytes, rs[32:]},
		{"es256_s_equals_n", "s = N, the P-256 group order", "group order", rs[:32], nBytes},
		{"es256_high_s", "the malleated twin (r, N-s) of a valid low-S signature", "high", rs[:32], negateModN(rs[32:])},
	} {
		sig := append(append([]byte(nil), c.r...), c.s...)
		b.add(corpusCase{Name: c.name, Description: c.desc, Want: "ErrSignature", Reason: c.reason, Algorithms: bothAlgs,
			Token: es[:dot+1] + b64.EncodeToString(sig)})
	}
	var der [72]byte
	b.add(corpusCase{Name: "es256_der_signature", Description: "ASN.1 DER instead of r||s",
		Want: "ErrSignature", Reason: "want 64", Algorithms: bothAlgs,
		Token: es[:dot+1] + b64.EncodeToString(appendDERSignature(der[:0], rs[:32], rs[32:]))})
}

// hmacToken is the classic key-confusion token: HMAC keyed with public data.
func hmacToken(alg string, h func() hash.Hash, key []byte, p members) string {
	input := b64.EncodeToString([]byte(headerFor(alg, testEdKID).json())) + "." + b64.EncodeToString([]byte(p.json()))
	mac := hmac.New(h, key)
	mac.Write([]byte(input))
	return input + "." + b64.EncodeToString(mac.Sum(nil))
}

func unsigned(header, payload string, sig []byte) string {
	return b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload)) + "." + b64.EncodeToString(sig)
}

// filler is deterministic bytes standing in for a signature we never check.
func filler(n int) []byte {
	var out []byte
	for seed := sha256.Sum256([]byte("filler")); len(out) < n; seed = sha256.Sum256(seed[:]) {
		out = append(out, seed[:]...)
	}
	return out[:n]
}

func attackerKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("tegata TEST-ONLY attacker key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// nested returns depth arrays nested in one another.
func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

// withTrailingBits sets an unused low bit in the last character of seg, so it
// decodes to the same bytes under a lenient decoder.
func withTrailingBits(seg string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, seg[len(seg)-1])
	return seg[:len(seg)-1] + string(alphabet[last|1])
}

func jweLike() string {
	h := b64.EncodeToString([]byte(`{"alg":"dir","enc":"A256GCM","kid":"test-ed25519"}`))
	return h + ".." + b64.EncodeToString(filler(12)) + "." + b64.EncodeToString(filler(40)) + "." + b64.EncodeToString(filler(16))
}

// negateModN returns N-s, the high-S twin of a low-S value.
func negateModN(s []byte) []byte {
	out := make([]byte, 32)
	var borrow int
	for i := 31; i >= 0; i-- {
		d := int(nBytes[i]) - int(s[i]) - borrow
		borrow = 0
		if d < 0 {
			d += 256
			borrow = 1
		}
		out[i] = byte(d)
	}
	return out
}

func encodeCase(c corpusCase) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// TestGenerateCorpus regenerates the hostile corpus.
// With -update it rewrites them; without, it fails if the committed files
// differ from what the generator produces, so the corpus cannot drift.
func TestGenerateCorpus(t *testing.T) {
	want := map[string][]byte{}
	for _, c := range generateCorpus(t, testKeys(t)) {
		path := filepath.Join(corpusDir, c.Name+".json")
		if _, dup := want[path]; dup {
			t.Fatalf("two corpus cases named %q", c.Name)
		}
		want[path] = encodeCase(c)
	}
	if *update {
		writeCorpus(t, want)
		return
	}
	for path, data := range want {
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s is out of date (%v); run go test ./token -run TestGenerateCorpus -update", path, err)
		}
	}
	for _, path := range corpusFiles(t) {
		if _, ok := want[path]; !ok {
			t.Errorf("%s is not produced by the generator; run with -update to remove it", path)
		}
	}
}

func writeCorpus(t *testing.T, files map[string][]byte) {
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, path := range corpusFiles(t) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	for path, data := range files {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func corpusFiles(t testing.TB) []string {
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(paths)
	return paths
}

func loadCorpus(t testing.TB) []corpusCase {
	var cases []corpusCase
	for _, path := range corpusFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var c corpusCase
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if _, ok := sentinels[c.Want]; !ok {
			t.Fatalf("%s: unknown sentinel %q", path, c.Want)
		}
		cases = append(cases, c)
	}
	if len(cases) < 60 {
		t.Fatalf("hostile corpus has %d cases; run go test ./token -run TestGenerateCorpus -update", len(cases))
	}
	return cases
}

// TestHostileCorpus runs every corpus case through Verify.
func TestHostileCorpus(t *testing.T) {
	keys := testKeys(t).keySet(t)
	for _, c := range loadCorpus(t) {
		t.Run(c.Name, func(t *testing.T) {
			_, err := Verify(c.Token, keys, c.expect(), testNow)
			want := sentinels[c.Want]
			if !errors.Is(err, want) || (want == nil) != (err == nil) {
				t.Fatalf("Verify(%.60q) = %v, want %v", c.Token, err, want)
			}
			if err != nil && !strings.Contains(err.Error(), c.Reason) {
				t.Errorf("Verify(%.60q) = %v, want a reason containing %q", c.Token, err, c.Reason)
			}
		})
	}
}
