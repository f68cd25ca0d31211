package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/internal/keyproof"
)

var testNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

const (
	testURL   = "https://api.example/orders"
	testToken = "eyJ.access.token"
)

func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signClaims signs a proof with the claims given as they are.
func signClaims(t testing.TB, k ed25519.PrivateKey, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	p, err := keyproof.Sign(k, Type, b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	k := testKey(t)
	req := Request{Method: "GET", URL: testURL + "?page=2", AccessToken: testToken}
	good := func() map[string]any {
		p, err := NewProof(k, "GET", testURL, testToken, "", testNow)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		parts := splitDots(p)
		if err := json.Unmarshal(b64(t, parts[1]), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	with := func(name string, v any) map[string]any {
		m := good()
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
		return m
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecProof, err := NewProof(ec, "GET", testURL, testToken, "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		proof string
		req   Request
		at    time.Time
		want  error
	}{
		{"valid", signClaims(t, k, good()), req, testNow, nil},
		{"valid ES256", ecProof, req, testNow, nil},
		{"htu differs only by normalisation", signClaims(t, k, with("htu", "HTTPS://API.example:443/./orders")), req, testNow, nil},
		{"iat at the window's edge", signClaims(t, k, good()), req, testNow.Add(DefaultWindow), nil},
		{"iat ahead within the window", signClaims(t, k, good()), req, testNow.Add(-DefaultWindow), nil},
		{"other method", signClaims(t, k, with("htm", "POST")), req, testNow, ErrInvalidProof},
		{"method in lower case", signClaims(t, k, with("htm", "get")), req, testNow, ErrInvalidProof},
		{"no htm", signClaims(t, k, with("htm", nil)), req, testNow, ErrInvalidProof},
		{"other URL", signClaims(t, k, with("htu", "https://api.example/admin")), req, testNow, ErrInvalidProof},
		{"other host", signClaims(t, k, with("htu", "https://evil.example/orders")), req, testNow, ErrInvalidProof},
		{"http for https", signClaims(t, k, with("htu", "http://api.example/orders")), req, testNow, ErrInvalidProof},
		{"no htu", signClaims(t, k, with("htu", nil)), req, testNow, ErrInvalidProof},
		{"iat too old", signClaims(t, k, good()), req, testNow.Add(DefaultWindow + time.Second), ErrInvalidProof},
		{"iat too far ahead", signClaims(t, k, good()), req, testNow.Add(-DefaultWindow - time.Second), ErrInvalidProof},
		{"iat a string", signClaims(t, k, with("iat", "1700000000")), req, testNow, ErrInvalidProof},
		{"no iat", signClaims(t, k, with("iat", nil)), req, testNow, ErrInvalidProof},
		{"no ath", signClaims(t, k, with("ath", nil)), req, testNow, ErrInvalidProof},
		{"ath of another token", signClaims(t, k, with("ath", "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU")), req, testNow, ErrInvalidProof},
		{"ath without a token", signClaims(t, k, good()), Request{Method: "GET", URL: testURL}, testNow, ErrInvalidProof},
		{"ath of the token, padded", signClaims(t, k, with("ath", athOf(testToken)+"=")), req, testNow, ErrInvalidProof},
		{"ath a prefix of the token's", signClaims(t, k, with("ath", athOf(testToken)[:42])), req, testNow, ErrInvalidProof},
		{"no jti", signClaims(t, k, with("jti", nil)), req, testNow, ErrInvalidProof},
		{"jti a number", signClaims(t, k, with("jti", 7)), req, testNow, ErrInvalidProof},
		{"not a proof", "a.b.c", req, testNow, ErrInvalidProof},
		{"access token as proof", testToken, req, testNow, ErrInvalidProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecker(Config{})
			_, err := c.Check(tt.proof, tt.req, tt.at)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check(%s) = %v, want %v", tt.name, err, tt.want)
			}
		})
	}
}

func TestCheckReplay(t *testing.T) {
	k := testKey(t)
	c := NewChecker(Config{})
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	p, err := NewProof(k, "GET", testURL, testToken, "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Check(p, req, testNow)
	if err != nil {
		t.Fatalf("Check(first use) = %v", err)
	}
	want, _ := keyproof.PublicKey(k.Public())
	if got.JKT != want.Thumbprint {
		t.Errorf("Check().JKT = %s, want %s", got.JKT, want.Thumbprint)
	}
	if _, err := c.Check(p, req, testNow.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Errorf("Check(replayed) = %v, want ErrReplay", err)
	}
	// A proof refused for another reason is not remembered: the same
	// proof for the right request is still good once.
	q, _ := NewProof(k, "GET", testURL, testToken, "", testNow)
	if _, err := c.Check(q, Request{Method: "POST", URL: testURL, AccessToken: testToken}, testNow); !errors.Is(err, ErrInvalidProof) {
		t.Fatalf("Check(wrong method) = %v", err)
	}
	if _, err := c.Check(q, req, testNow); err != nil {
		t.Errorf("Check(after a refusal for another reason) = %v, want nil", err)
	}
	// Entries go once the proof could no longer be accepted.
	if n := c.replay.len(); n != 2 {
		t.Fatalf("replay cache holds %d proofs, want 2", n)
	}
	r, _ := NewProof(k, "GET", testURL, testToken, "", testNow.Add(2*DefaultWindow))
	if _, err := c.Check(r, req, testNow.Add(2*DefaultWindow)); err != nil {
		t.Fatal(err)
	}
	if n := c.replay.len(); n != 1 {
		t.Errorf("replay cache holds %d proofs after 2×window, want 1", n)
	}
}

// TestCheckBound: a full cache refuses new proofs rather than forgetting
// ones that could still be replayed.
func TestCheckBound(t *testing.T) {
	k := testKey(t)
	c := NewChecker(Config{MaxProofs: 2})
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	var first string
	for i := range 3 {
		p, _ := NewProof(k, "GET", testURL, testToken, "", testNow)
		if i == 0 {
			first = p
		}
		_, err := c.Check(p, req, testNow)
		if (i < 2) != (err == nil) || (i == 2 && !errors.Is(err, ErrInvalidProof)) {
			t.Fatalf("Check(proof %d of a cache of 2) = %v", i, err)
		}
	}
	if _, err := c.Check(first, req, testNow); !errors.Is(err, ErrReplay) {
		t.Errorf("Check(first proof again, cache full) = %v, want ErrReplay", err)
	}
}

func TestCheckNonce(t *testing.T) {
	k := testKey(t)
	n := NewNonces(time.Minute)
	c := NewChecker(Config{Nonces: n})
	req := Request{Method: "POST", URL: testURL}
	for _, tt := range []struct {
		name  string
		nonce string
		at    time.Time
		want  error
	}{
		{"no nonce", "", testNow, ErrUseNonce},
		{"made-up nonce", "abc", testNow, ErrUseNonce},
		{"current nonce", n.Current(testNow), testNow, nil},
		{"previous period's nonce", n.Current(testNow), testNow.Add(time.Minute), nil},
		{"nonce two periods old", n.Current(testNow), testNow.Add(2 * time.Minute), ErrUseNonce},
		{"another process's nonce", NewNonces(time.Minute).Current(testNow), testNow, ErrUseNonce},
	} {
		p, _ := NewProof(k, "POST", testURL, "", tt.nonce, tt.at)
		if _, err := c.Check(p, req, tt.at); !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Check(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func athOf(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCheckBoundPerKey: one key signing proofs as fast as it can fills only
// its share of the cache: its next proof is refused, another key's is not.
func TestCheckBoundPerKey(t *testing.T) {
	greedy, other := testKey(t), testKey(t)
	c := NewChecker(Config{MaxProofs: 16 * 100}) // a share of 100 proofs per key
	req := Request{Method: "GET", URL: testURL, AccessToken: testToken}
	for i := range 101 {
		p, err := NewProof(greedy, "GET", testURL, testToken, "", testNow)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Check(p, req, testNow)
		if (i < 100) != (err == nil) || (i == 100 && !errors.Is(err, ErrInvalidProof)) {
			t.Fatalf("Check(greedy key's proof %d, share 100) = %v", i, err)
		}
	}
	p, err := NewProof(other, "GET", testURL, testToken, "", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(p, req, testNow); err != nil {
		t.Errorf("Check(another key's proof while the greedy key's share is full) = %v, want nil", err)
	}
	later := testNow.Add(2*DefaultWindow + time.Second)
	p, err = NewProof(greedy, "GET", testURL, testToken, "", later)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(p, req, later); err != nil {
		t.Errorf("Check(greedy key's proof once its old proofs expired) = %v, want nil", err)
	}
}

// TestCheckAccessTokenHash: a caller's precomputed hash of the token
// stands in for hashing it, and a wrong one refuses the proof.
func TestCheckAccessTokenHash(t *testing.T) {
	k := testKey(t)
	right := sha256.Sum256([]byte(testToken))
	wrong := sha256.Sum256([]byte("another token"))
	for _, tt := range []struct {
		name string
		sum  *[32]byte
		want error
	}{{"right hash", &right, nil}, {"hash of another token", &wrong, ErrInvalidProof}} {
		p, err := NewProof(k, "GET", testURL, testToken, "", testNow)
		if err != nil {
			t.Fatal(err)
		}
		_, err = NewChecker(Config{}).Check(p, Request{Method: "GET", URL: testURL, AccessToken: testToken, AccessTokenHash: tt.sum}, testNow)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("Check(%s) = %v, want %v", tt.name, err, tt.want)
		}
	}
}
