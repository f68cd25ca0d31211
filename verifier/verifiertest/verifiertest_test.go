package verifiertest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tegata-dev/tegata/client"
	"github.com/tegata-dev/tegata/token"
	"github.com/tegata-dev/tegata/verifier"
	"github.com/tegata-dev/tegata/verifier/verifiertest"
)

func verify(t *testing.T, a *verifiertest.Authority, raw string) (*verifier.Claims, error) {
	t.Helper()
	return a.Verifier().Verify(context.Background(), raw)
}

func TestSessionLifecycle(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	s := a.CreateSession("alice", map[string]any{"roles": []string{"editor"}})
	c, err := verify(t, a, s.AccessToken)
	if err != nil || c.Subject() != "alice" || c.SessionID() != s.SessionID || !c.Has("roles", "editor") {
		t.Fatalf("Verify(new session) = %+v, %v, want alice's claims", c, err)
	}
	next, err := a.Refresh(s.RefreshToken)
	if err != nil || next.SessionID != s.SessionID || next.AccessToken == s.AccessToken {
		t.Fatalf("Refresh = %+v, %v, want new tokens of the session", next, err)
	}
	a.RevokeSession(s.SessionID)
	for _, raw := range []string{s.AccessToken, next.AccessToken} {
		if _, err := verify(t, a, raw); !errors.Is(err, verifier.ErrRevoked) {
			t.Errorf("Verify(token of a revoked session) = %v, want ErrRevoked", err)
		}
	}
	if _, err := a.Refresh(next.RefreshToken); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Refresh(revoked session) = %v, want ErrInvalidGrant", err)
	}
}

func TestRefreshReuseIsTheft(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	s := a.CreateSession("bob", nil)
	next, err := a.Refresh(s.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Refresh(s.RefreshToken); !errors.Is(err, client.ErrInvalidGrant) {
		t.Fatalf("Refresh(spent token) = %v, want ErrInvalidGrant", err)
	}
	if _, err := verify(t, a, next.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify(after theft) = %v, want ErrRevoked: reuse revokes the session", err)
	}
	if _, err := a.Refresh("unknown"); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Refresh(unknown) = %v, want ErrInvalidGrant", err)
	}
}

func TestSubjectCutoffs(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	laptop, phone := a.CreateSession("carol", map[string]any{"roles": []string{"admin"}}), a.CreateSession("carol", nil)
	other := a.CreateSession("dave", nil)

	a.RevokeAccess("carol", map[string]any{"roles": []string{"viewer"}})
	if _, err := verify(t, a, laptop.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify(token before the access cutoff) = %v, want ErrRevoked", err)
	}
	next, err := a.Refresh(laptop.RefreshToken)
	if err != nil {
		t.Fatalf("Refresh after an access cutoff = %v, want new tokens", err)
	}
	if c, err := verify(t, a, next.AccessToken); err != nil || !c.Has("roles", "viewer") || c.Has("roles", "admin") {
		t.Errorf("Verify(token after the cutoff) = %+v, %v, want the new roles", c, err)
	}

	a.RevokeSubject("carol")
	if _, err := verify(t, a, next.AccessToken); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("Verify(after sign out everywhere) = %v, want ErrRevoked", err)
	}
	if _, err := a.Refresh(phone.RefreshToken); !errors.Is(err, client.ErrInvalidGrant) {
		t.Errorf("Refresh(after sign out everywhere) = %v, want ErrInvalidGrant", err)
	}
	if _, err := verify(t, a, other.AccessToken); err != nil {
		t.Errorf("Verify(another subject's token) = %v, want nil", err)
	}
	// Signed in again after the cutoff: valid.
	again := a.CreateSession("carol", nil)
	if _, err := verify(t, a, again.AccessToken); err != nil {
		t.Errorf("Verify(session created after the cutoff) = %v, want nil", err)
	}
}

func TestClockAndMint(t *testing.T) {
	start := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	a := verifiertest.New(verifiertest.Config{Start: start, AccessTTL: 5 * time.Minute, Algorithm: token.ES256})
	s := a.CreateSession("erin", nil)
	if h, _, _ := token.Inspect(s.AccessToken); h["alg"] != token.ES256 {
		t.Errorf("alg = %v, want ES256", h["alg"])
	}
	if !s.AccessExpiresAt.Equal(start.Add(5 * time.Minute)) {
		t.Errorf("AccessExpiresAt = %v, want start + 5m", s.AccessExpiresAt)
	}
	a.Advance(5*time.Minute + verifier.DefaultLeeway + time.Second)
	if _, err := verify(t, a, s.AccessToken); !errors.Is(err, verifier.ErrExpired) {
		t.Errorf("Verify after the lifetime = %v, want ErrExpired", err)
	}
	raw := a.Mint(token.Claims{Subject: "frank", Extra: map[string]any{"scope": "orders:read"}})
	if c, err := verify(t, a, raw); err != nil || c.Subject() != "frank" || !c.HasScope("orders:read") {
		t.Errorf("Verify(minted) = %+v, %v, want frank with his scope", c, err)
	}
	expired := a.Mint(token.Claims{Subject: "gus", IssuedAt: a.Now().Add(-time.Hour)})
	if _, err := verify(t, a, expired); !errors.Is(err, verifier.ErrExpired) {
		t.Errorf("Verify(minted an hour ago) = %v, want ErrExpired", err)
	}
	foreign := a.Mint(token.Claims{Subject: "hal", Issuer: "https://elsewhere"})
	if _, err := verify(t, a, foreign); !errors.Is(err, verifier.ErrIssuer) {
		t.Errorf("Verify(another issuer) = %v, want ErrIssuer", err)
	}
	// Another kit's tokens are signed with another key.
	if _, err := verify(t, verifiertest.New(verifiertest.Config{}), raw); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Errorf("Verify(token of another Authority) = %v, want ErrUnknownKey", err)
	}
}

// TestMiddleware: the kit drives an app's real middleware.
func TestMiddleware(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	h := a.Verifier().Middleware(verifier.RequireClaim("roles", "admin")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := verifier.FromContext(r.Context())
		w.Write([]byte(c.Subject()))
	})))
	get := func(tok string) int {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	admin, user := a.CreateSession("ivy", map[string]any{"roles": []string{"admin"}}), a.CreateSession("jo", nil)
	if got := get(admin.AccessToken); got != 200 {
		t.Errorf("admin = %d, want 200", got)
	}
	if got := get(user.AccessToken); got != 403 {
		t.Errorf("user without the role = %d, want 403", got)
	}
	a.RevokeSession(admin.SessionID)
	if got := get(admin.AccessToken); got != 401 {
		t.Errorf("admin after revocation = %d, want 401", got)
	}
}

// TestDPoPSession: a session bound to a DPoP key gives tokens its verifier
// accepts only with a fresh proof of that key, at the authority's clock,
// before and after a refresh, until the session is revoked.
func TestDPoPSession(t *testing.T) {
	a := verifiertest.New(verifiertest.Config{})
	key, other := ecKey(t), ecKey(t)
	s := a.CreateDPoPSession("alice", map[string]any{"roles": []string{"editor"}}, key.Public())
	if s.TokenType != "DPoP" {
		t.Errorf("CreateDPoPSession().TokenType = %q, want DPoP", s.TokenType)
	}
	ctx := context.Background()
	const url = "https://api.example/orders"
	check := func(tok, proof string) error {
		_, err := a.Verifier().VerifyDPoP(ctx, tok, proof, "GET", url)
		return err
	}
	p := a.DPoPProof(key, "GET", url, s.AccessToken)
	if err := check(s.AccessToken, p); err != nil {
		t.Fatalf("VerifyDPoP(bound token, its key's proof) = %v, want nil", err)
	}
	for name, err := range map[string]error{
		"replayed proof":        check(s.AccessToken, p),
		"another key's proof":   check(s.AccessToken, a.DPoPProof(other, "GET", url, s.AccessToken)),
		"proof for another URL": check(s.AccessToken, a.DPoPProof(key, "GET", "https://api.example/admin", s.AccessToken)),
	} {
		if !errors.Is(err, verifier.ErrDPoP) {
			t.Errorf("VerifyDPoP(%s) = %v, want ErrDPoP", name, err)
		}
	}
	if _, err := verify(t, a, s.AccessToken); !errors.Is(err, verifier.ErrDPoP) {
		t.Errorf("Verify(bound token as Bearer) = %v, want ErrDPoP", err)
	}
	a.Advance(10 * time.Minute) // proofs are signed at the authority's clock
	next, err := a.Refresh(s.RefreshToken)
	if err != nil || next.TokenType != "DPoP" {
		t.Fatalf("Refresh(bound session) = %q, %v, want DPoP tokens", next.TokenType, err)
	}
	if err := check(next.AccessToken, a.DPoPProof(key, "GET", url, next.AccessToken)); err != nil {
		t.Errorf("VerifyDPoP(refreshed token, 10 min later) = %v, want nil", err)
	}
	a.RevokeSession(s.SessionID)
	if err := check(next.AccessToken, a.DPoPProof(key, "GET", url, next.AccessToken)); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("VerifyDPoP(revoked session) = %v, want ErrRevoked", err)
	}
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
